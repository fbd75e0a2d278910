#!/usr/bin/env bash
# Make .venv (Python 3.11) with the Blender module, torch (CPU) and everything the tests need.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements-dev.txt
# Only for the CLIP vocabulary file it carries (tests tokenise for real, offline); its own
# dependencies (torchvision) would pull another torch, so none of them are installed.
.venv/bin/python -m pip install -q --no-deps open_clip_torch==3.3.0
echo "environment ready: $(pwd)/.venv"
