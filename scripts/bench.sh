#!/usr/bin/env bash
# Speed figures of the engine, each next to a reference measured in the same run: OpenBLAS's own peak for
# GEMM, and PyTorch + transformers when a python with torch is available (EX2_TORCH_PYTHON, default
# /work/venv/bin/python or ./venv/bin/python when present); otherwise the PyTorch figures measured on
# this machine kind (issue #2: 110 tokens/s at batch 32, 13.7 at batch 1) stand in. The CLIP section
# compares embedding speed at ViT-B/32's shape with transformers' CLIPModel (scripts/bench/torch_clip.py).
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product ex2-bench >/dev/null
BENCH=.build/release/ex2-bench
MODELS="${EX2_MODELS:-models}"
PY="${EX2_TORCH_PYTHON:-}"
for cand in /work/venv/bin/python venv/bin/python; do
    [ -z "$PY" ] && [ -x "$cand" ] && PY="$cand"
done
if [ -n "$PY" ] && ! "$PY" -c "import torch, transformers" 2>/dev/null; then PY=""; fi

# Debian's OpenBLAS 0.3.21 does not recognise some newer Xeons and falls back to its SSE3 (Prescott)
# kernels, which would make a weak reference: pick its best kernels for this CPU unless told otherwise.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    if grep -qw avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -qw avx2 /proc/cpuinfo; then export OPENBLAS_CORETYPE=Haswell; fi
fi
echo "== GEMM (OpenBLAS peak measured in this run)"
$BENCH gemm

ratio() {  # ratio OURS REF
    python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}x')" "$1" "$2"
}
tps() { sed -n 's/.*tokens\/s=\([0-9.]*\).*/\1/p'; }

for model in SmolLM2-135M-Instruct.Q4_1.gguf gemma-3-270m-q4_k_m.gguf; do
    f="$MODELS/$model"
    [ -f "$f" ] || { echo "missing $f: run scripts/setup.sh"; continue; }
    echo "== sampling, $model (32 new tokens after a 12-token prompt)"
    for b in 1 32; do
        line=$($BENCH generate "$f" --batch "$b" --runs 3)
        ours=$(echo "$line" | tps)
        if [ -n "$PY" ]; then
            ref=$("$PY" scripts/bench/torch_generate.py "$f" --batch "$b" 2>/dev/null | tps)
            echo "$line   torch=$ref tokens/s   ratio=$(ratio "$ours" "$ref")"
        elif [ "$model" = SmolLM2-135M-Instruct.Q4_1.gguf ]; then
            ref=$([ "$b" = 1 ] && echo 13.7 || echo 110)
            echo "$line   torch(issue figure)=$ref tokens/s   ratio=$(ratio "$ours" "$ref")"
        else
            echo "$line"
        fi
    done
    # On AVX-512 CPUs, the AVX2 kernels too (what an AVX2-only machine of the same speed would run).
    if [ "$model" = SmolLM2-135M-Instruct.Q4_1.gguf ] && grep -qw avx512f /proc/cpuinfo; then
        for b in 1 32; do EX2_ISA=avx2 $BENCH generate "$f" --batch "$b" --runs 3 | tail -1; done
    fi
done

# CLIP at ViT-B/32's shape with random weights (EX2_CLIP_B32 names a checkpoint to use for both sides;
# otherwise each side makes its own). Issue #3's PyTorch figures stand in when torch is missing.
echo "== CLIP ViT-B/32 shape: images (batch 32), texts of 40 and 8 tokens (batch 100)"
num() { sed -n "s/.*$1.*$2=\([0-9.]*\).*/\1/p" | head -1; }
if clip=$($BENCH clip 2>&1); then
    echo "$clip"
    img=$(echo "$clip" | num "images" "images\/s"); t40=$(echo "$clip" | num "length=40" "texts\/s")
    t8=$(echo "$clip" | num "length=8" "texts\/s")
    if [ -n "$PY" ]; then
        ref=$("$PY" scripts/bench/torch_clip.py 2>/dev/null | grep '^torch_clip' || true)
        [ -n "$ref" ] || { echo "scripts/bench/torch_clip.py failed: run it by hand to see why"; exit 1; }
        echo "$ref"
        rimg=$(echo "$ref" | num "images" "images\/s"); r40=$(echo "$ref" | num "length=40 padded=40" "texts\/s")
        r8=$(echo "$ref" | num "length=8 padded=8 " "texts\/s"); r877=$(echo "$ref" | num "length=8 padded=77" "texts\/s")
        echo "ratio to torch: images $(ratio "$img" "$rimg"), texts(40) $(ratio "$t40" "$r40"), texts(8) $(ratio "$t8" "$r8") unpadded / $(ratio "$t8" "$r877") padded to 77 as open_clip does"
    else
        echo "ratio to torch (issue figures 11.2 images/s, 29 texts/s): images $(ratio "$img" 11.2), texts(40) $(ratio "$t40" 29)"
    fi
    echo "padding: 8-token texts run $(ratio "$t8" "$t40") as fast as 40-token ones (no padding cost: ~5x expected)"
