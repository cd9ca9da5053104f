"""TRL reference for the Swift PPO step: TRL 0.11.4's legacy PPOTrainer (generate + step) on LoRA SmolLM2-135M.

Loads the GGUF through transformers (gguf_file=..., dequantized to fp32) with the GGUF's own tokenizer (pad = eos),
wraps it with PEFT LoRA (r=16, alpha=32, dropout 0.05 on q_proj, v_proj) and then with TRL's
AutoModelForCausalLMWithValueHead (its default value-head dropout 0.1), the way TRL builds a PEFT policy
(ref_model=None: the reference policy is the same model with the adapter disabled), all on CPU.
PPOConfig(batch_size=32, ppo_epochs=4, learning_rate=1.41e-5, init_kl_coef=0.2, target=10, seed=0) with
  --config default:    mini_batch_size=4, gradient_accumulation_steps=2
  --config reference:  mini_batch_size=1, gradient_accumulation_steps=8 (EX2's reference configuration)
Rollouts: 32 queries of 12 random token ids in [100, 40000) (numpy seed 0), random standard-normal scores.
Two things are measured:
  generate  ppo_trainer.generate(queries, batch_size=32, return_prompt=False, max_new_tokens=32,
            min_new_tokens=32, do_sample=True, top_k=0, top_p=1.0, temperature=1.0, pad_token_id=eos):
            one batched model.generate call; min_new_tokens suppresses eos, so every response is 32 tokens
  step      ppo_trainer.step(queries, responses, scores): old/ref logprobs and values (forward batches of
            mini_batch_size), rewards, GAE, then ppo_epochs x (batch/mini_batch) minibatch updates with Adam
            stepping every gradient_accumulation_steps minibatches
default: 1 warm-up round (one generate + one step), then --runs timed rounds (a fresh generate, then a step on
its responses), best and median of each. reference: one untimed generate to make the responses (its time is
printed, marked "cold"), then one timed step, no warm-up (it is slow: 32 forwards and 32 x 4 backwards of 1 sequence).
JSON lines:
  {"bench": "trl_ppo_versions", "trl": ..., "torch": ..., "transformers": ..., "peft": ..., "threads": T, ...}
  {"bench": "trl_ppo_warmup", "generate_seconds": ..., "step_seconds": ...}   (default config only)
  {"bench": "trl_ppo_generate", "batch": 32, "new_tokens": 32, "seconds": best, "median_seconds": ..., ...}
  {"bench": "trl_ppo_step", "batch": 32, "mini_batch": 4, "accumulation": 2, "epochs": 4, "seconds": best,
   "median_seconds": ..., "stats_sample": {"objective/kl": ..., "ppo/loss/total": ...}, "trl_time": {...}, ...}
stats_sample is from the last timed step; trl_time is that step's own time/ppo/* breakdown (seconds).
Nothing is fetched (HF_HUB_OFFLINE=1). Run from the repository root with the TRL virtualenv of
scripts/fixtures/ppo_step_fixtures.py (plus `pip install gguf`, which transformers needs to read a GGUF):
  /work/venv-trl/bin/python scripts/bench/trl_ppo.py models/SmolLM2-135M-Instruct.Q4_1.gguf 2>/dev/null
  /work/venv-trl/bin/python scripts/bench/trl_ppo.py models/SmolLM2-135M-Instruct.Q4_1.gguf --config reference
"""
import argparse, json, os, statistics, time, warnings

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing is fetched; fail fast instead of retrying a hub
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import accelerate, peft, torch, transformers, trl  # noqa: E402
from gguf import GGUFReader  # noqa: E402
from peft import LoraConfig, get_peft_model  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402
from trl import AutoModelForCausalLMWithValueHead, PPOConfig, PPOTrainer  # noqa: E402

warnings.filterwarnings("ignore", category=FutureWarning)  # "PPOConfig / PPOTrainer is deprecated"
warnings.filterwarnings("ignore", category=UserWarning)

BATCH, PROMPT, RESPONSE = 32, 12, 32
CONFIGS = {"default": dict(mini_batch_size=4, gradient_accumulation_steps=2),
           "reference": dict(mini_batch_size=1, gradient_accumulation_steps=8)}

p = argparse.ArgumentParser()
p.add_argument("gguf")
p.add_argument("--config", choices=sorted(CONFIGS), default="default")
p.add_argument("--runs", type=int, default=2, help="timed rounds after the warm-up (default config only)")
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)


