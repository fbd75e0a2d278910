# Shared by the .ci/ui_*.sh tests (sourced): start Blender's UI with .ci/ui_driver.py, read
# what the driver reports, find buttons as a user would see them, and click with xdotool.
#
# Buttons are found by hovering and pressing Ctrl+C: over an operator button Blender copies
# its Python command ("bpy.ops.partdistill.segment_parts()"), over a field its value; the
# driver reads the clipboard back. Python cannot ask Blender where a button is drawn.
#
#   source .ci/ui_lib.sh SCENE.blend OUT_DIR
# Needs DISPLAY. Every check prints a line that starts with PASS, or FAIL and ends the script.
SCENE=$1; OUT=$2
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# start_blender NAME [SCENARIO]: Blender on the test scene, logging to $OUT/NAME_blender.log
start_blender() {
  export PARTDISTILL_UI_STATE=$OUT/$1_state.json PARTDISTILL_UI_SCENARIO=${2:-single}
  LOG=$OUT/$1_blender.log
  rm -f "$PARTDISTILL_UI_STATE"
  # Line-buffered, so that what Blender prints can be read while it runs.
  stdbuf -oL -eL blender --window-geometry 0 0 1280 800 "$SCENE" \
    --python "$HERE/ui_driver.py" >"$LOG" 2>&1 &
  BLENDER_PID=$!
  trap 'kill $BLENDER_PID 2>/dev/null || true; wait $BLENDER_PID 2>/dev/null || true' EXIT
  for _ in $(seq 120); do [ -f "$PARTDISTILL_UI_STATE" ] && break; sleep 0.5; done
  [ -f "$PARTDISTILL_UI_STATE" ] || { echo "FAIL: Blender's UI never came up"; tail -20 "$LOG"; exit 1; }
  sleep 1
  SX=$(state "['sidebar']['x']"); SY=$(state "['sidebar']['y']")
  SW=$(state "['sidebar']['width']"); SH=$(state "['sidebar']['height']")
  BUTTON_X=$((SX + (SW - 24) / 2))  # the middle of the sidebar's panels (tabs: 24 px)
  LEFT_X=$((SX + 40))               # left of a row's middle, on a left-hand button
}

