#!/usr/bin/env bash
# Sets everything up and runs the main job on the embedded default (`ex2 demo`): a short PPO training
# (stage 1, 8 steps of batch 8, as the reference's train.py runs it) aligns the SmolLM2-135M-Instruct
# policy to the best VLM available on the demo concepts (tuxpaint stamps photos: birds, fish, flowers,
# ...); the trained policy describes every concept (stage 2) and the VLM scores every description; a
# local judge (Qwen2.5-Coder-1.5B under `ex2 serve`, local judge mode) says which descriptions are
# informative and which attributes they use (stage 3); the report goes to out/demo/run/report.html.
#
# The VLM: $EX2_VLM if set; else the first CLIP found in the local HF cache among a few common ones;
# else (no pretrained CLIP weights exist in any package this project can install) the small randomly
# initialised CLIP the tests use, so the pipeline runs end to end, with rewards that mean nothing.
# Rerunning continues where it stopped: the training resumes, the judge's journal keeps its answers.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup-judge.sh
swift build -c release --product ex2 >/dev/null
EX2=.build/release/ex2
OUT="${EX2_OUT:-out/demo}"
mkdir -p "$OUT"

vlm="${EX2_VLM:-}"
if [ -z "$vlm" ]; then
    if [ -n "${HF_HUB_CACHE:-}" ]; then hub="$HF_HUB_CACHE"
    elif [ -n "${HF_HOME:-}" ]; then hub="$HF_HOME/hub"
    else hub="$HOME/.cache/huggingface/hub"; fi
    for id in openai/clip-vit-base-patch32 openai/clip-vit-base-patch16 openai/clip-vit-large-patch14 laion/CLIP-ViT-B-32-laion2B-s34B-b79K; do
        if [ -d "$hub/models--${id%%/*}--${id##*/}/snapshots" ]; then vlm="$id"; break; fi
    done
fi
if [ -z "$vlm" ]; then
    vlm="Tests/EX2Tests/Fixtures/clip_tiny"
    echo "demo: no pretrained CLIP in the local HF cache; using the tiny RANDOM CLIP from the tests ($vlm)."
    echo "demo: the rewards (and so what PPO teaches the policy) MEAN NOTHING with a random VLM."
    echo "demo: set EX2_VLM to a CLIP directory, hub id or r-open-clip:MODEL:PRETRAINED for meaningful rewards."
fi
steps="${EX2_DEMO_STEPS:-8}"
per_concept="${EX2_DEMO_TEMPLATES:-5}"
# The judge reads every description (and asks about the attributes of the informative ones); at
# about 0.25 answers/s for the 1.5B judge on 2 cores, the demo describes each concept with the first
# $per_concept of the reference's 25 query templates (EX2_DEMO_TEMPLATES=25 for all of them).
python3 - "$per_concept" "$OUT/templates.json" <<'PY'
import json, sys
n, out = int(sys.argv[1]), sys.argv[2]
t = json.load(open("Sources/Concepts/Resources/query-templates.json"))
json.dump(t[:n], open(out, "w"), indent=1)
PY
random_flag=()
[ "$vlm" = "Tests/EX2Tests/Fixtures/clip_tiny" ] && random_flag=(--vlm-is-random)
$EX2 demo --vlm "$vlm" "${random_flag[@]}" --dataset folder:data/stamps --templates "$OUT/templates.json" \
    --output-dir "$OUT/run" --steps "$steps" --batch-size 8 ${EX2_DEMO_ARGS:-}
