#!/usr/bin/env bash
# Set up (if needed) and run the test suite: bpy module, real renders, tiny models, CPU only.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/python -m ruff check .
.venv/bin/python -m pytest tests -q "$@"
