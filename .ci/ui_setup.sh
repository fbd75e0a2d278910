#!/usr/bin/env bash
# Inside the chroot, with DISPLAY set: set a run up in Blender's UI as a new user would. Edit
# the part list (rename inline, add, move, remove), pick a ShapeNetPart preset from the menu,
# save the list as a preset of one's own, apply and delete it, open the Advanced panel, and
# change the add-on preferences from the panel's gear button.
#   bash .ci/ui_setup.sh SCENE.blend OUT_DIR
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/ui_lib.sh" "$@"  # SCENE=$1, OUT=$2
start_blender setup
open_tab
LIST_X=$((SX + 80))  # on the names in the part list
LIST_BUTTONS_X=$((SX + SW - 50))  # the add / remove / move column right of the list

# 1. The part list.
expect "s['part_list'] == ['seat', 'back', 'leg']" "the part list starts as seat, back, leg"
find_y "leg" "$LIST_X" $((SY + 20)) $((SY + SH / 2)) 4
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no 'leg' row in the part list"; exit 1; }
xdotool mousemove "$LIST_X" "$FOUND" sleep 0.2 click --repeat 2 --delay 80 1 sleep 0.3 \
  key ctrl+a sleep 0.1 type "chair leg"
xdotool key Return
expect "s['part_list'] == ['seat', 'back', 'chair leg']" "double-click, type: 'leg' renamed inline to 'chair leg'"
find_y "seat" "$LIST_X" $((SY + 20)) "$FOUND" 4
click "$LIST_X" "$FOUND"
expect "s['active_part'] == 0" "a click on 'seat' makes it the active part"
button "bpy.ops.partdistill.part_add()" "$LIST_BUTTONS_X"
click "$BX" "$BY"
expect "s['part_list'] == ['seat', 'part', 'back', 'chair leg'] and s['active_part'] == 1" \
  "+ adds 'part' below the active part"
button "bpy.ops.partdistill.part_move(direction='DOWN')" "$LIST_BUTTONS_X" "$BY"
click "$BX" "$BY"
expect "s['part_list'] == ['seat', 'back', 'part', 'chair leg'] and s['active_part'] == 2" \
  "the down arrow moves it one down"
button "bpy.ops.partdistill.part_remove()" "$LIST_BUTTONS_X"
click "$BX" "$BY"
expect "s['part_list'] == ['seat', 'back', 'chair leg']" "- removes it"

# 2. Presets. open_presets: click the Presets menu, wait until it draws; MENU_Y is its row.
# A click that a tooltip or a redraw swallowed is tried once more, the button found afresh.
open_presets() {
  local drawn attempt
  [ -n "${MENU_Y:-}" ] || { button 'bpy.ops.wm.call_menu(name="PARTDISTILL_MT_presets")'; MENU_Y=$BY; }
  for attempt in 1 2; do
    drawn=$(value "s['menus_drawn'].get('PARTDISTILL_MT_presets', 0)")
    click "$BUTTON_X" "$MENU_Y"
    wait_for "s['menus_drawn'].get('PARTDISTILL_MT_presets', 0) > $drawn" 5 && return 0
    [ "$attempt" = 2 ] && break
    echo "the click at $BUTTON_X,$MENU_Y opened no Presets menu; finding the button again"
    shot presets_missed
    xdotool key Escape
    button 'bpy.ops.wm.call_menu(name="PARTDISTILL_MT_presets")'; MENU_Y=$BY
  done
  shot failed; echo "FAIL: the Presets menu did not open"; exit 1
}
# open_submenu IDNAME: hover down the open menu until the submenu IDNAME draws; SUB_Y its row
open_submenu() {
  local drawn y
  drawn=$(value "s['menus_drawn'].get('$1', 0)")
  SUB_Y=""
  for ((y = MENU_Y + 12; y < MENU_Y + 200; y += 5)); do
    xdotool mousemove "$BUTTON_X" "$y"
    fresh
    if is "s['menus_drawn'].get('$1', 0) > $drawn"; then SUB_Y=$y; return; fi
  done
  shot failed; echo "FAIL: no submenu $1 in the Presets menu"; exit 1
}
# menu_item WANT X FROM: sets BY to the item of an open menu whose Ctrl+C is WANT. In a menu
# Ctrl+C copies the highlighted item, which stays highlighted a little past its edge: scan
# down from within the menu, and take a row 5 px below where the item was first met.
menu_item() {
  find_y "$1" "$2" "$3" $(( $(state "['window']['height']") - 10 )) 5
  [ -n "$FOUND" ] || { shot failed; echo "FAIL: no menu item $1"; exit 1; }
  BY=$((FOUND + 5))
}
SUBMENU_X=$((SX + SW + 20))  # submenus open right of the menu, which is as wide as the panel

