#!/usr/bin/env bash
# Speed figures of the engine, each next to a reference measured in the same run: OpenBLAS's own peak for
# GEMM, and PyTorch + transformers when a python with torch is available (EX2_TORCH_PYTHON, default
# /work/venv/bin/python or ./venv/bin/python when present); otherwise the PyTorch figures measured on
# this machine kind (issue #2: 110 tokens/s at batch 32, 13.7 at batch 1) stand in.
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
done
