"""PyTorch + transformers + PEFT reference for `scripts/bench.sh`: one PPO minibatch forward+backward of LoRA SmolLM2.

Loads the GGUF through transformers (dequantized to fp32), wraps it with PEFT LoRA (r=16, alpha=32, dropout
0.05 on q_proj, v_proj) and a TRL-style value head (dropout 0.1, Linear(hidden, 1) on the last hidden state),
in train mode. One step = forward over --batch sequences of 12 prompt + 32 response random tokens (no padding),
response-position logprobs, entropies (TRL's logsumexp - sum softmax*logits) and values, a loss mixing their
means with fixed random weights, and loss.backward(); no optimizer (grads are zeroed between steps).
After 1 warm-up step it times --runs steps and prints JSON lines:
  {"bench": "torch_train_versions", "torch": ..., "transformers": ..., "peft": ..., "threads": T}
  {"bench": "torch_train", "batch": N, "seconds": best, "tokens_per_s": N*44/best, "median_seconds": ..., ...}
  {"bench": "torch_train_rss", "batch": 32, "peak_rss_mb": ..., "rss_after_load_mb": ..., ...}
The RSS line comes from a fresh subprocess (this script with --rss-child, run before the timings) that loads,
resets the peak (/proc/self/clear_refs: loading the GGUF peaks higher than a step), runs one step and reads
ru_maxrss; step_mb = that peak - the RSS right after loading.
bench.sh is expected to call it as `"$PY" scripts/bench/torch_train.py "$f" 2>/dev/null` (EX2_TORCH_PYTHON, as
for torch_generate.py; --batch B for one batch size, default both 4 and 32) and pick fields from the JSON lines.
"""
import argparse, json, os, resource, statistics, subprocess, sys, time

import numpy as np
import peft, torch, transformers
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import AutoModelForCausalLM

PROMPT, RESPONSE = 12, 32
LENGTH = PROMPT + RESPONSE

p = argparse.ArgumentParser()
p.add_argument("gguf")
p.add_argument("--batch", type=int, default=0, help="sequences per step; 0 runs both 4 and 32")
p.add_argument("--runs", type=int, default=3)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--rss-batch", type=int, default=32, help="batch of the peak-RSS subprocess; 0 skips it")
p.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def mb(kib):
    return round(kib / 1024, 1)


def current_rss_kib():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def load():
    base = AutoModelForCausalLM.from_pretrained(os.path.dirname(os.path.abspath(a.gguf)),
                                                gguf_file=os.path.basename(a.gguf), dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                                            task_type="CAUSAL_LM"))
    v_head = nn.Sequential(nn.Dropout(0.1), nn.Linear(base.config.hidden_size, 1))  # TRL's ValueHead
    model.train(), v_head.train()
    return model, v_head


def make_batch(n):
    rng = np.random.default_rng(0)
    ids = torch.from_numpy(rng.integers(100, 40000, (n, LENGTH)))
    c1, c2, c3 = (torch.from_numpy(rng.standard_normal((n, RESPONSE)).astype(np.float32)) for _ in range(3))
    return ids, c1, c2, c3


def step(model, v_head, ids, c1, c2, c3):
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    logits = out.logits[:, :-1]  # position i predicts token i+1
    logprobs = torch.gather(torch.log_softmax(logits, -1), 2, ids[:, 1:, None])[..., 0]
    entropy = torch.logsumexp(logits, -1) - torch.sum(torch.softmax(logits, -1) * logits, -1)
    values = v_head(out.hidden_states[-1])[..., 0][:, :-1]
    r = slice(PROMPT - 1, LENGTH - 1)  # positions 11..42 predict the response tokens 12..43
    loss = (logprobs[:, r] * c1).mean() + (entropy[:, r] * c2).mean() + (values[:, r] * c3).mean()
    loss.backward()
    model.zero_grad(), v_head.zero_grad()


if a.rss_child:
    model, v_head = load()
    load_peak, load_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, current_rss_kib()
    try:  # loading the GGUF peaks far above the loaded model: reset the peak (VmHWM, ru_maxrss) to see the step's own
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        reset = False
    step(model, v_head, *make_batch(a.batch))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"bench": "torch_train_rss", "batch": a.batch, "peak_rss_mb": mb(peak),
                      "rss_after_load_mb": mb(load_rss), "step_mb": mb(peak - load_rss),
                      "load_peak_rss_mb": mb(load_peak), "peak_includes_load": not reset, "threads": a.threads}))
    sys.exit(0)

print(json.dumps({"bench": "torch_train_versions", "torch": torch.__version__, "transformers": transformers.__version__,
                  "peft": peft.__version__, "threads": a.threads}), flush=True)
if a.rss_batch:  # first, while this process is small: an exec'ed child's ru_maxrss may start from its parent's
    child = [sys.executable, os.path.abspath(__file__), a.gguf, "--rss-child", "--batch", str(a.rss_batch),
             "--threads", str(a.threads)]
    rss_line = subprocess.run(child, check=True, stdout=subprocess.PIPE, text=True).stdout
model, v_head = load()
for n in [a.batch] if a.batch else [4, 32]:
    batch = make_batch(n)
    step(model, v_head, *batch)  # warm-up
    times = []
    for _ in range(a.runs):
        t = time.perf_counter()
        step(model, v_head, *batch)
        times.append(time.perf_counter() - t)
    best, median = min(times), statistics.median(times)
    print(json.dumps({"bench": "torch_train", "batch": n, "seconds": round(best, 3),
                      "tokens_per_s": round(n * LENGTH / best, 1), "median_seconds": round(median, 3),
                      "median_tokens_per_s": round(n * LENGTH / median, 1), "runs": a.runs, "threads": a.threads}),
          flush=True)
if a.rss_batch:
    sys.stdout.write(rss_line)
