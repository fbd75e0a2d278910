#!/usr/bin/env bash
# Inside the chroot, with DISPLAY set to a running Xvfb: open the scene in Blender's UI, open
# the PartDistill tab, press Segment Parts (xdotool), wait for the parts, screenshot the screen.
#   bash .ci/ui_test.sh SCENE.blend OUT_DIR
set -euo pipefail
SCENE=$1; OUT=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PARTDISTILL_UI_STATE=$OUT/ui_state.json
rm -f "$PARTDISTILL_UI_STATE"
blender --window-geometry 0 0 1280 800 "$SCENE" --python "$HERE/ui_driver.py" >"$OUT/ui_blender.log" 2>&1 &
BLENDER_PID=$!
trap 'kill $BLENDER_PID 2>/dev/null || true; wait $BLENDER_PID 2>/dev/null || true' EXIT
state() { python3 -c "import json,sys; print(json.load(open('$PARTDISTILL_UI_STATE'))$1)"; }
for _ in $(seq 120); do [ -f "$PARTDISTILL_UI_STATE" ] && break; sleep 0.5; done
[ -f "$PARTDISTILL_UI_STATE" ] || { echo "Blender's UI never came up"; tail -20 "$OUT/ui_blender.log"; exit 1; }
sleep 1
import -window root "$OUT/ui_start.png"

# Open the PartDistill tab: tabs stand in a column on the sidebar's right edge, and Python
# cannot read where; click down that column until the sidebar reports the tab.
SX=$(state "['sidebar']['x']"); SY=$(state "['sidebar']['y']")
SW=$(state "['sidebar']['width']"); SH=$(state "['sidebar']['height']")
fresh() {  # wait until the driver has written two states since now
  local start; start=$(state "['sequence']")
  for _ in $(seq 100); do [ "$(state "['sequence']")" -ge $((start + 2)) ] && return 0; sleep 0.1; done
  echo "the driver stopped reporting"; exit 1
}
TAB_X=$((SX + SW - 12))
for ((y = SY + 10; y < SY + SH && y < SY + 400; y += 15)); do
  xdotool mousemove "$TAB_X" "$y" click 1
  fresh
  [ "$(state "['tab']")" = "PartDistill" ] && break
done
[ "$(state "['tab']")" = "PartDistill" ] || { echo "could not open the PartDistill tab (tab: $(state "['tab']"))"; exit 1; }
echo "PartDistill tab open (clicked at $TAB_X,$y)"
xdotool mousemove $((SX + SW / 2)) $((SY + SH / 2))
sleep 1
import -window root "$OUT/ui_tab.png"

# Find Segment Parts: hover down the panel's middle; Ctrl+C over an operator button copies its Python command
# of the button under the mouse, which the driver reads from the clipboard.
BUTTON_X=$((SX + (SW - 24) / 2))
FOUND=""
for ((y = SY + 20; y < SY + SH; y += 10)); do
  xdotool mousemove "$BUTTON_X" "$y" sleep 0.05 key ctrl+c
  fresh
  if [ "$(state "['clipboard']")" = "bpy.ops.partdistill.segment_parts()" ]; then FOUND=$y; break; fi
done
[ -n "$FOUND" ] || { echo "no Segment Parts button in the PartDistill tab"; exit 1; }
echo "Segment Parts at $BUTTON_X,$FOUND: press it"
xdotool mousemove "$BUTTON_X" "$FOUND" click 1
STARTED=$(date +%s)
TIMEOUT_S=480  # 25-30 s on an idle 2-core machine, 204 s measured under heavy load
while [ $(( $(date +%s) - STARTED )) -lt $TIMEOUT_S ]; do
  fresh
  [ "$(state "['segmented']")" = "True" ] && break
  if [ $(( $(date +%s) - STARTED )) -gt 5 ] && [ "$(state "['running']")" = "False" ]; then
    break  # the run ended (or never started) without parts: the status bar says why
  fi
done
if [ "$(state "['segmented']")" != "True" ]; then
  import -window root "$OUT/ui_failed.png"
  echo "no parts after $(( $(date +%s) - STARTED )) s (see $OUT/ui_failed.png): $(state "['progress']")"
  tail -20 "$OUT/ui_blender.log"; exit 1
fi
echo "segmented in $(( $(date +%s) - STARTED )) s; materials: $(state "['materials']")"
# Move the mouse away (no tooltip in the picture) and let the viewport redraw.
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 2
import -window root "$OUT/panel.png"
echo "screenshot $OUT/panel.png"
