#!/usr/bin/env bash
# Inside the chroot, with DISPLAY set to a running Xvfb: open the scene in Blender's UI, open
# the PartDistill tab, press Segment Parts (xdotool), wait for the parts, screenshot the
# screen; then one-step undo and redo, ESC during a run, and Clear Segmentation.
#   bash .ci/ui_test.sh SCENE.blend OUT_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ui_lib.sh" "$@"  # SCENE=$1, OUT=$2
start_blender ui
shot start
open_tab
BEFORE=$(state "['snapshot']")  # the object before any segmentation
sleep 1
shot tab
expect "s['panels_drawn']['PARTDISTILL_PT_results'].get('without', 0) > 0" \
  "the panels drew for an object without a segmentation"

segment 480  # 25-30 s on an idle 2-core machine, 204 s measured under heavy load
echo "materials: $(state "['materials']")"
# Rendering runs in short steps on the main thread and the rest in a worker thread: the UI
# must not stand still. The driver's timer would show a freeze as a gap between its reports,
# counted from the press of Segment Parts (the checks before the run) to the end of the
# writeback on the main thread (see longest_stall_s in ui_driver.py).
STALL_LIMIT_MS=2000
STALL_MS=$(value "round(s['longest_stall_s'] * 1000)")
PHASES=$(value "', '.join(f'{k} {v * 1000:.0f} ms' for k, v in s['stalls_s'].items())")
is "s['longest_stall_s'] * 1000 < $STALL_LIMIT_MS" || {
  echo "FAIL: the UI stood still for $STALL_MS ms (limit $STALL_LIMIT_MS ms) between the press of Segment Parts and the end of writeback (longest by phase: $PHASES)"; exit 1; }
echo "PASS the UI stayed responsive from the press of Segment Parts to the end of writeback: longest main-thread stall $STALL_MS ms < $STALL_LIMIT_MS ms (by phase: $PHASES; report interval 100 ms)"
# Move the mouse away (no tooltip in the picture) and let the viewport redraw.
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 2
import -window root "$OUT/panel.png"
echo "screenshot $OUT/panel.png"
SEGMENTED=$(state "['snapshot']")
expect "s['panels_drawn']['PARTDISTILL_PT_results'].get('with', 0) > 0" \
  "the panels drew for an object with a segmentation"
[ "$SEGMENTED" != "$BEFORE" ] || { echo "FAIL: the segmentation left the object unchanged"; exit 1; }

# wait_snapshot WANT SECONDS: wait until the object's snapshot is WANT; 1 if it never is.
wait_snapshot() {
  local until=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$until" ]; do
    fresh
    [ "$(state "['snapshot']")" = "$1" ] && return 0
  done
  return 1
}
CX=$(state "['canvas']['x']"); CY=$(state "['canvas']['y']")
CW=$(state "['canvas']['width']"); CH=$(state "['canvas']['height']")
VIEW_X=$((CX + CW / 4)); VIEW_Y=$((CY + CH / 4))  # empty viewport, away from the chair

# 1. Undo: one Ctrl+Z over the viewport takes the whole segmentation away; Ctrl+Shift+Z redoes.
xdotool mousemove "$VIEW_X" "$VIEW_Y" sleep 0.2 key ctrl+z
wait_snapshot "$BEFORE" 10 || {
  echo "FAIL undo: one Ctrl+Z did not restore the object: $(state "['snapshot']") (before: $BEFORE)"; exit 1; }
[ "$(state "['has_part_attribute']")" = "False" ] || { echo "FAIL undo: partdistill_part is still there"; exit 1; }
echo "PASS undo: one Ctrl+Z restored the object as before Segment Parts: $BEFORE"
xdotool mousemove "$VIEW_X" "$VIEW_Y" sleep 0.2 key ctrl+shift+z
wait_snapshot "$SEGMENTED" 10 || {
  echo "FAIL redo: Ctrl+Shift+Z did not bring the parts back: $(state "['snapshot']")"; exit 1; }
echo "PASS redo: Ctrl+Shift+Z brought the parts back: $SEGMENTED"

# 2. Cancel: press Segment Parts again, ESC while it runs: the object stays as it was.
FINISHED_RUNS=$(state "['finished_runs']")  # undo empties the list: count from here
click "$SEGMENT_X" "$SEGMENT_Y"
for _ in $(seq 100); do
  fresh
  [ "$(state "['running']")" = "True" ] && [ -n "$(state "['progress']")" ] && break
