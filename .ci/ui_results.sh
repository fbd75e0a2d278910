#!/usr/bin/env bash
# Inside the chroot, with DISPLAY set: segment the chair in Blender's UI, then use the Results
# panel as a user would: select a part's faces, hide one, isolate one, show all, select the
# low-confidence faces, and Show Evidence (an Image Editor with the teacher's prediction).
#   bash .ci/ui_results.sh SCENE.blend OUT_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ui_lib.sh" "$@"  # SCENE=$1, OUT=$2
start_blender results
open_tab
segment 480
expect "s['chair']['parts'] == ['seat', 'back', 'leg']" "the chair holds the parts seat, back, leg"

# A part's row: swatch, name, counts, then Select, Hide and Isolate icons at its right end.
# Find the first row's Isolate down the column of the right-most icon, then the other icons
# along that row, leftwards.
ISOLATE_X=$((SX + SW - 49))
find_y "bpy.ops.partdistill.isolate_part(index=0)" "$ISOLATE_X" "$SEGMENT_Y" $((SY + SH - 4)) 4
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no Isolate icon on the first part's row"; exit 1; }
ROW0=$FOUND
find_x "bpy.ops.partdistill.hide_part(index=0)" "$ROW0" $((ISOLATE_X - 8)) $((SX + SW / 2)) -5
HIDE_X=$FOUND
find_x "bpy.ops.partdistill.select_part(index=0)" "$ROW0" $((HIDE_X - 8)) $((SX + SW / 2)) -5
SELECT_X=$FOUND
[ -n "$HIDE_X" ] && [ -n "$SELECT_X" ] || { echo "FAIL: no Hide or Select icon on the row"; exit 1; }
# The second and third rows: down the Isolate column again.
find_y "bpy.ops.partdistill.isolate_part(index=1)" "$ISOLATE_X" $((ROW0 + 8)) $((ROW0 + 60)) 3
ROW1=$FOUND
find_y "bpy.ops.partdistill.isolate_part(index=2)" "$ISOLATE_X" $((ROW1 + 8)) $((ROW1 + 60)) 3
ROW2=$FOUND
[ -n "$ROW1" ] && [ -n "$ROW2" ] || { echo "FAIL: fewer than three part rows"; exit 1; }
echo "part rows at y $ROW0 $ROW1 $ROW2; icons at x $SELECT_X $HIDE_X $ISOLATE_X"

click "$SELECT_X" "$ROW0"
expect "s['chair']['mode'] == 'EDIT' and s['chair']['selected'] == 'seat'" \
  "Select on the seat row: edit mode, exactly the seat's faces selected"
expect "s['panels_drawn']['PARTDISTILL_PT_results'].get('with in edit mode', 0) > 0" \
  "the Results panel drew in edit mode"
# In edit mode each row ends in an Assign button (see ui_correct.sh): the icons move left.
# Find them again along their rows, from the right.
find_x "bpy.ops.partdistill.hide_part(index=1)" "$ROW1" $((SX + SW - 30)) $((SX + SW / 2)) -4
HIDE_X=$FOUND
find_x "bpy.ops.partdistill.isolate_part(index=2)" "$ROW2" $((SX + SW - 30)) $((SX + SW / 2)) -4
ISOLATE_X=$FOUND
[ -n "$HIDE_X" ] && [ -n "$ISOLATE_X" ] || { shot failed; echo "FAIL: no Hide or Isolate icon on the rows in edit mode"; exit 1; }
echo "in edit mode: Hide at x $HIDE_X, Isolate at x $ISOLATE_X"
click "$HIDE_X" "$ROW1"
expect "s['chair']['hidden'] == 'back' and s['chair']['selected'] == 'seat'" \
  "Hide on the back row: exactly the back's faces hidden, the seat still selected"
click "$ISOLATE_X" "$ROW2"
expect "s['chair']['hidden'] == 'all but leg'" "Isolate on the leg row: every face but the leg's hidden"
button "bpy.ops.partdistill.show_all_parts()" "$BUTTON_X" "$ROW2"
click "$BX" "$BY"
expect "s['chair']['hidden'] == 'none'" "Show All: no face hidden"
button "bpy.ops.partdistill.select_low_confidence()" "$LEFT_X" "$BY"
click "$BX" "$BY"
expect "s['chair']['low_confidence_faces'] > 0 and s['chair']['selected'] == 'low confidence'" \
  "Low Confidence: exactly the faces below the threshold selected ($(state "['chair']['low_confidence_faces']") faces)"
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 1
shot results

# Show Evidence sits below the fold: scroll the sidebar down, as a user would.
for _ in 1 2 3 4 5 6; do xdotool mousemove "$BUTTON_X" $((SY + SH / 2)) click 5; done
fresh
button "bpy.ops.partdistill.show_evidence(view=0)" "$LEFT_X"
click "$BX" "$BY"
expect "'window 1: PartDistill teacher 0' in s['image_editors']" \
  "Show Evidence: a new window's Image Editor shows the teacher's prediction for view 0"
sleep 1
shot evidence
no_tracebacks