open_presets
open_submenu PARTDISTILL_MT_presets_shapenetpart
xdotool mousemove "$SUBMENU_X" "$SUB_Y"  # straight across into the submenu
menu_item 'bpy.ops.partdistill.apply_preset(group="ShapeNetPart", name="Chair")' "$SUBMENU_X" "$SUB_Y"
sleep 0.5
shot presets
click "$SUBMENU_X" "$BY"
expect "s['part_list'] == ['back', 'seat', 'leg', 'armrest'] and s['category'] == 'chair'" \
  "Presets > ShapeNetPart > Chair: the part list is ShapeNetPart's chair parts, the object 'chair'"

open_presets
menu_item "bpy.ops.partdistill.save_preset()" "$BUTTON_X" $((MENU_Y + 12))
click "$BUTTON_X" "$BY"
# The dialog opens at the mouse with its name field filled with "Chair": find the field.
find_y "Chair" $((BUTTON_X - 70)) $((BY - 80)) $((BY + 80)) 5
[ -n "$FOUND" ] || find_y "Chair" "$BUTTON_X" $((BY - 80)) $((BY + 80)) 5
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no preset name field in the Save Preset dialog"; exit 1; }
xdotool mousemove "$(xdotool getmouselocation --shell | sed -n 's/^X=//p')" "$FOUND" sleep 0.2 \
  click 1 sleep 0.3 key ctrl+a sleep 0.1 type "Dining chair"
xdotool key Return sleep 0.3 key Return  # end typing, then OK
expect "s['user_presets'] == ['Dining chair']" "Save Preset: typed 'Dining chair', it is saved"

button "bpy.ops.partdistill.part_remove()" "$LIST_BUTTONS_X"
click "$BX" "$BY"
expect "len(s['part_list']) == 3" "a part removed from the list"
open_presets
open_submenu PARTDISTILL_MT_presets_user
xdotool mousemove "$SUBMENU_X" "$SUB_Y"
menu_item 'bpy.ops.partdistill.apply_preset(group="My Presets", name="Dining chair")' "$SUBMENU_X" "$SUB_Y"
click "$SUBMENU_X" "$BY"
expect "s['part_list'] == ['back', 'seat', 'leg', 'armrest']" \
  "Presets > My Presets > Dining chair brings the saved list back"
open_presets
menu_item 'bpy.ops.partdistill.delete_preset(name="Dining chair")' "$BUTTON_X" $((MENU_Y + 12))
click "$BUTTON_X" "$BY"
expect "s['user_presets'] == []" "Presets > Delete Dining chair removes it"

# 3. What a user meets first: the CLIP teacher without its weights (none is downloaded here).
# Segment Parts is grey at once, its tooltip says why, the Models box says what to press, and a
# click on it renders nothing.
# The settings are rows of one height: Object, Teacher, Mode, Views. Ctrl+C finds the Object
# field (the preset set it to "chair") and Views ("6"); Teacher is the row below Object.
# (Ctrl+wheel, which steps a drop-down through its items, switches sidebar tabs or changes
# numbers elsewhere: it must land on the drop-down.)
top_edge() {  # WANT X Y: the top row of the field at X,Y whose Ctrl+C is WANT
  local y=$3
  while [ "$(copied_at "$2" $((y - 1)))" = "$1" ]; do y=$((y - 1)); done
  echo "$y"
}
find_y "chair" "$BUTTON_X" $((SY + 20)) $((SY + SH - 4)) 6
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no Object field holding 'chair'"; exit 1; }
OBJECT_TOP=$(top_edge chair "$BUTTON_X" "$FOUND")
find_y "6" "$BUTTON_X" "$OBJECT_TOP" $((SY + SH - 4)) 6
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no Views field holding 6"; exit 1; }
VIEWS_TOP=$(top_edge 6 "$BUTTON_X" "$FOUND")
TEACHER_Y=$(( OBJECT_TOP + (VIEWS_TOP - OBJECT_TOP) / 3 + 8 ))
for wheel in 4 4 4 4 4 4 5 5 5 5 5 5 5 5 5 5 5 5; do  # up to the list's start, then down
  is "s['teacher'] == 'clip'" && break
  xdotool mousemove "$BUTTON_X" "$TEACHER_Y" sleep 0.1 keydown ctrl click "$wheel" keyup ctrl
  fresh
  is "s['tab'] == 'PartDistill'" || { shot failed; echo "FAIL: Ctrl+wheel at $BUTTON_X,$TEACHER_Y missed the Teacher drop-down"; exit 1; }
