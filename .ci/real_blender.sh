#!/usr/bin/env bash
# Tests in a real Blender program: Blender 4.3 from Debian 13, in a chroot made by debootstrap.
#
#   .ci/real_blender.sh [--chroot DIR] [--python PY] [--out DIR] [--steps LIST]
#
# --chroot DIR  where the Debian 13 root lives (made when missing; default <repo>/.chroot)
# --python PY   a Python 3.11 with the compute half's packages (torch, scipy, transformers) and
#               the bpy module (for the extension builder); default <repo>/.venv/bin/python.
#               Debian's Blender runs on Python 3.13 without torch, so the add-on runs the
#               compute half in this Python (PARTDISTILL_PYTHON): the venv and its base
#               interpreter are bind-mounted into the chroot at the same paths.
# --out DIR     results: zip, scene, labels, screenshot, logs (default <repo>/out/real_blender)
# --steps LIST  comma list of setup,build,validate,install,scene,batch,ui,uninstall
#               (default: all)
#
# Needs root (debootstrap, chroot, mount). Every step fails loudly; mounts are undone on exit.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHROOT=$REPO/.chroot
PYTHON=$REPO/.venv/bin/python
OUT=$REPO/out/real_blender
STEPS=setup,build,validate,install,scene,batch,ui,uninstall
while [ $# -gt 0 ]; do
  case "$1" in
    --chroot) CHROOT=$(realpath -m "$2"); shift 2 ;;
    --python) PYTHON=$2; shift 2 ;;
    --out) OUT=$(realpath -m "$2"); shift 2 ;;
    --steps) STEPS=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
