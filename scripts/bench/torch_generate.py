"""PyTorch + transformers reference for `scripts/bench.sh`: SmolLM2 sampling tokens/s on this machine.

Loads the same GGUF through transformers (dequantized to fp32), samples `--new` tokens after a
`--prompt-tokens` prompt for a batch, and prints one line `torch_generate batch=B tokens/s=X`.
Run by scripts/bench.sh with EX2_TORCH_PYTHON (a python that has torch and transformers).
"""
import argparse, os, time

import torch
from transformers import AutoModelForCausalLM

p = argparse.ArgumentParser()
p.add_argument("gguf")
p.add_argument("--batch", type=int, default=1)
p.add_argument("--new", type=int, default=32)
p.add_argument("--prompt-tokens", type=int, default=12)
p.add_argument("--runs", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(os.cpu_count() or 2)
torch.manual_seed(0)
model = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.gguf)), gguf_file=os.path.basename(a.gguf),
                                             dtype=torch.float32)
model.eval()
ids = torch.randint(300, 5000, (a.batch, a.prompt_tokens))
best = float("inf")
with torch.no_grad():
    model.generate(ids[:1], do_sample=True, max_new_tokens=2, min_new_tokens=2)
    for _ in range(a.runs):
        t = time.time()
        model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                       max_new_tokens=a.new, min_new_tokens=a.new, pad_token_id=0)
        best = min(best, time.time() - t)
print(f"torch_generate batch={a.batch} tokens/s={a.batch * a.new / best:.1f}")