else
    echo "ex2-bench has no 'clip' bench in this build: $clip"
fi

# Training (issue #8): forward + backward of a PPO mini-batch, SmolLM2 with LoRA r16 on q, v and a value head,
# sequences of 12 + 32 tokens, against PyTorch + PEFT on the same shapes (scripts/bench/torch_train.py),
# alternating sides per batch size because this host's speed drifts; then sampling through an adapter.
f="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ -f "$f" ]; then
    echo "== training forward+backward, SmolLM2-135M, LoRA r16 q,v + value head (12 + 32 tokens per sequence)"
    field() { python3 -c 'import sys, json
for l in sys.stdin:
    l = l.strip()
    if l.startswith("{"):
        d = json.loads(l)
        if d.get("bench") == sys.argv[1]: print(d[sys.argv[2]])' "$1" "$2"; }
    for b in 1 4 32; do
        line=$($BENCH train "$f" --batch "$b" --runs 3)
        ours=$(echo "$line" | tps)
        if [ -n "$PY" ]; then
            ref=$("$PY" scripts/bench/torch_train.py "$f" --batch "$b" --rss-batch 0 2>/dev/null | field torch_train tokens_per_s)
            echo "$line   torch=$ref tokens/s   ratio=$(ratio "$ours" "$ref")"
        else
            echo "$line"
        fi
    done
    if [ -n "$PY" ]; then
        rss=$("$PY" scripts/bench/torch_train.py "$f" --batch 32 --runs 1 2>/dev/null | field torch_train_rss peak_rss_mb)
        echo "peak resident memory of a batch-32 step: torch ${rss} MB (ours: peak_rss above)"
    fi
    echo "== sampling through a LoRA adapter (r16 on q, v) against the base model, batch 32 (ex2 describe --adapter)"
    base=$($BENCH generate "$f" --batch 32 --runs 3 | tail -1); lora=$($BENCH generate "$f" --batch 32 --runs 3 --lora 16 | tail -1)
    echo "$base"; echo "$lora"
    echo "adapter / base: $(ratio "$(echo "$lora" | tps)" "$(echo "$base" | tps)")"
fi

# PPO (issue #9): sampling 32 rollouts and one PPOTrainer.step (batch 32, mini-batch 4, accumulation 2,
# 4 epochs), against TRL 0.11.4's legacy PPOTrainer measured right after (EX2_TRL_PYTHON: a python with
# trl 0.11.4, peft and gguf; default /work/venv-trl/bin/python when present).
TRL="${EX2_TRL_PYTHON:-}"
[ -z "$TRL" ] && [ -x /work/venv-trl/bin/python ] && TRL=/work/venv-trl/bin/python
if [ -f "$f" ]; then
    echo "== PPO step, SmolLM2-135M, LoRA r16 q,v + value head, 32 rollouts of 12 + 32 tokens"
    $BENCH ppo "$f"
    if [ -n "$TRL" ] && "$TRL" -c "import trl, peft, gguf" 2>/dev/null; then
        "$TRL" scripts/bench/trl_ppo.py "$f" 2>/dev/null | grep -E '"trl_ppo_(generate|step)"' || echo "scripts/bench/trl_ppo.py failed: run it by hand to see why"
    fi
fi

# ex2 train (issue #9): the reference's configuration (batch 32, mini-batch 1, accumulation 8, 4 epochs,
# 32 new tokens) for EX2_TRAIN_STEPS steps (default 3) on the stamps with the tiny CLIP: the per-step
# breakdown from metrics.jsonl, and what the reference's 1000-step run would take at that pace.
if [ -f "$f" ] && [ -d data/stamps ]; then
    steps="${EX2_TRAIN_STEPS:-3}"
    echo "== ex2 train, reference configuration, $steps steps (SmolLM2-135M, tiny CLIP, stamps)"
    run=$(mktemp -d)
    .build/release/ex2 train --policy "$f" --vlm Tests/EX2Tests/Fixtures/clip_tiny --dataset folder:data/stamps \
        --output-dir "$run" --steps "$steps" --save-freq 0 2>/dev/null >/dev/null
    python3 - "$run/metrics.jsonl" <<'PY'
import json, sys
rows = [json.loads(l)["stats"] for l in open(sys.argv[1])]
keys = ["time/ex2/sampling", "time/ex2/reward", "time/ppo/forward_pass", "time/ppo/optimize_step", "time/ex2/total"]
names = ["sampling", "reward", "old + ref log-probs", "optimisation", "step total"]
for k, n in zip(keys, names):
    print(f"  {n:22s} {sum(r[k] for r in rows) / len(rows):7.2f} s/step")
total = sum(r["time/ex2/total"] for r in rows) / len(rows)
print(f"  1000 steps (the reference's run) at this pace: {total * 1000 / 3600:.1f} h")
PY
    rm -rf "$run"
fi