want() { [[ ",$STEPS," == *",$1,"* ]]; }
log() { echo "[real_blender $(date +%H:%M:%S)] $*"; }
STARTED=$(date +%s)
mkdir -p "$OUT"
case "$OUT" in "$REPO"/*) ;; *) echo "--out must be inside the repository ($REPO)" >&2; exit 2 ;; esac

# ---------------------------------------------------------------- chroot with Blender 4.3
# Debian splits numpy out of Blender (official builds bundle it): python3-numpy stands in.
PACKAGES="blender python3-numpy xvfb xauth xdotool imagemagick libegl1 libgl1 libglx-mesa0 libgl1-mesa-dri"
if want setup && [ ! -x "$CHROOT/usr/bin/blender" ]; then
  log "debootstrap Debian 13 into $CHROOT"
  command -v debootstrap >/dev/null || { apt-get update -q && apt-get install -y -q debootstrap; }
  debootstrap --variant=minbase trixie "$CHROOT" http://deb.debian.org/debian >"$OUT/debootstrap.log"
  mount -t proc proc "$CHROOT/proc"
  chroot "$CHROOT" /usr/bin/env DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -q && apt-get install -y -q --no-install-recommends $PACKAGES" >"$OUT/apt.log"
  ln -sf /proc/self/mounts "$CHROOT/etc/mtab"  # Blender asks for the mounted file systems
  umount -l "$CHROOT/proc"  # lazily: apt may leave a helper running in the chroot
  log "chroot ready in $(( $(date +%s) - STARTED )) s"
fi
[ -x "$CHROOT/usr/bin/blender" ] || { echo "no Blender in $CHROOT: run the setup step" >&2; exit 1; }

# ---------------------------------------------------------------- mounts (undone on exit)
PYTHON=$(realpath -s "$PYTHON")
VENV=$("$PYTHON" -c 'import sys; print(sys.prefix)')
BASE=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')
case "$BASE" in /usr|/usr/local|/) echo "the Python's base ($BASE) cannot be bind-mounted into the chroot: use a venv made from a Python outside /usr (pyenv, a tarball)" >&2; exit 1 ;; esac
MOUNTED=()
bind() {  # bind <host dir> at the same path inside the chroot, once
  local target=$CHROOT$1
  mountpoint -q "$target" && return 0
  mkdir -p "$target"
  mount --bind "$1" "$target"
  MOUNTED+=("$target")
}
cleanup() {
  if [ -n "${XVFB_PID:-}" ]; then kill "$XVFB_PID" 2>/dev/null || true; wait "$XVFB_PID" || true; fi
  for ((i=${#MOUNTED[@]}-1; i>=0; i--)); do umount -R "${MOUNTED[$i]}" || true; done
}
trap cleanup EXIT
if ! mountpoint -q "$CHROOT/proc"; then mount -t proc proc "$CHROOT/proc"; MOUNTED+=("$CHROOT/proc"); fi
if ! mountpoint -q "$CHROOT/dev"; then mount --rbind /dev "$CHROOT/dev"; MOUNTED+=("$CHROOT/dev"); fi
bind "$REPO"
case "$VENV/" in "$REPO"/*) ;; *) bind "$VENV" ;; esac
case "$BASE/" in "$REPO"/*) ;; *) bind "$BASE" ;; esac
BUR=$OUT/user_resources  # Blender's user folder for these tests (extensions, preferences)
in_chroot() {  # the command replaces the subshell, so $! of "in_chroot ... &" is its process
  (exec chroot "$CHROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    BLENDER_USER_RESOURCES="$BUR" PARTDISTILL_PYTHON="$PYTHON" ${DISPLAY_VAR:-} "$@")
}
BLENDER="blender --factory-startup"

# ---------------------------------------------------------------- build the zip (host)
ZIP=$OUT/dist/partdistill-$(sed -n 's/^version = "\(.*\)"/\1/p' "$REPO/blender_manifest.toml")-linux_x64.zip
if want build; then
  log "build the linux-x64 zip"
  "$PYTHON" "$REPO/scripts/build_extension.py" --platforms linux-x64 \
    --output-dir "$OUT/dist" --work-dir "$OUT/build" | tee "$OUT/build.log" | tail -3
fi

# ---------------------------------------------------------------- Blender's validator
if want validate; then
  log "validate the source tree and the zip with Blender $(in_chroot blender --version 2>/dev/null | head -1)"
  in_chroot $BLENDER --command extension validate "$REPO" 2>&1 | tee "$OUT/validate_source.log"
  grep -q "^Success" "$OUT/validate_source.log"
  in_chroot $BLENDER --command extension validate "$ZIP" 2>&1 | tee "$OUT/validate_zip.log"
  grep -q "^Success" "$OUT/validate_zip.log"
fi

# ---------------------------------------------------------------- install-file and register
if want install; then
  log "install-file the zip and check the add-on registers"
  rm -rf "$BUR"; mkdir -p "$BUR"
  in_chroot blender --command extension install-file -r user_default -e "$ZIP" 2>&1 | tee "$OUT/install.log"
  in_chroot blender --background --python-exit-code 1 --python "$REPO/.ci/check_registered.py" \
    2>&1 | tee "$OUT/registered.log"
  grep -q "^PARTDISTILL REGISTERED" "$OUT/registered.log"
fi

# ---------------------------------------------------------------- batch run, simulated teacher
SCENE=$OUT/scene.blend
if want scene; then
  log "a scripted chair with its true parts"
  in_chroot $BLENDER --background --python-exit-code 1 --python "$REPO/.ci/make_scene.py" -- "$SCENE" \
    2>&1 | tail -2
fi
if want batch; then
  log "batch run on the scripted chair with the simulated teacher"
  rm -f "$OUT/labels.json" "$OUT/labelled.blend"
  in_chroot $BLENDER --background "$SCENE" --python-exit-code 1 \
    --python "$REPO/partdistill_blender/batch.py" -- \
    --objects Chair --parts "seat,back,leg" --teacher simulated \
    --ground-truth attribute:partdistill_ground_truth --views 6 --resolution 128 \
    --points 1024 --seed 0 --labels-out "$OUT/labels.json" --output "$OUT/labelled.blend" \
    2>&1 | tee "$OUT/batch.log" | tail -5
  "$PYTHON" "$REPO/.ci/check_labels.py" "$OUT/labels.json" "$OUT/scene_truth.json"
fi

# ---------------------------------------------------------------- UI under Xvfb
# Each script starts Blender's UI afresh and clicks through one part of the panel with xdotool
# (see .ci/ui_lib.sh); every check prints a PASS or FAIL line.
UI_SCRIPTS=${UI_SCRIPTS:-"ui_test ui_results ui_correct ui_setup ui_multi ui_models"}  # env UI_SCRIPTS: a subset
if want ui; then
  log "UI: Segment Parts, undo, cancel, clear; results; corrections, Refine, examples; part list, presets, preferences; several meshes; models"
  [ -d "$BUR/extensions" ] || { echo "the ui step needs the install step first" >&2; exit 1; }
  [ -f "$SCENE" ] || { echo "the ui step needs the scene step first" >&2; exit 1; }
  rm -f "$OUT"/panel.png "$OUT"/ui_*.png "$OUT"/*_state.json
  # A free display: X's abstract sockets are shared by every chroot on the machine, so another
  # checkout's Xvfb on the same display would take our Blender's window and our clicks.
  DISPLAY_NUMBER=100  # not :99, which the older script took without looking
  while grep -q "/tmp/.X11-unix/X$DISPLAY_NUMBER\$" /proc/net/unix; do
    DISPLAY_NUMBER=$((DISPLAY_NUMBER + 1))
  done
  chroot "$CHROOT" /usr/bin/Xvfb ":$DISPLAY_NUMBER" -screen 0 1280x800x24 -nolisten tcp \
    >"$OUT/xvfb.log" 2>&1 &
  XVFB_PID=$!
  sleep 2
  kill -0 "$XVFB_PID" 2>/dev/null || { echo "Xvfb :$DISPLAY_NUMBER did not start:"; cat "$OUT/xvfb.log"; exit 1; }
  log "Xvfb on display :$DISPLAY_NUMBER"
  for script in $UI_SCRIPTS; do
    log "UI: $script"
    DISPLAY_VAR=DISPLAY=:$DISPLAY_NUMBER in_chroot bash "$REPO/.ci/$script.sh" "$SCENE" "$OUT" 2>&1 \
      | tee "$OUT/$script.log" | grep --line-buffered -E "^(PASS|FAIL|segmented|PartDistill tab|the click|  )" || true
    grep -q "^FAIL" "$OUT/$script.log" && { tail -25 "$OUT/$script.log"; exit 1; }
    grep -q "^PASS no Python errors" "$OUT/$script.log" || {
      echo "$script ended early:"; tail -25 "$OUT/$script.log"; exit 1; }
    if [ "$script" = ui_test ]; then
      in_chroot python3 "$REPO/.ci/check_screenshot.py" "$OUT/panel.png" "$OUT/ui_tab.png" \
        "$OUT/ui_state.json" 3
    fi
  done
fi

# ---------------------------------------------------------------- uninstall, as the README says
if want uninstall; then
  log "extension remove"
  in_chroot blender --command extension remove user_default.partdistill 2>&1 | tee "$OUT/remove.log"
  [ ! -e "$BUR/extensions/user_default/partdistill" ] || { echo "the extension is still installed"; exit 1; }
fi

log "all steps passed in $(( $(date +%s) - STARTED )) s"
