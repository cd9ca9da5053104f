#!/usr/bin/env bash
# Image and text embedding speed of the VLM families against PyTorch in the same run (issue #13's benchmark):
# random weights of align-base, siglip-base-patch16-224 (transformers) and open_clip's RN50, convnext_base and
# ViTamin-S, written once into DIR (about 2 GB), then `ex2-bench vlm` and the torch reference model by model.
#
#   EX2_TORCH_PYTHON=/work/venv/bin/python scripts/bench/vlm.sh [DIR] [RUNS]
#
# Needs a release build (swift build -c release) and a Python with torch, transformers, open_clip and timm.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=${1:-/tmp/ex2-vlm-bench}
runs=${2:-5}
py=${EX2_TORCH_PYTHON:?set EX2_TORCH_PYTHON to a Python with torch, transformers, open_clip and timm}
mkdir -p "$dir"
for kind in align siglip; do
    [ -f "$dir/$kind/config.json" ] || "$py" scripts/bench/torch_vlm.py --write "$dir/$kind" "$kind"
done
missing=()
for m in RN50 convnext_base ViTamin-S; do [ -f "$dir/$m/open_clip_model.safetensors" ] || missing+=("$m"); done
if [ ${#missing[@]} -gt 0 ]; then
    "$py" scripts/fixtures/openclip_conv_fixtures.py --bench-dir "$dir" --bench-only --bench-models "$(IFS=,; echo "${missing[*]}")"
fi
for m in align siglip RN50 convnext_base ViTamin-S; do
    .build/release/ex2-bench vlm "$dir/$m" --runs "$runs" | grep -E '^vlm'
    case $m in
        align|siglip) "$py" scripts/bench/torch_vlm.py "$dir/$m" --runs "$runs" | grep torch_ ;;
        *) "$py" scripts/bench/torch_openclip.py "$dir/$m" --runs "$runs" | grep torch_ ;;
    esac
done
