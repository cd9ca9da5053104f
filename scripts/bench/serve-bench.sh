#!/usr/bin/env bash
# Serving speed (issue #10), each figure next to its reference from the same run:
#  1. `ex2 serve` against llama.cpp's server (llama-cpp-python[server], same GGUF, 2 threads) under a
#     loopback load of 1, 8 and 32 concurrent streaming clients (scripts/bench/serve_load.py, the same
#     request mix for both): completion tokens/s, p50/p99 time to first token and total.
#  2. `ex2 inspect` requests/s against `ex2 serve` with the judge (Qwen2.5-Coder-1.5B), both judge modes,
#     with and without the prefix cache, on the first BENCH_INSPECT_ITEMS items of the labelled set.
# The llama.cpp server comes from EX2_LLAMACPP_PYTHON (default /work/venv-llamacpp/bin/python); build it
# with: python3 -m venv V && V/bin/pip install "llama-cpp-python[server]" (compiles llama.cpp, ~12 min).
# On CPUs with AMX (Sapphire Rapids and later) build it with CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=ON
# -DGGML_AVX512_VNNI=ON -DGGML_AVX512_VBMI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON -DGGML_AVX2=ON -DGGML_FMA=ON
# -DGGML_F16C=ON": the native build uses AMX tiles, which this sandbox does not grant (SIGILL at the first request).
# Section 1 is skipped, loudly, without it. Section 2 needs scripts/setup-judge.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
swift build -c release --product ex2 >/dev/null
EX2=.build/release/ex2
MODELS="${EX2_MODELS:-models}"
SMOL="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
JUDGE="$MODELS/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
LPY="${EX2_LLAMACPP_PYTHON:-/work/venv-llamacpp/bin/python}"
PARALLEL="${BENCH_PARALLEL:-8}"
MAXTOK="${BENCH_MAX_TOKENS:-64}"
OUT="${BENCH_OUT:-/tmp/ex2-serve-bench}"
mkdir -p "$OUT"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() {  # wait_http URL SECONDS
    for _ in $(seq 1 "$2"); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 1; done
    echo "server at $1 did not come up" >&2; return 1
}
load() {  # load LABEL BASE MODEL
    for c in 1 8 32; do
        n=$((c == 1 ? 8 : c * 4))
        python3 scripts/bench/serve_load.py --base-url "$2" --model "$3" --clients "$c" --requests "$n" \
            --max-tokens "$MAXTOK" --label "$1" --json "$OUT/$1-$c.json"
    done
}

if [ -f "$SMOL" ]; then
    echo "== serving SmolLM2-135M-Instruct Q4_1: $MAXTOK-token streamed chat completions, 1/8/32 clients"
    port=$(free_port)
    $EX2 serve --model "$SMOL" --served-name smol --port "$port" --parallel "$PARALLEL" >"$OUT/ex2-serve.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port/health" 120
    load ex2 "http://127.0.0.1:$port/v1" smol
    kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
    if "$LPY" -c "import llama_cpp.server" 2>/dev/null; then
        port=$(free_port)
        # llama-cpp-python's server decodes one request at a time (it has no parallel slots) and by default
        # cuts off a streaming request when the next arrives: --interrupt_requests False queues them instead.
        "$LPY" -m llama_cpp.server --model "$SMOL" --n_threads 2 --n_threads_batch 2 --n_ctx 2048 --model_alias smol --interrupt_requests False \
            --host 127.0.0.1 --port "$port" >"$OUT/llamacpp.log" 2>&1 &
        PIDS+=($!)
        wait_http "http://127.0.0.1:$port/v1/models" 180
        load llama.cpp "http://127.0.0.1:$port/v1" smol
        kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
        python3 - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
print("ratios ex2 / llama.cpp (throughput; latency: llama.cpp / ex2, so > 1 means ex2 is faster):")
for c in (1, 8, 32):
    a, b = (json.load(open(f"{out}/{k}-{c}.json")) for k in ("ex2", "llama.cpp"))
    print(f"  {c:>2} clients: throughput {a['tokens_per_s'] / b['tokens_per_s']:.2f}x, "
          f"p99 ttft {b['ttft_p99_s'] / a['ttft_p99_s']:.2f}x, p99 total {b['total_p99_s'] / a['total_p99_s']:.2f}x")
EOF
    else
        echo "SKIPPED the llama.cpp reference: $LPY has no llama_cpp.server (see the top of this script)"
    fi
else
    echo "missing $SMOL: run scripts/setup.sh"
fi

if [ -f "$JUDGE" ]; then
    items="${BENCH_INSPECT_ITEMS:-24}"
    python3 - "$items" "$OUT/labelled-bench.json" <<'EOF'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
s = json.load(open("scripts/judge/labelled-set.json"))
# Evenly spaced over the set (it lists each dataset's Yes items, then its No items): both verdicts.
step = max(1, len(s["items"]) // max(1, n))
picked = s["items"][::step][:n]
json.dump({"items": picked}, open(out, "w"))
EOF
    echo "== ex2 inspect against ex2 serve, Qwen2.5-Coder-1.5B Q4_K_M, $items labelled items, concurrency $PARALLEL"
    for cache in 1024 0; do
        port=$(free_port)
        $EX2 serve --model "$JUDGE" --served-name judge --port "$port" --parallel "$PARALLEL" --prefix-cache-mb "$cache" >"$OUT/judge-serve-$cache.log" 2>&1 &
        PIDS+=($!)
        wait_http "http://127.0.0.1:$port/health" 180
        for mode in reference local; do
            rm -f "$OUT/inspect-$mode-$cache.json" "$OUT/inspect-$mode-$cache.json.jsonl"
            t0=$(date +%s.%N)
            $EX2 inspect --labelled "$OUT/labelled-bench.json" --output "$OUT/inspect-$mode-$cache.json" \
                --base-url "http://127.0.0.1:$port/v1" --model judge --judge-mode "$mode" --concurrency "$PARALLEL" \
                >"$OUT/inspect-$mode-$cache.txt" 2>&1
            t1=$(date +%s.%N)
            python3 -c "import sys; n,a,b=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]); print(f'  {sys.argv[4]:>9} mode, prefix cache {sys.argv[5]:>4} MiB: {n} requests in {b-a:6.1f} s = {n/(b-a):.3f} requests/s;', open(sys.argv[6]).read().splitlines()[1].strip())" \
                "$items" "$t0" "$t1" "$mode" "$cache" "$OUT/inspect-$mode-$cache.txt"
        done
        kill "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true
    done
else
    echo "missing $JUDGE: run scripts/setup-judge.sh"
fi