done
[ "$(state "['running']")" = "True" ] || { echo "FAIL cancel: the second Segment Parts never started"; exit 1; }
STAGE=$(state "['progress']")
xdotool key Escape
CANCEL_STARTED=$(date +%s)
while [ "$(state "['running']")" = "True" ]; do
  [ $(( $(date +%s) - CANCEL_STARTED )) -lt 60 ] || { echo "FAIL cancel: still running 60 s after ESC"; exit 1; }
  fresh
done
echo "ESC pressed during '$STAGE'; the run ended $(( $(date +%s) - CANCEL_STARTED )) s later"
fresh
[ "$(state "['finished_runs']")" = "$FINISHED_RUNS" ] || {
  echo "FAIL cancel: the run after ESC ended FINISHED ($(state "['finished_runs']") finished runs, $FINISHED_RUNS before)"; exit 1; }
fresh
[ "$(state "['snapshot']")" = "$SEGMENTED" ] || {
  echo "FAIL cancel: the object changed: $(state "['snapshot']") (before: $SEGMENTED)"; exit 1; }
echo "PASS cancel: ended without finishing ($FINISHED_RUNS finished run(s) before and after); groups, slots, attributes and face slots as before: $SEGMENTED"

# 2b. The Cancel button: while a run goes, the progress bar stands where Segment Parts was, with
# Cancel at its right end. Press Segment Parts again, find Cancel along that row, click it.
click "$SEGMENT_X" "$SEGMENT_Y"
wait_for "s['running']" 10 || { echo "FAIL cancel button: the third Segment Parts never started"; exit 1; }
find_x "bpy.ops.partdistill.cancel()" "$SEGMENT_Y" $((SX + SW - 30)) $((SX + SW / 2)) -4
[ -n "$FOUND" ] || { shot failed; echo "FAIL cancel button: no Cancel beside the progress bar"; exit 1; }
STAGE=$(state "['progress']")
click "$FOUND" "$SEGMENT_Y"
wait_for "not s['running']" 60 || { echo "FAIL cancel button: still running 60 s after Cancel"; exit 1; }
fresh
is "s['finished_runs'] == $FINISHED_RUNS" || { echo "FAIL cancel button: the run ended FINISHED"; exit 1; }
[ "$(state "['snapshot']")" = "$SEGMENTED" ] || {
  echo "FAIL cancel button: the object changed: $(state "['snapshot']")"; exit 1; }
echo "PASS cancel button: Cancel (at $FOUND,$SEGMENT_Y) during '$STAGE' ended the run; the object as before"

# 3. Clear Segmentation: the Results panel's button (scroll the sidebar down to reach it).
for _ in 1 2 3 4 5 6; do xdotool mousemove "$BUTTON_X" $((SY + SH / 2)) click 5; done
fresh
# It shares its row with the Keep Corrections checkbox (off: Clear passes keep_corrections=False).
button "bpy.ops.partdistill.clear_segmentation(keep_corrections=False)" "$LEFT_X"
CLEAR=$BY
click "$BX" "$BY"
for _ in $(seq 50); do fresh; [ "$(state "['has_part_attribute']")" = "False" ] && break; done
snap() { python3 -c "import json; print(json.loads(json.load(open('$PARTDISTILL_UI_STATE'))['snapshot'])$1)"; }
before() { python3 -c "import json; print(json.loads('$BEFORE')$1)"; }
for key in groups attributes face_slots; do
  [ "$(snap "['$key']")" = "$(before "['$key']")" ] || {
    echo "FAIL clear: $key after Clear Segmentation: $(snap "['$key']") (before segmentation: $(before "['$key']"))"; exit 1; }
done
echo "PASS clear: Clear Segmentation (at $BX,$CLEAR): groups $(snap "['groups']"), attributes $(snap "['attributes']") and face slots as before segmentation"
# Material slots too, empty ones included (Blender leaves an empty slot if clear pops badly).
if [ "$(snap "['slots']")" = "$(before "['slots']")" ]; then
  echo "PASS clear: material slots as before segmentation: $(snap "['slots']")"
else
  echo "FAIL clear: material slots $(snap "['slots']") after Clear, $(before "['slots']") before segmentation"
  exit 1
fi
no_tracebacks