done
expect "s['teacher'] == 'clip'" "Teacher set to CLIP in the panel"
expect "not s['models']['segment_enabled'] and 'openai/clip-vit-base-patch16' in s['models']['reason']" \
  "with CLIP and no weights, Segment Parts is grey"
echo "  its tooltip: $(state "['models']['reason']")"
click_grey_segment
sleep 0.5
shot error

# 4. The Advanced panel (closed at first): its header is below Segment Parts. Step below the
# button's lower edge first (a click on it would start a run), then click down to the header.
button "bpy.ops.partdistill.segment_parts()" "$BUTTON_X" $((SY + SH / 3))
for ((y = BY; y < BY + 40; y += 2)); do
  [ "$(copied_at "$BUTTON_X" "$y")" = "bpy.ops.partdistill.segment_parts()" ] || break
done
for ((y = y + 4; y < BY + 70; y += 4)); do
  click "$BUTTON_X" "$y"
  fresh
  is "s['panels_drawn'].get('PARTDISTILL_PT_advanced')" && break
done
is "s['finished_runs'] == 0 and not s['running']" || { echo "FAIL: a click meant for Advanced started a run"; exit 1; }
expect "s['panels_drawn'].get('PARTDISTILL_PT_advanced', {}).get('without', 0) > 0" \
  "the Advanced panel opens and draws"
xdotool mousemove $((SX + SW / 2)) $((SY + SH - 5))
sleep 1
shot advanced

# 5. Preferences: the gear at the right of the panel's header.
find_x 'bpy.ops.preferences.addon_show(module="bl_ext.user_default.partdistill")' $((SY + 15)) \
  $((SX + SW - 30)) $((SX + SW / 2)) -4
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no preferences button in the panel's header"; exit 1; }
click "$FOUND" $((SY + 15))
expect "s['preferences']['open'] and s['preferences']['section'] == 'ADDONS'" \
  "the gear opens Blender's Preferences at the add-on"
PX=$(value "s['preferences']['window']['x'] + s['preferences']['window']['width'] * 3 // 4")
PTOP=$(value "max(0, s['preferences']['window']['y'])")
PBOTTOM=$(value "s['preferences']['window']['y'] + s['preferences']['window']['height']")
find_y "openai/clip-vit-base-patch16" "$PX" "$PTOP" "$PBOTTOM" 5
[ -n "$FOUND" ] || { shot failed; echo "FAIL: no Model field in the add-on's preferences"; exit 1; }
MODEL_Y=$FOUND
click "$PX" "$MODEL_Y"
xdotool sleep 0.3 key ctrl+a sleep 0.1 type "/models/clip-vit-b16"
xdotool key Return
expect "s['preferences']['model'] == '/models/clip-vit-b16'" "Preferences: the Model field takes a typed folder"
# Device: a drop-down one row down; Ctrl+wheel over a drop-down steps through its items.
for ((y = MODEL_Y + 10; y < MODEL_Y + 60; y += 5)); do
  xdotool mousemove "$PX" "$y" sleep 0.1 keydown ctrl click 5 keyup ctrl
  fresh
  is "s['preferences']['device'] != 'auto'" && break
done
expect "s['preferences']['device'] != 'auto'" "Preferences: Device changed from Auto to $(state "['preferences']['device']")"
sleep 1
shot preferences
no_tracebacks
