#!/usr/bin/env bash
# Make .venv (Python 3.11) with the Blender module, torch (CPU) and everything the tests need.
# Idempotent: re-running only installs what is missing.
#
#   scripts/setup.sh               .venv: bpy as requirements.txt pins it (4.5)
#   scripts/setup.sh --bpy 4.2     .venv-bpy4.2: the same with bpy 4.2 LTS (the oldest Blender
#                                  blender_manifest.toml promises), for .ci/bpy_matrix.sh
#   scripts/setup.sh --bpy 5.0     .venv-bpy5.0: bpy 5.0, the newest for Python 3.11
#   scripts/setup.sh --bpy 5.3     .venv-bpy5.3: bpy 5.3, the newest on PyPI; it needs Python
#                                  3.13 and numpy 2, and torch has no CPU wheel for Python 3.13
#                                  here: this venv holds no torch and the tests run the compute
#                                  half out of process in .venv (PARTDISTILL_PYTHON), as an
#                                  official Blender whose Python lacks torch does.
set -euo pipefail
cd "$(dirname "$0")/.."
BPY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bpy) BPY=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

# find_python X.Y: a python X.Y on PATH or in pyenv's versions (this machine kind ships pyenv)
find_python() {
  local candidate
  for candidate in "python$1" "$HOME"/.pyenv/versions/"$1".*/bin/python"$1"; do
    if command -v "$candidate" >/dev/null 2>&1 \
      && "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '$1'.split('.'))))" 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  echo "no Python $1 found (on PATH or in ~/.pyenv/versions)" >&2; return 1
}

if [ -z "$BPY" ]; then
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
  exit 0
fi

# ---------------------------------------------------------------- another Blender module
VENV=.venv-bpy$BPY
REQUIREMENTS=$(mktemp); trap 'rm -f "$REQUIREMENTS"' EXIT
case "$BPY" in
  4.2|5.0)
    PIN=$([ "$BPY" = 4.2 ] && echo 4.2.23 || echo 5.0.1)  # both pin numpy < 2, as 4.5 does
    PYTHON=$(find_python 3.11)
    sed "s/^bpy==.*/bpy==$PIN/" requirements.txt >"$REQUIREMENTS"
    grep -v "^-r " requirements-dev.txt >>"$REQUIREMENTS"
    ;;
  5.3)
    PYTHON=$(find_python 3.13)
    # bpy 5.3 wants numpy >= 2.2; no torch (see above), the rest as requirements.txt pins it.
    { echo "bpy==5.3.0"; echo "numpy==2.3.5"
      grep -vE "^(#|bpy|numpy|torch)" requirements.txt
      grep -v "^-r " requirements-dev.txt; } >"$REQUIREMENTS"
    ;;
  *) echo "--bpy takes 4.2, 5.0 or 5.3, not $BPY" >&2; exit 2 ;;
esac
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -r "$REQUIREMENTS"
"$VENV/bin/python" -m pip install -q --no-deps open_clip_torch==3.3.0
echo "environment ready: $(pwd)/$VENV ($("$VENV/bin/python" -c 'import bpy; print("bpy", bpy.app.version_string)' 2>/dev/null | tail -1))"
