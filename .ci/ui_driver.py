"""Runs inside Blender's UI (under Xvfb) for .ci/ui_test.sh: prepares the scene and reports.

It does not press anything: ui_test.sh does that with xdotool. It opens the 3D viewport's
sidebar, fills the part names and picks the simulated teacher (small views, so the run is
quick on two cores), then writes STATE_FILE five times a second: the sidebar's rectangle in X
screen coordinates, its active tab, whether a segmentation is running, and whether the object
now has its parts (material slots named by the parts).
"""

import hashlib
import json
import os
import sys

import bpy
import numpy as np

STATE_FILE = os.environ["PARTDISTILL_UI_STATE"]
PARTS = ["seat", "back", "leg"]
REPORT_INTERVAL_S = 0.2
sequence = 0


def view3d(screen):
    for area in screen.areas:
        if area.type == "VIEW_3D":
            sidebar = next(r for r in area.regions if r.type == "UI")
            return area, sidebar
    raise RuntimeError("no 3D viewport in the window")


def prepare():
    window = bpy.context.window_manager.windows[0]
    area, _ = view3d(window.screen)
    space = area.spaces.active
    space.show_region_ui = True
    space.shading.type = "SOLID"
    space.shading.color_type = "MATERIAL"  # the part colours are material colours
    # No grid, axes, outline or gizmos: the red and green axes would pass for part colours.
    space.overlay.show_overlays = False
    space.show_gizmo = False
    obj = bpy.data.objects["Chair"]
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    settings = bpy.context.scene.partdistill
    settings.parts.clear()
    for name in PARTS:
        settings.parts.add().name = name
    settings.teacher = "simulated"
    settings.num_views = 6
    settings.resolution = 128
    settings.num_points = 1024
    region = next(r for r in area.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.view3d.view_selected()
    bpy.app.timers.register(report, first_interval=REPORT_INTERVAL_S)


def canvas(window, area):
    regions = {r.type: r for r in area.regions}
    tools, sidebar = regions["TOOLS"], regions["UI"]
    headers = [regions[t] for t in ("HEADER", "TOOL_HEADER") if t in regions]
    top = max(window.height - r.y for r in headers) if headers else window.height - area.y
    top = max(top, window.height - (area.y + area.height))
    left = tools.x + tools.width if tools.width > 1 else area.x
    return {"x": left, "y": top, "width": sidebar.x - left, "height": window.height - area.y - top}


def report():
    global sequence
    sequence += 1
    window = bpy.context.window_manager.windows[0]
    area, sidebar = view3d(window.screen)
    obj = bpy.data.objects["Chair"]
    slots = [s.material.name for s in obj.material_slots if s.material]
    # What a segmentation changes on the object, compared by ui_test.sh across undo, redo,
    # cancel and clear: groups, slots (empty ones too), attributes, and every face's slot.
    face_slots = np.zeros(len(obj.data.polygons), dtype=np.int32)
    obj.data.polygons.foreach_get("material_index", face_slots)
    snapshot = {
        "groups": [g.name for g in obj.vertex_groups],
        "slots": [s.material.name if s.material else "" for s in obj.material_slots],
        "attributes": sorted(a.name for a in obj.data.attributes if not a.is_internal),
        "face_slots": hashlib.sha1(face_slots.tobytes()).hexdigest(),
    }
    state = {
        "sequence": sequence,
        # ui_test.sh finds Segment Parts by hovering and pressing Ctrl+C, which copies the
        # Python command of the operator button under the mouse; it is read back here.
        "clipboard": bpy.context.window_manager.clipboard,
        # X screens count rows from the top, Blender's windows from the bottom.
        "sidebar": {
            "x": sidebar.x,
            "y": window.height - (sidebar.y + sidebar.height),
            "width": sidebar.width,
            "height": sidebar.height,
        },
        "viewport": {
            "x": area.x,
            "y": window.height - (area.y + area.height),
            "width": area.width,
            "height": area.height,
        },
        "window": {"width": window.width, "height": window.height},
        # Where the object is drawn: the viewport right of the toolbar, under the headers,
        # left of the sidebar (the regions overlap the main region of the viewport).
        "canvas": canvas(window, area),
        "tab": getattr(sidebar, "active_panel_category", ""),
        "running": bool(bpy.context.scene.partdistill.is_running),
        "progress": bpy.context.scene.partdistill.progress_text,
        "materials": slots,
        "segmented": "partdistill_part" in obj.data.attributes or len(slots) >= len(PARTS),
        "has_part_attribute": "partdistill_part" in obj.data.attributes,
        "snapshot": json.dumps(snapshot, sort_keys=True),
        # Operators that ended FINISHED (a cancelled run adds none). Blender prints an
        # operator's reports to stdout only when it finishes, so a cancel's report is not there.
        "finished_runs": sum(
            op.bl_idname == "PARTDISTILL_OT_segment_parts"
            for op in bpy.context.window_manager.operators
        ),
    }
    temporary = STATE_FILE + ".partial"
    with open(temporary, "w") as handle:
        json.dump(state, handle)
    os.replace(temporary, STATE_FILE)
    return REPORT_INTERVAL_S


bpy.app.timers.register(prepare, first_interval=1.0)
print("ui_driver ready", file=sys.stderr)
