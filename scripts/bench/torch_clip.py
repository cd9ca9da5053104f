"""PyTorch + transformers reference for `scripts/bench.sh`: CLIP ViT-B/32 embedding speed on this machine.

Measures transformers' CLIPModel exactly as `ex2-bench clip` measures ours: get_image_features on a batch
of --batch random preprocessed images, get_text_features on --text-batch texts of 40 tokens (no padding:
the same work as ours), and texts of 8 tokens both unpadded and padded to the 77-token context, as
open_clip's tokenizer always gives them (transformers' pads to the longest text of the batch).
The model has random weights: from EX2_CLIP_B32 when set, else initialised here (speed does not depend
on the values). Prints `torch_clip images ... images/s=X` and `torch_clip texts length=L padded=W ... texts/s=Y`.
"""
import argparse, os, time

import torch
from transformers import CLIPConfig, CLIPModel

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=32)
p.add_argument("--text-batch", type=int, default=100)
p.add_argument("--runs", type=int, default=5)
a = p.parse_args()
torch.set_num_threads(os.cpu_count() or 2)
torch.manual_seed(0)
if os.environ.get("EX2_CLIP_B32"):
    model = CLIPModel.from_pretrained(os.environ["EX2_CLIP_B32"], dtype=torch.float32)
else:
    model = CLIPModel(CLIPConfig(
        text_config=dict(vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12,
                         num_attention_heads=8, max_position_embeddings=77, hidden_act="quick_gelu",
                         bos_token_id=49406, eos_token_id=49407, pad_token_id=1),
        vision_config=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                           image_size=224, patch_size=32, hidden_act="quick_gelu"),
        projection_dim=512))
model.eval()


def best_of(fn):
    fn()  # warm-up
    best = float("inf")
    for _ in range(a.runs):
        t = time.time()
        fn()
        best = min(best, time.time() - t)
    return best


with torch.inference_mode():
    px = torch.randn(a.batch, 3, 224, 224)
    t = best_of(lambda: model.get_image_features(pixel_values=px))
    print(f"torch_clip images batch={a.batch} best={t:.3f}s images/s={a.batch / t:.2f}", flush=True)
    for length, width in ((40, 40), (8, 8), (8, 77)):
        ids = torch.full((a.text_batch, width), 49407, dtype=torch.long)   # transformers pads with EOS
        ids[:, 0] = 49406
        ids[:, 1:length - 1] = torch.randint(300, 40300, (a.text_batch, length - 2))
        mask = torch.zeros_like(ids)
        mask[:, :length] = 1
        t = best_of(lambda: model.get_text_features(input_ids=ids, attention_mask=mask))
        print(f"torch_clip texts length={length} padded={width} batch={a.text_batch} best={t:.3f}s "
              f"texts/s={a.text_batch / t:.1f}", flush=True)
