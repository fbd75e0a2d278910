#!/usr/bin/env bash
# Inside the chroot, with DISPLAY set: correct a segmentation in Blender's UI as a user would.
# Segment the chair; in Edit Mode click a face in the viewport, Select More, and Assign the
# faces to their true part (they carry it and are marked as corrections; the panel's counts
# follow); Refine (the student re-learns with the corrections: a new result, the corrected
# faces keep their part); Ctrl+Z (the labels from before Refine are back); then "Use as
# Example": a second, taller chair segmented with the first as an example comes out otherwise
# than without it (Segment Parts is deterministic: same seed, same labels); last, Clear
# Segmentation with Keep Corrections keeps the corrections. Scenario "correct" of ui_driver.py.
#   bash .ci/ui_correct.sh SCENE.blend OUT_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ui_lib.sh" "$@"  # SCENE=$1, OUT=$2
start_blender correct correct
open_tab
expect "s['active'] == 'Chair' and s['chair']['selected_object'] and not s['objects']['Chair 2']['selected_object']" \
  "the chair active and selected, a second chair beside it not selected"

# copied_path_at X Y: what Ctrl+Shift+C (Copy Data Path) copies with the mouse at X,Y: the
# path of the property under it ("partdistill_example"), "" when there is none
copied_path_at() {
  local start; start=$(state "['sequence']")
  xdotool mousemove "$1" "$2" sleep 0.05 key ctrl+shift+c
  fresh
  value "s['copied']['text'] if s['copied']['sequence'] > $start else ''"
}
# field WANT X: sets BX, BY to the property whose data path is WANT, up the column X from the
# sidebar's bottom (the fields sought sit low in the Results panel)
field() {
  local y
  for ((y = SY + SH - 4; y >= SY + 20; y -= 5)); do
    if [ "$(copied_path_at "$2" "$y")" = "$1" ]; then BX=$2; BY=$y; return; fi
  done
  shot failed; echo "FAIL: no field '$1' in the sidebar (column x=$2)"; exit 1
}
# locate WANT Y: sets BX, BY to the button whose Ctrl+C is WANT, first along the row Y (right
# to left), then down columns of the sidebar's right half
locate() {
  local x
  find_x "$1" "$2" $((SX + SW - 30)) $((SX + 12)) -5
  if [ -n "$FOUND" ]; then BX=$FOUND; BY=$2; return; fi
  for ((x = SX + SW - 40; x > SX + SW / 2; x -= 16)); do
    find_y "$1" "$x" "$SEGMENT_Y" $((SY + SH - 4)) 4
    if [ -n "$FOUND" ]; then BX=$x; BY=$FOUND; return; fi
  done
  shot failed; echo "FAIL: no button '$1' in the sidebar"; exit 1
}
scroll_sidebar() {  # up|down: roll the mouse wheel over the sidebar, as a user would
  local wheel=5; [ "$1" = up ] && wheel=4
  for _ in 1 2 3 4 5 6 7 8 9 10; do xdotool mousemove "$BUTTON_X" $((SY + SH / 2)) click "$wheel"; done
  sleep 0.3; fresh
}
viewport() {  # the middle of the viewport's canvas, where keys go to the viewport
  echo "$(value "s['canvas']['x'] + s['canvas']['width'] // 2") $(value "s['canvas']['y'] + s['canvas']['height'] // 2")"
}
key_over_viewport() { xdotool mousemove $(viewport) sleep 0.2 key "$1"; }
click_object() {  # NAME: click on the object in the viewport (object mode: selects it)
  local x y
  x=$(value "s['objects']['$1']['screen'][0]"); y=$(value "s['objects']['$1']['screen'][1]")
  click "$x" "$y"
  expect "s['active'] == '$1' and s['objects']['$1']['selected_object'] and sum(o['selected_object'] for o in s['objects'].values()) == 1" \
    "a click on $1 in the viewport ($x,$y) makes it the active and only selected object"
}
# rows_match NAME: the Results panel's rows show the object's faces per part of its labels
rows_match() {
  echo "s['objects']['$1']['rows'] == [[p, s['objects']['$1']['label_counts'].get(p, 0)] for p in s['objects']['$1']['parts']]"
}

# ---------------------------------------------------------------- 1. segment the chair
segment 480
expect "s['chair']['parts'] == ['seat', 'back', 'leg'] and s['chair']['corrections']['faces'] == 0" \
  "the chair holds the parts seat, back, leg and no corrections"
