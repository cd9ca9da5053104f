"""PyTorch + open_clip reference for the convolutional OpenCLIP towers: encode_image / encode_text speed of an
open_clip directory on this machine.

    /work/venv/bin/python scripts/fixtures/openclip_conv_fixtures.py --bench-dir /tmp/oc   # random RN50, convnext_base
    /work/venv/bin/python scripts/bench/torch_openclip.py /tmp/oc/RN50 [/tmp/oc/convnext_base ...]

DIR holds open_clip_config.json ({"model_cfg", "preprocess_cfg"}) and open_clip_model.safetensors; the model is
open_clip's own: open_clip.model.CLIP(**model_cfg) (CustomTextCLIP for an HF text tower) + load_state_dict(strict),
float32, eval, torch.set_num_threads(os.cpu_count()). Measures encode_image on --batch random 3x224x224 inputs
(image_size from the config) and encode_text on --text-batch texts tokenized by open_clip's tokenizer for the
model, i.e. zero padded to the full context (77), best of --runs after one warm-up. Prints
`torch_openclip images NAME batch=B best=Ts images/s=X` and
`torch_openclip texts NAME batch=B context=C best=Ts texts/s=Y`.
"""
import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
import open_clip
from safetensors.torch import load_file

p = argparse.ArgumentParser()
p.add_argument("dirs", nargs="+", help="open_clip directories (open_clip_config.json + open_clip_model.safetensors)")
p.add_argument("--batch", type=int, default=8)
p.add_argument("--text-batch", type=int, default=64)
p.add_argument("--runs", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(os.cpu_count() or 2)
torch.manual_seed(0)

WORDS = ["cat", "dog", "rocket", "cup of coffee", "red car", "mountain lake", "bowl of fruit", "city street"]
TEXTS = [f"a photo of a {WORDS[i % len(WORDS)]}, picture number {i}" for i in range(a.text_batch)]


def best_of(fn):
    fn()  # warm-up
    best = float("inf")
    for _ in range(a.runs):
        t = time.time()
        fn()
        best = min(best, time.time() - t)
    return best


def load(d):
    with open(os.path.join(d, "open_clip_config.json")) as f:
        cfg = json.load(f)["model_cfg"]
    text_cfg = cfg.get("text_cfg", {})
    cls = open_clip.model.CustomTextCLIP if (cfg.pop("custom_text", False) or "hf_model_name" in text_cfg) \
        else open_clip.model.CLIP
    model = cls(**cfg)
    model.load_state_dict(load_file(os.path.join(d, "open_clip_model.safetensors")), strict=True)
    return model.eval(), open_clip.get_tokenizer(f"local-dir:{d}")


for d in a.dirs:
    name = os.path.basename(os.path.normpath(d))
    model, tokenizer = load(d)
    size = model.visual.image_size
    h, w = size if isinstance(size, (tuple, list)) else (size, size)
    with torch.inference_mode():
        px = torch.randn(a.batch, 3, h, w)
        t = best_of(lambda: model.encode_image(px))
        print(f"torch_openclip images {name} batch={a.batch} best={t:.3f}s images/s={a.batch / t:.2f}", flush=True)
        ids = tokenizer(TEXTS)
        t = best_of(lambda: model.encode_text(ids))
        print(f"torch_openclip texts {name} batch={a.text_batch} context={ids.shape[1]} best={t:.3f}s "
              f"texts/s={a.text_batch / t:.1f}", flush=True)
    del model