def load():
    path = os.path.abspath(a.gguf)
    d, name = os.path.dirname(path), os.path.basename(path)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=name)
    tok.pad_token = tok.eos_token
    # transformers 4.46.3 does not infer tie_word_embeddings from a GGUF (later versions do): SmolLM2's GGUF has no
    # output.weight, and without this lm_head would be left randomly initialized
    tied = "output.weight" not in {t.name for t in GGUFReader(path).tensors}
    base = AutoModelForCausalLM.from_pretrained(d, gguf_file=name, torch_dtype=torch.float32, tie_word_embeddings=tied)
    assert not tied or base.lm_head.weight.data_ptr() == base.get_input_embeddings().weight.data_ptr()
    pm = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                                         task_type="CAUSAL_LM"))
    model = AutoModelForCausalLMWithValueHead.from_pretrained(pm)  # TRL's value head, summary dropout 0.1
    config = PPOConfig(exp_name="trl_ppo_bench", batch_size=BATCH, ppo_epochs=4, learning_rate=1.41e-5,
                       init_kl_coef=0.2, adap_kl_ctrl=True, target=10, seed=0, **CONFIGS[a.config])
    trainer = PPOTrainer(config=config, model=model, ref_model=None, tokenizer=tok)  # set_seed(0) in here
    assert trainer.is_peft_model and trainer.ref_model is None
    return tok, trainer


t0 = time.perf_counter()
tok, trainer = load()
load_s = time.perf_counter() - t0
rng = np.random.default_rng(0)
queries = [torch.from_numpy(q) for q in rng.integers(100, 40000, (BATCH, PROMPT))]
gen_kwargs = dict(batch_size=BATCH, return_prompt=False, max_new_tokens=RESPONSE, min_new_tokens=RESPONSE,
                  do_sample=True, top_k=0, top_p=1.0, temperature=1.0, pad_token_id=tok.eos_token_id)
print(json.dumps({"bench": "trl_ppo_versions", "trl": trl.__version__, "torch": torch.__version__,
                  "transformers": transformers.__version__, "peft": peft.__version__,
                  "accelerate": accelerate.__version__, "threads": a.threads, "config": a.config,
                  "load_seconds": round(load_s, 2)}), flush=True)


def generate():
    t = time.perf_counter()
    responses = trainer.generate(queries, **gen_kwargs)
    s = time.perf_counter() - t
    assert len(responses) == BATCH and all(len(r) == RESPONSE for r in responses), [len(r) for r in responses]
    return responses, s


def step(responses):
    scores = [torch.tensor(x, dtype=torch.float32) for x in rng.standard_normal(BATCH)]
    t = time.perf_counter()
    stats = trainer.step(queries, responses, scores)
    return stats, time.perf_counter() - t


def report(gen_times, step_times, stats, cold=False):
    cfg = CONFIGS[a.config]
    common = {"threads": a.threads, "config": a.config}
    print(json.dumps({"bench": "trl_ppo_generate", "batch": BATCH, "new_tokens": RESPONSE,
                      "seconds": round(min(gen_times), 3), "median_seconds": round(statistics.median(gen_times), 3),
                      "tokens_per_s": round(BATCH * RESPONSE / min(gen_times), 1), "runs": len(gen_times),
                      **common, **({"cold": True} if cold else {})}), flush=True)
    print(json.dumps({"bench": "trl_ppo_step", "batch": BATCH, "mini_batch": cfg["mini_batch_size"],
                      "accumulation": cfg["gradient_accumulation_steps"], "epochs": 4,
                      "seconds": round(min(step_times), 3), "median_seconds": round(statistics.median(step_times), 3),
                      "runs": len(step_times), **common,
                      "stats_sample": {k: round(float(stats[k]), 6) for k in ("objective/kl", "ppo/loss/total")},
                      "trl_time": {k[len("time/ppo/"):]: round(float(v), 3) for k, v in stats.items()
                                   if k.startswith("time/ppo/")}}), flush=True)


if a.config == "default":
    responses, warm_g = generate()  # warm-up round
    _, warm_s = step(responses)
    print(json.dumps({"bench": "trl_ppo_warmup", "generate_seconds": round(warm_g, 3),
                      "step_seconds": round(warm_s, 3), "config": a.config}), flush=True)
    gen_times, step_times = [], []
    for _ in range(a.runs):
        responses, g = generate()
        stats, s = step(responses)
        gen_times.append(g), step_times.append(s)
    report(gen_times, step_times, stats)
else:  # one step only: the responses come from a cold generate, reported as such
    responses, g = generate()
    stats, s = step(responses)
    report([g], [s], stats, cold=True)
