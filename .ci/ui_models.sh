#!/usr/bin/env bash
# Inside the chroot, with DISPLAY set: first use of a teacher whose weights are not on the
# machine, as a new user meets it. A local Hub (tests/hub_server.py, slowed down so that the
# progress can be watched) serves a tiny CLIP; Blender reaches it through HF_ENDPOINT. The
# panel shows the model as not installed and Segment Parts grey; Allow Online Access in the
# box turns Blender's online access on; Download shows a progress bar; Cancel stops it and
# keeps the bytes; a second Download resumes from them and completes; Segment Parts runs.
#   bash .ci/ui_models.sh SCENE.blend OUT_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ui_lib.sh" "$@"  # SCENE=$1, OUT=$2
ROOT=$(cd "$HERE/.." && pwd)
MODEL=tiny-org/tiny-clip
CACHE=$OUT/models_cache
HUB_LOG=$OUT/models_hub.log
rm -rf "$CACHE" "$OUT/models_endpoint"
# The tiny CLIP is made by the compute half's Python (torch, transformers) once; ~12 MB at
# 150 kB/s: about 80 s of download, long enough to watch and to find Cancel.
"$PARTDISTILL_PYTHON" "$ROOT/tests/hub_server.py" --repo "$MODEL" \
  --folder "$OUT/models_hub/tiny-clip" --bytes-per-s 150000 \
  --endpoint-file "$OUT/models_endpoint" >"$HUB_LOG" 2>&1 &
HUB_PID=$!
for _ in $(seq 240); do [ -s "$OUT/models_endpoint" ] && break; sleep 0.5; done
[ -s "$OUT/models_endpoint" ] || { echo "FAIL: the local Hub did not start"; tail "$HUB_LOG"; exit 1; }
export HF_ENDPOINT PARTDISTILL_UI_MODEL=$MODEL PARTDISTILL_UI_CACHE=$CACHE
HF_ENDPOINT=$(cat "$OUT/models_endpoint")
echo "the local Hub serves $MODEL at $HF_ENDPOINT"

start_blender models models
trap 'kill $BLENDER_PID $HUB_PID 2>/dev/null || true; wait $BLENDER_PID $HUB_PID 2>/dev/null || true' EXIT
open_tab
JOB="s['models']['job']"
DOWNLOAD="bpy.ops.partdistill.model_download(repo_id=\"$MODEL\")"
CANCEL="bpy.ops.partdistill.model_cancel(repo_id=\"$MODEL\")"

# 1. Not installed: the box says so, Segment Parts is grey and a click on it does nothing.
expect "s['teacher'] == 'clip' and s['models']['chosen'] == '$MODEL'" "the panel's teacher is CLIP, its model $MODEL"
expect "not s['models']['installed'] and not s['models']['segment_enabled'] and 'press Download' in s['models']['reason']" \
  "not installed: Segment Parts is grey"
echo "  its tooltip: $(state "['models']['reason']")"
click_grey_segment
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 1
shot models_missing

# 2. Online access: off in a fresh Blender; the box offers Blender's own switch, a checkbox
# between the box's first lines and the (grey) Download button. From just above the button,
# click upwards through the box's rows (labels do nothing) until online access is on.
if ! is "s['models']['online_access']"; then
  button "$DOWNLOAD" "$LEFT_X"
  for ((y = BY - 14; y > BY - 160; y -= 5)); do
    click "$LEFT_X" "$y"
    fresh
    is "s['models']['online_access']" && break
  done
  expect "s['models']['online_access'] and s['models']['chosen'] == '$MODEL' and not s['running']" \
    "Allow Online Access in the Models box turns Blender's online access on"
fi
[ ! -s "$HUB_LOG" ] || ! grep -q "^GET\|^HEAD" "$HUB_LOG" || {
  echo "FAIL: requests reached the Hub before Download was pressed:"; cat "$HUB_LOG"; exit 1; }

# 3. Download: the progress bar moves; a screenshot while it does.
button "$DOWNLOAD" "$LEFT_X"
click "$BX" "$BY"
expect "$JOB and $JOB['running'] and $JOB['done_bytes'] > 0" "Download starts in the background"
FIRST=$(state "['models']['job']['text']")
FIRST_BYTES=$(state "['models']['job']['done_bytes']")
expect "$JOB['running'] and $JOB['done_bytes'] > $FIRST_BYTES" "the progress bar moves"
echo "  from '$FIRST' to '$(state "['models']['job']['text']")'"
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 0.5
shot models_download
cp "$OUT/ui_models_download.png" "$OUT/models_download.png"

# 4. Cancel: the small button at the right end of the progress bar, in the sidebar's lower
# half (about 60 px left of the sidebar's right edge at this window size: that column first).
FOUND=""
for dx in 59 53 65 47 71; do
  find_y "$CANCEL" $((SX + SW - dx)) $((SY + SH / 2)) $((SY + SH - 4)) 4
  if [ -n "$FOUND" ]; then CANCEL_X=$((SX + SW - dx)); break; fi
done
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no Cancel button beside the progress bar"; exit 1; }
is "$JOB['running']" || { echo "FAIL: the download ended before Cancel could be pressed"; exit 1; }
click "$CANCEL_X" "$FOUND"
expect "$JOB['state'] == 'cancelled' and not $JOB['running']" "Cancel stops the download"
echo "  the box says: $(state "['models']['job']['message']")"
expect "not s['models']['installed'] and not s['models']['segment_enabled'] and s['models']['partial_bytes'] > 0" \
  "after Cancel: no model in place, Segment Parts still grey, bytes kept for a resume"
echo "  kept: $(state "['models']['partial_bytes']") bytes"

# 5. A second Download resumes from the kept bytes and completes.
button "$DOWNLOAD" "$LEFT_X"
click "$BX" "$BY"
if ! wait_for "$JOB['state'] == 'done'" 120; then
  shot failed
  echo "FAIL: the second Download did not complete:"; state "['models']['job']"; exit 1
fi
RANGE=$(grep -o "bytes=[1-9][0-9]*-" "$HUB_LOG" | head -1 || true)
if [ -z "$RANGE" ]; then
  echo "FAIL: the second Download did not resume (no Range request):"; cat "$HUB_LOG"; exit 1
fi
echo "PASS a second Download resumes from the kept bytes (it asked for $RANGE) and completes"
expect "s['models']['installed'] and s['models']['segment_enabled'] and s['models']['reason'] == ''" \
  "installed: Segment Parts is enabled"
sleep 1
shot models_installed

# 6. Segment Parts runs with the downloaded model.
segment 300
expect "s['chair']['segmented'] and s['chair']['run'].get('model') == '$MODEL'" \
  "Segment Parts ran with the downloaded $MODEL"
echo "  the chair holds the parts $(state "['chair']['parts']")"
no_tracebacks
