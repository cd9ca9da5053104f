"""PyTorch + transformers reference for `ex2-bench vlm DIR`: embedding speed of an ALIGN / SigLIP / CLIP
checkpoint directory on this machine, measured as ours is: get_image_features on --batch random
preprocessed images, get_text_features on --text-batch texts of --length tokens (ALIGN: unpadded with an
attention mask, as ours runs them; SigLIP: padded to the 64-token context, as SiglipProcessor pads and ours
runs them too).

    python scripts/bench/torch_vlm.py --write DIR align|siglip   # random weights of align-base / siglip-base-patch16-224
    python scripts/bench/torch_vlm.py DIR [--batch 8] [--text-batch 64] [--length 24]

Prints `torch_vlm images ... images/s=X` and `torch_vlm texts ... texts/s=Y`.
"""
import argparse, json, os, time

import torch
import transformers
from transformers import AutoModel

p = argparse.ArgumentParser()
p.add_argument("dir")
p.add_argument("kind", nargs="?")
p.add_argument("--write", action="store_true")
p.add_argument("--batch", type=int, default=8)
p.add_argument("--text-batch", type=int, default=64)
p.add_argument("--length", type=int, default=24)
p.add_argument("--runs", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(os.cpu_count() or 2)
torch.manual_seed(0)

if a.write:
    if a.kind == "align":
        cfg = transformers.AlignConfig(
            vision_config=dict(image_size=289, hidden_dim=640), projection_dim=640)
        model = transformers.AlignModel(cfg)
        pp = transformers.EfficientNetImageProcessor(size={"height": 289, "width": 289}, crop_size={"height": 289, "width": 289},
                                                     do_center_crop=False, resample=3, rescale_factor=1 / 127.5,
                                                     rescale_offset=True, do_normalize=False, include_top=False)
    elif a.kind == "siglip":
        model = transformers.SiglipModel(transformers.SiglipConfig())
        pp = transformers.SiglipImageProcessor()
    else:
        raise SystemExit("kind: align or siglip")
    model.eval()
    model.save_pretrained(a.dir, safe_serialization=True)
    pp.save_pretrained(a.dir)
    print(f"wrote {a.kind} to {a.dir}")
    raise SystemExit(0)

model = AutoModel.from_pretrained(a.dir, dtype=torch.float32).eval()
kind = model.config.model_type


def best_of(fn):
    fn()
    best = float("inf")
    for _ in range(a.runs):
        t = time.time()
        fn()
        best = min(best, time.time() - t)
    return best


with torch.inference_mode():
    s = model.config.vision_config.image_size
    px = torch.randn(a.batch, 3, s, s)
    t = best_of(lambda: model.get_image_features(pixel_values=px))
    print(f"torch_vlm images {kind} batch={a.batch} best={t:.3f}s images/s={a.batch / t:.2f}", flush=True)
    if kind == "align":
        ids = torch.randint(2000, 22000, (a.text_batch, a.length))
        ids[:, 0] = 101
        ids[:, -1] = 102
        mask = torch.ones_like(ids)
        fn = lambda: model.get_text_features(input_ids=ids, attention_mask=mask)
    else:
        ctx = model.config.text_config.max_position_embeddings
        ids = torch.ones((a.text_batch, ctx), dtype=torch.long)
        ids[:, :a.length - 1] = torch.randint(300, 20300, (a.text_batch, a.length - 1))
        fn = lambda: model.get_text_features(input_ids=ids)
    t = best_of(fn)
    print(f"torch_vlm texts {kind} length={a.length} batch={a.text_batch} best={t:.3f}s texts/s={a.text_batch / t:.1f}", flush=True)
