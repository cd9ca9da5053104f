#!/usr/bin/env bash
# Sets everything up and runs the main job on the embedded default: a short PPO training (stage 1, 8 steps
# of batch 8, as the reference's train.py runs it) aligns the SmolLM2-135M-Instruct policy to the best VLM
# available on the demo concepts (tuxpaint stamps photos: birds, fish, flowers, ...); the trained policy
# then describes every concept with the reference's 25 query templates (stage 2), and the VLM scores every
# description against its concept's photos.
#
# The VLM: $EX2_VLM if set; else the first CLIP found in the local HF cache among a few common ones;
# else (no pretrained CLIP weights exist in any package this project can install) the small randomly
# initialised CLIP the tests use, so the pipeline runs end to end, with rewards that mean nothing.
# Rerunning continues the training run in $OUT/run (--resume) instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
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
policy=models/SmolLM2-135M-Instruct.Q4_1.gguf
steps="${EX2_DEMO_STEPS:-8}"

echo "demo: stage 1 — PPO aligns SmolLM2 to $vlm ($steps steps of batch 8; run directory $OUT/run)"
$EX2 train --policy "$policy" --vlm "$vlm" --dataset folder:data/stamps --output-dir "$OUT/run" \
    --steps "$steps" --batch-size 8 --save-freq 4 --resume
echo "demo: stage 2 — the trained policy describes each concept with the 25 query templates"
$EX2 describe --policy "$policy" --adapter "$OUT/run/final" --dataset folder:data/stamps \
    --output "$OUT/descriptions.json" --seed 0
echo "demo: reward of every description under $vlm"
$EX2 score --vlm "$vlm" --dataset folder:data/stamps --descriptions "$OUT/descriptions.json" \
    --output "$OUT/rewards.json" --zero-shot
echo "demo: wrote $OUT/run (adapter, metrics.jsonl, rollouts.jsonl), $OUT/descriptions.json and $OUT/rewards.json"