expect "$(rows_match Chair)" "the panel's rows: $(value "s['chair']['rows']")"
# The first part's row, down the column of its right-most icon (Isolate), as ui_results does.
ISOLATE_X=$((SX + SW - 49))
find_y "bpy.ops.partdistill.isolate_part(index=0)" "$ISOLATE_X" "$SEGMENT_Y" $((SY + SH - 4)) 4
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no Isolate icon on the first part's row"; exit 1; }
ROW0=$FOUND
find_y "bpy.ops.partdistill.isolate_part(index=2)" "$ISOLATE_X" $((ROW0 + 16)) $((ROW0 + 100)) 3
ROW2=$FOUND
[ -n "$ROW2" ] || { shot failed; echo "FAIL: no third part row"; exit 1; }
echo "  part rows at y $ROW0..$ROW2"

# ---------------------------------------------------------------- 2. select faces, Assign
expect "s['chair']['screen'] and s['objects']['Chair 2']['screen']" "both chairs seen in the viewport"
PX=$(value "s['chair']['screen'][0]"); PY=$(value "s['chair']['screen'][1]")
key_over_viewport Tab
expect "s['chair']['mode'] == 'EDIT'" "Tab over the viewport: the chair in Edit Mode"
key_over_viewport 3
key_over_viewport alt+a  # nothing selected
expect "s['chair']['selected_faces'] == 0" "face select mode, nothing selected"
click "$PX" "$PY"
expect "s['chair']['selected_faces'] == 1" "a click on the chair in the viewport selects a face"
key_over_viewport ctrl+KP_Add  # Select More: the face and its neighbours
expect "s['chair']['selected_faces'] > 1" "Select More (Ctrl+Numpad +) grows the selection"
echo "  selected: $(value "s['chair']['selected_faces']") faces, labelled $(value "s['chair']['selected_labels']"), truly $(value "s['chair']['selected_truth']")"
# Assign them to their true part when the student got some of them wrong (a real correction),
# else to a part none of them carries: either way some faces change their part.
TARGET_NAME=$(value "(lambda c, l, parts: c if set(l) != {c} else [p for p in parts if p not in l][0])(max(s['chair']['selected_truth'], key=s['chair']['selected_truth'].get), s['chair']['selected_labels'], s['chair']['parts'])")
TARGET=$(value "s['chair']['parts'].index('$TARGET_NAME')")
N=$(value "s['chair']['selected_faces']")
SELECTED_HASH=$(state "['chair']['selected_hash']")
ROWS_BEFORE=$(value "s['chair']['rows']")
expect "s['panels_drawn']['PARTDISTILL_PT_results'].get('with in edit mode', 0) > 0" \
  "the Results panel drew in edit mode"
locate "bpy.ops.partdistill.assign_part(index=$TARGET)" $((ROW0 + (ROW2 - ROW0) * TARGET / 2))
echo "  Assign for $TARGET_NAME at $BX,$BY"
click "$BX" "$BY"
expect "s['chair']['corrections']['faces'] == $N and s['chair']['corrections']['faces_hash'] == '$SELECTED_HASH' and s['chair']['corrections']['as'] == {'$TARGET_NAME': $N}" \
  "Assign $TARGET_NAME: the $N selected faces are marked as corrections to $TARGET_NAME"
expect "s['chair']['corrections']['labelled'] == {'$TARGET_NAME': $N} and s['chair']['mode'] == 'EDIT' and s['chair']['selected_hash'] == '$SELECTED_HASH'" \
  "the corrected faces carry the part $TARGET_NAME; still in Edit Mode with the same faces selected"
expect "s['chair']['rows'] != $ROWS_BEFORE and $(rows_match Chair) and s['chair']['panel_corrected'] == $N" \
  "the panel's counts changed with the labels, and it counts $N faces corrected"
echo "  rows: $ROWS_BEFORE -> $(value "s['chair']['rows']")"
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 1
shot correct_assigned

# ---------------------------------------------------------------- 3. Refine
AGREEMENT=$(value "round(s['chair']['agreement'], 3)")
LABELS_BEFORE=$(state "['chair']['labels']")
CONFIDENCE_BEFORE=$(state "['chair']['confidence']")
ROWS_BEFORE=$(value "s['chair']['rows']")
REFINES=$(state "['refines']")
scroll_sidebar down  # Refine sits below the fold
button "bpy.ops.partdistill.refine()" "$BUTTON_X"
click "$BX" "$BY"
STARTED=$(date +%s)
# Refine computes on Blender's main thread (a few seconds, more on a busy machine): the driver
# does not report until it ends, so wait on the state file without asking for fresh reports.
until=$(( $(date +%s) + 180 ))
while [ "$(date +%s)" -lt "$until" ] && ! is "s['refines'] > $REFINES"; do sleep 0.5; done
if ! wait_for "s['refines'] > $REFINES" 10; then
  shot failed; echo "FAIL: Refine (clicked at $BX,$BY) did not finish in 180 s: $(state "['progress']")"
  tail -20 "$LOG"; exit 1
