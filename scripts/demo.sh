#!/usr/bin/env bash
# The main job on the embedded default: a sentence -> bimanual motion -> two built-in Shadow hands in MuJoCo.
set -euo pipefail
cd "$(dirname "$0")/.."
PROMPT=${PROMPT:-"pinch with the right thumb and index finger twice, then clap"}
exec .venv/bin/handx-robot run "$PROMPT" --out out/demo --video out/demo/demo.mp4
