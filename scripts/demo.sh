#!/usr/bin/env bash
# Sets everything up and runs the main job on the embedded default: the SmolLM2-135M-Instruct policy
# describing the demo concepts. (The full pipeline — PPO against a CLIP judge on the stamps photos —
# grows stage by stage; today the policy's descriptions are sampled with the engine.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release --product ex2
for concept in bird flower fruit vehicle; do
    .build/release/ex2 generate --policy models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --prompt "Describe a photo of a $concept."$'\n\n' --max-new-tokens 32 --seed 0
done