fi
echo "  refined in $(( $(date +%s) - STARTED )) s"
expect "(s['chair']['labels'], s['chair']['confidence']) != ('$LABELS_BEFORE', '$CONFIDENCE_BEFORE')" \
  "Refine rewrote the result (new labels or confidences; refines: $(state "['refines']"))"
expect "s['chair']['corrections']['faces'] == $N and s['chair']['corrections']['labelled'] == {'$TARGET_NAME': $N}" \
  "after Refine the $N corrected faces still carry $TARGET_NAME"
expect "$(rows_match Chair) and s['chair']['panel_corrected'] == $N and s['chair']['mode'] == 'EDIT'" \
  "the panel's counts are those of the refined labels; still in Edit Mode"
echo "  rows: $ROWS_BEFORE -> $(value "s['chair']['rows']")"
echo "  agreement with the true parts: $AGREEMENT before Refine, $(value "round(s['chair']['agreement'], 3)") after"
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 1
shot correct_refined

# ---------------------------------------------------------------- 4. Ctrl+Z undoes Refine
key_over_viewport ctrl+z
expect "s['chair']['labels'] == '$LABELS_BEFORE' and s['chair']['confidence'] == '$CONFIDENCE_BEFORE'" \
  "one Ctrl+Z over the viewport brings back the labels and confidences from before Refine"
expect "s['chair']['corrections']['faces'] == $N and s['chair']['corrections']['as'] == {'$TARGET_NAME': $N}" \
  "the $N corrections stay"
expect "$(rows_match Chair) and s['chair']['rows'] == $ROWS_BEFORE" \
  "in Edit Mode the panel's counts are those of the labels before Refine again"
key_over_viewport Tab
expect "s['chair']['mode'] == 'OBJECT' and s['chair']['labels'] == '$LABELS_BEFORE'" \
  "Tab: back in Object Mode with the labels from before Refine"

# ---------------------------------------------------------------- 5. an example for another
scroll_sidebar up
click_object "Chair 2"
segment 480
expect "s['objects']['Chair 2']['parts'] == ['seat', 'back', 'leg'] and not s['chair']['example']" \
  "the second chair segmented without an example (the chair is not one)"
ALONE=$(state "['objects']['Chair 2']['labels']")
ALONE_CONFIDENCE=$(state "['objects']['Chair 2']['confidence']")
echo "  without example: $(value "s['objects']['Chair 2']['confusion']")"
CHAIR_LABELS=$(state "['chair']['labels']")

click_object "Chair"
scroll_sidebar down
field "partdistill_example" "$LEFT_X"
click "$BX" "$BY"
expect "s['chair']['example'] and not s['objects']['Chair 2']['example']" \
  "Use as Example (clicked at $BX,$BY): the chair is an example"
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 1
shot correct_example

scroll_sidebar up
click_object "Chair 2"
segment 480
expect "s['objects']['Chair 2']['parts'] == ['seat', 'back', 'leg'] and (s['objects']['Chair 2']['labels'], s['objects']['Chair 2']['confidence']) != ('$ALONE', '$ALONE_CONFIDENCE')" \
  "the second chair segmented with the chair as an example comes out otherwise than without it"
echo "  with example: $(value "s['objects']['Chair 2']['confusion']")"
echo "  run record: $(value "s['objects']['Chair 2']['run']")"
expect "s['chair']['labels'] == '$CHAIR_LABELS' and s['chair']['example'] and s['chair']['corrections']['faces'] == $N" \
  "the example chair itself is unchanged (labels, example flag, corrections)"
expect "$(rows_match 'Chair 2')" "the panel's rows for the second chair: $(value "s['objects']['Chair 2']['rows']")"
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 1
shot correct

# ---------------------------------------------------------------- Clear, Keep Corrections
click_object "Chair"
scroll_sidebar down
field "partdistill.keep_corrections" $((SX + SW * 3 / 4))
click "$BX" "$BY"
expect "s['keep_corrections']" "ticked Keep Corrections (at $BX,$BY)"
button "bpy.ops.partdistill.clear_segmentation(keep_corrections=True)" "$LEFT_X"
click "$BX" "$BY"
expect "not s['chair']['segmented'] and s['chair']['corrections']['faces'] == $N and s['chair']['corrections']['as'] == {'$TARGET_NAME': $N}" \
  "Clear Segmentation with Keep Corrections: no segmentation, the $N corrections kept"
no_tracebacks
