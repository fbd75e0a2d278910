#!/usr/bin/env bash
# The bpy-module tests (every tests/test_*.py that names bpy) on the oldest and the newest
# Blender modules beside .venv's bpy 4.5: bpy 4.2 LTS (blender_manifest.toml's
# blender_version_min), bpy 5.0 (the newest for Python 3.11) and bpy 5.3 (the newest on PyPI,
# Python 3.13). Each gets its venv from scripts/setup.sh --bpy VERSION.
#
#   .ci/bpy_matrix.sh [VERSION ...]     default: 4.2 5.0 5.3
#
# bpy 5.3's venv has no torch (no CPU wheel of it for Python 3.13 here): there the compute half
# runs out of process in .venv (PARTDISTILL_PYTHON), as with an official Blender without torch,
# so .venv must exist (scripts/setup.sh); a test that imports torch in its own process is
# skipped there with that reason (.ci/no_torch.py). Runs every version, then fails if any did.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSIONS=("$@")
[ $# -gt 0 ] || VERSIONS=(4.2 5.0 5.3)
mapfile -t TESTS < <(grep -lw bpy tests/test_*.py)
log() { echo "[bpy_matrix $(date +%H:%M:%S)] $*"; }
FAILED=()
for version in "${VERSIONS[@]}"; do
  started=$(date +%s)
  scripts/setup.sh --bpy "$version" | tail -1
  venv=.venv-bpy$version
  run=("$venv/bin/python" -m pytest)
  if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    # No torch in this Python: the add-on runs the compute half in .venv, and a test that
    # imports torch in its own process is reported skipped with its reason (.ci/no_torch.py).
    [ -x .venv/bin/python ] || { echo "bpy $version has no torch and there is no .venv" >&2; exit 1; }
    run=(env "PARTDISTILL_PYTHON=$(pwd)/.venv/bin/python" "PYTHONPATH=$(pwd)/.ci" "${run[@]}"
         -p no_torch -rs)
  fi
  set_up=$(( $(date +%s) - started ))
  log "bpy $version: ${#TESTS[@]} test files"
  # One process per test file, and a file whose process dies of a signal is run once more
  # (said in the log): bpy 4.2 has crashed once in three full runs in Material.use_nodes
  # (writeback._part_material) after many earlier tests in the same process, never alone.
  status=passed
  for test in "${TESTS[@]}"; do
    rc=0; "${run[@]}" "$test" -q || rc=$?
    if [ "$rc" -ge 128 ]; then
      log "bpy $version: $test died with signal $((rc - 128)); running it once more"
      rc=0; "${run[@]}" "$test" -q || rc=$?
    fi
    # 5: pytest collected nothing, which here means no_torch skipped the whole file.
    [ "$rc" -eq 5 ] && { log "bpy $version: $test skipped whole (needs torch)"; rc=0; }
    [ "$rc" -eq 0 ] || { status=FAILED; log "bpy $version: $test failed ($rc)"; }
  done
  [ "$status" = passed ] || FAILED+=("$version")
  log "bpy $version $status: set up in $set_up s, tests in $(( $(date +%s) - started - set_up )) s"
done
[ ${#FAILED[@]} -eq 0 ] || { log "failed on bpy ${FAILED[*]}"; exit 1; }
