#!/usr/bin/env bash
# Inside the chroot, with DISPLAY set: two chairs selected in Blender's UI. Tick "One Student
# for All Selected" and Segment Parts: both get parts from one student; untick it and run
# again: each gets its own. Both times both chairs must come out right.
#   bash .ci/ui_multi.sh SCENE.blend OUT_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ui_lib.sh" "$@"  # SCENE=$1, OUT=$2
start_blender multi multi
open_tab
expect "not s['one_student'] and all(o['selected_object'] for o in s['objects'].values())" \
  "two chairs selected; One Student for All Selected is off"
button "bpy.ops.partdistill.segment_parts()" "$BUTTON_X" $((SY + SH / 3))
# The checkbox is the row above Segment Parts: click up from the button until it is ticked.
for ((y = BY - 12; y > BY - 60; y -= 4)); do
  click "$LEFT_X" "$y"
  fresh
  is "s['one_student']" && break
done
expect "s['one_student']" "ticked One Student for All Selected (at $LEFT_X,$y)"
TICK_Y=$y

# both(EXPR): EXPR, with o standing for each chair in turn, holds for both
both() { echo "all(($1) for o in s['objects'].values()) and len(s['objects']) == 2"; }
# A chair agrees with its true parts when its face-weighted agreement beats the baseline (the
# agreement of answering the part with the most faces everywhere: "leg", 4 of the 6 boxes)
# by MARGIN. agrees prints the check's line with both figures for each chair.
MARGIN=0.10
agrees() {
  expect "$(both "o['agreement'] > o['baseline'] + $MARGIN")" \
    "both chairs agree with their true parts beyond the baseline + $MARGIN: $(value \
    "', '.join(f\"{n}: agreement {o['agreement']:.3f}, baseline {o['baseline']:.3f}\" for n, o in s['objects'].items())")"
}
segment 600
expect "$(both "o['run'].get('student_shared_by') == ['Chair', 'Chair 2']")" \
  "both chairs segmented by one student (run record: student shared by Chair, Chair 2)"
agrees
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 1
shot multi

click "$LEFT_X" "$TICK_Y"
expect "not s['one_student']" "unticked One Student for All Selected"
SHARED=$(value "[o['labels'] for o in s['objects'].values()]")
segment 600
expect "$(both "o['run'].get('student_shared_by') == []") and [o['labels'] for o in s['objects'].values()] != $SHARED" \
  "both chairs segmented again, each by its own student (new labels, no shared student)"
agrees
no_tracebacks