# state EXPR: a Python expression on the driver's state s, e.g. state "['tab']"
state() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(s$1)" "$PARTDISTILL_UI_STATE"; }
# value EXPR: a Python expression on s, e.g. value "len(s['objects'])"
value() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print($1)" "$PARTDISTILL_UI_STATE"; }
# is EXPR: true when the Python expression (on s) holds, e.g. is "s['running']"
is() { [ "$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(bool($1))" "$PARTDISTILL_UI_STATE")" = True ]; }

fresh() {  # wait until the driver has written two states since now
  local start; start=$(state "['sequence']")
  for _ in $(seq 100); do [ "$(state "['sequence']")" -ge $((start + 2)) ] && return 0; sleep 0.05; done
  echo "FAIL: the driver stopped reporting"; exit 1
}

# wait_for EXPR SECONDS: 0 once EXPR holds, 1 if it never does
wait_for() {
  local until=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$until" ]; do fresh; is "$1" && return 0; done
  return 1
}

# expect EXPR MESSAGE: PASS MESSAGE when EXPR holds within 10 s, else FAIL and exit
expect() {
  if wait_for "$1" 10; then echo "PASS $2"; else
    echo "FAIL $2: $1 does not hold"; shot "failed"; exit 1; fi
}

shot() { import -window root "$OUT/ui_$1.png"; }

copied_at() {  # X Y: what Ctrl+C copies with the mouse at X,Y ("" when nothing)
  local start; start=$(state "['sequence']")
  xdotool mousemove "$1" "$2" sleep 0.05 key ctrl+c
  fresh
  value "s['copied']['text'] if s['copied']['sequence'] > $start else ''"
}

# find_y WANT X FROM TO STEP: sets FOUND to the first row y in FROM..TO (STEP; negative goes
# up) where Ctrl+C at X copies exactly WANT; "" when none does.
find_y() {
  FOUND=""
  local y
  for ((y = $3; ($5 > 0 && y <= $4) || ($5 < 0 && y >= $4); y += $5)); do
    if [ "$(copied_at "$2" "$y")" = "$1" ]; then FOUND=$y; return; fi
  done
}

# find_x WANT Y FROM TO STEP: the same along a row; sets FOUND to the column x
find_x() {
  FOUND=""
  local x
  for ((x = $3; ($5 > 0 && x <= $4) || ($5 < 0 && x >= $4); x += $5)); do
    if [ "$(copied_at "$x" "$2")" = "$1" ]; then FOUND=$x; return; fi
  done
}

# button WANT [X] [FROM]: sets BX, BY to the button whose Ctrl+C is WANT, searching the
# sidebar's column X (default: the middle) down from row FROM (default: the top)
button() {
  local x=${2:-$BUTTON_X}
  local from=${3:-$((SY + 20))}
  find_y "$1" "$x" "$from" $((SY + SH - 4)) 6
  [ -n "$FOUND" ] || [ "$from" -le $((SY + 20)) ] || find_y "$1" "$x" $((SY + 20)) "$from" 6
  [ -n "$FOUND" ] || { shot failed; echo "FAIL: no button '$1' in the sidebar (column x=$x)"; exit 1; }
  BX=$x; BY=$FOUND
}

# click X Y: come from a few pixels away (a fresh motion event; a tooltip open over the button
# from an earlier hover otherwise may swallow the press), then click
click() { xdotool mousemove "$1" $(( $2 + 3 )) sleep 0.1 mousemove "$1" "$2" sleep 0.2 click 1; }

open_tab() {  # click down the sidebar's tab column until the PartDistill tab is active
  local tab_x=$((SX + SW - 12)) y
  for ((y = SY + 10; y < SY + SH && y < SY + 400; y += 15)); do
    xdotool mousemove "$tab_x" "$y" click 1
    fresh
    [ "$(state "['tab']")" = "PartDistill" ] && break
  done
  [ "$(state "['tab']")" = "PartDistill" ] || { echo "FAIL: could not open the PartDistill tab (tab: $(state "['tab']"))"; exit 1; }
  echo "PartDistill tab open (clicked at $tab_x,$y)"
  xdotool mousemove $((SX + SW / 2)) $((SY + SH / 2))
}

# segment SECONDS: press Segment Parts and wait until the run ends; FAIL unless it finished
segment() {
  local runs started
  runs=$(state "['finished_runs']")
  # Under the part list and settings: look from a third of the way down first.
  button "bpy.ops.partdistill.segment_parts()" "$BUTTON_X" $((SY + SH / 3))
  SEGMENT_X=$BX; SEGMENT_Y=$BY
  click "$BX" "$BY"
  if ! wait_for "s['running'] or s['finished_runs'] > $runs" 3; then
    echo "the click at $BX,$BY started no run; clicking again"
    click "$BX" "$BY"
  fi
  started=$(date +%s)
  # The driver counts runs that ended FINISHED; one that fails or is cancelled adds none.
  while [ $(( $(date +%s) - started )) -lt "$1" ]; do
    fresh
    [ "$(state "['finished_runs']")" -gt "$runs" ] && break
    if [ $(( $(date +%s) - started )) -gt 5 ] && ! is "s['running']"; then sleep 1; fresh; break; fi
  done
  if [ "$(state "['finished_runs']")" -le "$runs" ]; then
    shot failed
    echo "FAIL: Segment Parts did not finish in $(( $(date +%s) - started )) s: $(state "['progress']")"
    tail -20 "$LOG"; exit 1
  fi
  echo "segmented in $(( $(date +%s) - started )) s"
}

# click_grey_segment: Segment Parts is grey; a click on it must render nothing, start no run
# and report no error
click_grey_segment() {
  local renders
  renders=$(grep -c "partdistill_render" "$LOG" || true)
  button "bpy.ops.partdistill.segment_parts()" "$BUTTON_X" $((SY + SH / 3))
  click "$BX" "$BY"
  sleep 2
  fresh
  if [ "$(grep -c "partdistill_render" "$LOG" || true)" != "$renders" ] || \
    ! is "not s['running'] and s['finished_runs'] == 0" || grep -q "^PartDistill error" "$LOG"; then
    shot failed; echo "FAIL: a click on the grey Segment Parts started something"; exit 1
  fi
  echo "PASS a click on the grey Segment Parts renders nothing and reports no error"
}

no_tracebacks() {  # a Python error anywhere (a panel's draw(), an operator) fails the test
  if grep -q "Traceback" "$LOG"; then
    echo "FAIL: Python errors in $LOG:"; grep -A12 -m3 "Traceback" "$LOG"; exit 1
  fi
  echo "PASS no Python errors in Blender's output"
}
