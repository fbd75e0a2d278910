#!/usr/bin/env bash
# Set up (if needed) and segment a demo chair that Blender builds from primitives:
# writes out/demo/chair.blend, out/demo/chair.json and out/demo/chair.png.
#   scripts/demo.sh                        the default CLIP teacher (needs its weights)
#   scripts/demo.sh --teacher simulated    a teacher simulated from the chair's ground truth
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
exec .venv/bin/python partdistill_blender/batch.py --demo chair --category chair \
  --parts "back, seat, leg, arm" --output out/demo/chair.blend \
  --labels-out out/demo/chair.json --preview out/demo/chair.png "$@"
