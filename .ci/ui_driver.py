"""Runs inside Blender's UI (under Xvfb) for the .ci/ui_*.sh tests: prepares the scene and
reports what a user would see.

It presses nothing: the shell scripts do that with xdotool, as a user would. It opens the 3D
viewport's sidebar, fills the part names and picks the simulated teacher (small views, so a
run is quick on two cores), then writes STATE_FILE five times a second: where the sidebar is
in X screen coordinates, its active tab, the part list, whether a segmentation is running,
what the object holds, what is selected or hidden in edit mode, which images the Image
Editors show, and the add-on preferences.

PARTDISTILL_UI_SCENARIO picks the scene: "single" (the chair alone), "multi" (a second
chair beside it, both selected), "correct" (a second, taller and narrower chair beside it,
not selected; both in view) or "models" (the chair with the CLIP teacher whose model,
PARTDISTILL_UI_MODEL, is not yet in the cache folder PARTDISTILL_UI_CACHE).
"""

import hashlib
import json
import os
import sys
import time

import bmesh
import bpy
import numpy as np
from bpy_extras import view3d_utils
from mathutils.bvhtree import BVHTree

STATE_FILE = os.environ["PARTDISTILL_UI_STATE"]
SCENARIO = os.environ.get("PARTDISTILL_UI_SCENARIO", "single")
ADDON = "bl_ext.user_default.partdistill"
PARTS = ["seat", "back", "leg"]
REPORT_INTERVAL_S = 0.1
sequence = 0
copied = {"text": "", "sequence": 0}  # the last text copied, and the report that read it
# The longest gap between two reports from the press of Segment Parts to the end of its
# writeback: this timer runs on Blender's main thread, so the gap is how long the UI stood
# still. A gap counts when a run was reported at either end of it: the gap in which the press
# falls (the operator's checks before the run reports itself) and the one in which the run
# ends (results written on the main thread) as well as those between. Kept by phase: "start"
# (not running -> running), "run", "finish" (running -> not running).
last_report = {"time": 0.0, "running": False}
longest_stall_s = 0.0
stalls_s = {"start": 0.0, "run": 0.0, "finish": 0.0}
menus_drawn: dict[str, int] = {}  # menu idname -> times drawn (a menu draws while it is open)
# Panel -> times its draw() ran to the end, by whether the active object had a segmentation.
# A function appended to a panel runs after its draw(), and not when draw() raised.
panels_drawn: dict[str, dict[str, int]] = {}


def view3d(screen):
    for area in screen.areas:
        if area.type == "VIEW_3D":
            sidebar = next(r for r in area.regions if r.type == "UI")
            return area, sidebar
    raise RuntimeError("no 3D viewport in the window")


def count_menu_draws(idname):
    def note(self, context):
        menus_drawn[idname] = menus_drawn.get(idname, 0) + 1

    getattr(bpy.types, idname).append(note)


def count_panel_draws(idname):
    def note(self, context):
        obj = context.active_object
        has = obj is not None and "partdistill" in obj and obj.type == "MESH"
        key = "with" if has else "without"
        if obj is not None and obj.mode == "EDIT":
            key += " in edit mode"
        counts = panels_drawn.setdefault(idname, {})
        counts[key] = counts.get(key, 0) + 1

    getattr(bpy.types, idname).append(note)


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
    chair = bpy.data.objects["Chair"]
    if SCENARIO == "multi":
        second = chair.copy()
        second.data = chair.data.copy()
        second.name = second.data.name = "Chair 2"
        second.location.x += 1.2
        bpy.context.scene.collection.objects.link(second)
        second.select_set(True)
    if SCENARIO == "correct":
        # Chair-like, not the same: taller, narrower, its own mesh (with the true parts).
        second = chair.copy()
        second.data = chair.data.copy()
        second.name = second.data.name = "Chair 2"
        coords = np.empty(len(second.data.vertices) * 3, np.float32)
        second.data.vertices.foreach_get("co", coords)
        second.data.vertices.foreach_set("co", (coords.reshape(-1, 3) * (0.85, 0.9, 1.2)).ravel())
        second.data.update()
        second.location.x += 1.0
        bpy.context.scene.collection.objects.link(second)
        second.select_set(True)  # both in view; Chair 2 is deselected below
    bpy.context.view_layer.objects.active = chair
    chair.select_set(True)
    settings = bpy.context.scene.partdistill
    settings.parts.clear()
    for name in PARTS:
        settings.parts.add().name = name
    settings.teacher = "simulated"
    if SCENARIO == "models":
        settings.teacher = "clip"
        prefs = bpy.context.preferences.addons[ADDON].preferences
        prefs.model = os.environ["PARTDISTILL_UI_MODEL"]
        prefs.cache_dir = os.environ["PARTDISTILL_UI_CACHE"]
    settings.num_views = 6
    settings.resolution = 128
    settings.num_points = 1024
    if SCENARIO == "correct":  # three runs in one test: a shorter training
        settings.epochs = 10
    region = next(r for r in area.regions if r.type == "WINDOW")
    with bpy.context.temp_override(window=window, area=area, region=region):
        bpy.ops.view3d.view_selected()
    if SCENARIO == "correct":
        bpy.data.objects["Chair 2"].select_set(False)
    for idname in ("PARTDISTILL_MT_presets", "PARTDISTILL_MT_presets_shapenetpart",
                   "PARTDISTILL_MT_presets_user"):  # fmt: skip
        count_menu_draws(idname)
    for idname in ("PARTDISTILL_PT_main", "PARTDISTILL_PT_advanced", "PARTDISTILL_PT_results"):
        count_panel_draws(idname)
    bpy.app.timers.register(report, first_interval=REPORT_INTERVAL_S)


def canvas(window, area):
    regions = {r.type: r for r in area.regions}
    tools, sidebar = regions["TOOLS"], regions["UI"]
    headers = [regions[t] for t in ("HEADER", "TOOL_HEADER") if t in regions]
    top = max(window.height - r.y for r in headers) if headers else window.height - area.y
    top = max(top, window.height - (area.y + area.height))
    left = tools.x + tools.width if tools.width > 1 else area.x
    return {"x": left, "y": top, "width": sidebar.x - left, "height": window.height - area.y - top}


def face_values(obj, name, dtype):
    """(P,) values of a face property ("select", "hide") or INT/FLOAT face attribute; None when
    the attribute is missing. In edit mode they live in the BMesh (the mesh reads as empty)."""
    mesh = obj.data
    if obj.mode == "EDIT":
        bm = bmesh.from_edit_mesh(mesh)
        if name in ("select", "hide", "material_index"):
            return np.array([getattr(f, name) for f in bm.faces], dtype)
        layers = bm.faces.layers.float if dtype == np.float32 else bm.faces.layers.int
        layer = layers.get(name)
        return np.array([f[layer] for f in bm.faces], dtype) if layer is not None else None
    values = np.empty(len(mesh.polygons), dtype)
    if name in ("select", "hide", "material_index"):
        mesh.polygons.foreach_get(name, values)
    elif name in mesh.attributes:
        mesh.attributes[name].data.foreach_get("value", values)
    else:
        return None
    return values


def snapshot(obj):
    """What a segmentation changes on the object, compared across undo, redo, cancel and clear:
    groups, slots (empty ones too), attributes, and every face's slot."""
    face_slots = face_values(obj, "material_index", np.int32)
    return json.dumps({
        "groups": [g.name for g in obj.vertex_groups],
        "slots": [s.material.name if s.material else "" for s in obj.material_slots],
        "attributes": sorted(a.name for a in obj.data.attributes if not a.is_internal),
        "face_slots": hashlib.sha1(face_slots.tobytes()).hexdigest(),
    }, sort_keys=True)  # fmt: skip


def describe(mask, labels, parts, low):
    """Names the face set ``mask``: "none", "all", "seat", "all but seat", "low confidence"."""
    if not mask.any():
        return "none"
    if mask.all():
        return "all"
    if labels is not None:
        for i, name in enumerate(parts):
            if np.array_equal(mask, labels == i):
                return name
            if np.array_equal(mask, labels != i):
                return f"all but {name}"
    if low is not None and np.array_equal(mask, low):
        return "low confidence"
    return f"{int(mask.sum())} other faces"


def counts_by_name(values, names):
    """{name: faces} of the (F,) indices ``values`` into ``names`` (-1 and others: "?")."""
    counts: dict[str, int] = {}
    for value, count in zip(*np.unique(values, return_counts=True), strict=True):
        name = names[value] if 0 <= value < len(names) else "?"
        counts[name] = counts.get(name, 0) + int(count)
    return counts


def panel_rows(obj):
    """[[part, faces]] as the Results panel shows them (in edit mode: the rows it keeps)."""
    module = sys.modules.get(ADDON + ".partdistill_blender.results")
    try:
        rows = module.result_rows(obj) if module is not None else None
    except Exception as exc:  # a bug in the add-on shows in the state, not as a dead driver
        return f"error: {exc}"
    return [[row.name, row.face_count] for row in rows] if rows is not None else None


def panel_corrected(obj):
    """The "N faces corrected" count of the Results panel (in edit mode: the one it keeps)."""
    module = sys.modules.get(ADDON + ".partdistill_blender.known_labels")
    counter = getattr(module, "corrected_face_count", None)
    try:
        return counter(obj) if counter is not None else None
    except Exception as exc:
        return f"error: {exc}"


def corrections_state(obj, labels, parts, truth):
    """The faces marked as corrections (the INT face attribute partdistill_correction, -1 =
    none; its values index the part names in obj["partdistill_correction_parts"])."""
    corrected = face_values(obj, "partdistill_correction", np.int32)
    try:
        names = list(json.loads(obj.get("partdistill_correction_parts", "[]")))
    except (TypeError, ValueError):
        names = ["unreadable"]
    mask = corrected >= 0 if corrected is not None else None
    return {
        "attribute": corrected is not None,
        "names": names,
        "faces": int(mask.sum()) if mask is not None else 0,
        # The corrected faces: which part they were corrected to, which part they carry now,
        # and which part they truly are; and a hash of which faces they are.
        "as": counts_by_name(corrected[mask], names) if mask is not None else {},
        "labelled": counts_by_name(labels[mask], parts)
        if mask is not None and labels is not None
        else {},  # fmt: skip
        "truth": counts_by_name(truth[mask], PARTS)
        if mask is not None and truth is not None
        else {},  # fmt: skip
        "faces_hash": hashlib.sha1(np.flatnonzero(mask).tobytes()).hexdigest()
        if mask is not None
        else "",  # fmt: skip
    }


def object_state(obj, settings):
    labels = face_values(obj, "partdistill_part", np.int32)
    truth = face_values(obj, "partdistill_ground_truth", np.int32)
    confidence = face_values(obj, "partdistill_confidence", np.float32)
    low = confidence < settings.low_confidence if confidence is not None else None
    parts = [g.name for g in obj.vertex_groups]
    selected = face_values(obj, "select", bool)
    return {
        "mode": obj.mode,
        "selected_object": obj.select_get(),
        "segmented": labels is not None,
        "parts": parts if labels is not None else [],
        # The simulated teacher labels the chair from its true parts, in the list's order.
        # Both figures are face-weighted: the fraction of faces whose label is the true part,
        # and that of always answering the part with the most faces (the baseline to beat).
        "agreement": float(np.mean(labels == truth)) if labels is not None else None,
        "baseline": float(np.bincount(truth).max() / truth.size) if truth is not None else None,
        "labels": hashlib.sha1(labels.tobytes()).hexdigest() if labels is not None else "",
        "confidence": hashlib.sha1(confidence.tobytes()).hexdigest()
        if confidence is not None
        else "",  # fmt: skip
        # Faces per part from the labels, and as the Results panel's rows show them.
        "label_counts": counts_by_name(labels, parts) if labels is not None else {},
        "rows": panel_rows(obj),
        "panel_corrected": panel_corrected(obj),
        # Per true part: the parts its faces were labelled.
        "confusion": {
            name: counts_by_name(labels[truth == i], parts) for i, name in enumerate(PARTS)
        }
        if labels is not None and truth is not None
        else {},  # fmt: skip
        "corrections": corrections_state(obj, labels, parts, truth),
        "example": bool(getattr(obj, "partdistill_example", False)),
        "screen": screen_point(obj),
        "low_confidence_faces": int(low.sum()) if low is not None else None,
        "selected": describe(selected, labels, parts, low),
        # The selected faces: how many, the parts they carry, and which faces they are.
        "selected_faces": int(selected.sum()),
        "selected_labels": counts_by_name(labels[selected], parts) if labels is not None else {},
        "selected_truth": counts_by_name(truth[selected], PARTS) if truth is not None else {},
        "selected_hash": hashlib.sha1(np.flatnonzero(selected).tobytes()).hexdigest(),
        "hidden": describe(face_values(obj, "hide", bool), labels, parts, low),
        "snapshot": snapshot(obj),
        # How the segmentation was made, as the add-on keeps it on the object.
        "run": json.loads(obj.get("partdistill", "{}")).get("run", {}),
    }


def viewport_hits():
    """{object name: [x, y]} in X screen coordinates: for each mesh object seen in the 3D
    viewport, the pixel (on a 16 px grid) where a click hits it, nearest the middle of its
    hits. Only in the "correct" scenario, not while a run is going, at most once a second."""
    now = time.perf_counter()
    if SCENARIO != "correct" or bpy.context.scene.partdistill.is_running:
        return {}
    if now - _hits["time"] < 1.0:
        return _hits["points"]
    window = bpy.context.window_manager.windows[0]
    area, _ = view3d(window.screen)
    region = next(r for r in area.regions if r.type == "WINDOW")
    rv3d = area.spaces.active.region_3d
    box = canvas(window, area)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    trees = []
    editing = []  # in edit mode the evaluated mesh may have no faces: its last point stays
    for obj in bpy.context.scene.objects:
        if obj.type == "MESH" and obj.mode == "EDIT":
            editing.append(obj.name)
        elif obj.type == "MESH" and obj.visible_get():
            inverse = obj.matrix_world.inverted()
            trees.append((obj.name, obj.matrix_world.copy(), inverse,
                          BVHTree.FromObject(obj, depsgraph)))  # fmt: skip
    hits: dict[str, list] = {}
    for x in range(box["x"] + 8, box["x"] + box["width"] - 8, 16):
        for y in range(box["y"] + 8, box["y"] + box["height"] - 8, 16):
            point = (x - region.x, window.height - y - region.y)  # region coordinates
            origin = view3d_utils.region_2d_to_origin_3d(region, rv3d, point)
            direction = view3d_utils.region_2d_to_vector_3d(region, rv3d, point)
            best = None
            for name, matrix, inverse, tree in trees:
                location = tree.ray_cast(inverse @ origin, inverse.to_3x3() @ direction)[0]
                if location is not None:
                    distance = ((matrix @ location) - origin).length
                    if best is None or distance < best[0]:
                        best = (distance, name)
            if best is not None:
                hits.setdefault(best[1], []).append((x, y))
    points = {name: _hits["points"][name] for name in editing if name in _hits["points"]}
    for name, pixels in hits.items():
        mean = np.mean(pixels, axis=0)
        nearest = min(pixels, key=lambda p: (p[0] - mean[0]) ** 2 + (p[1] - mean[1]) ** 2)
        points[name] = [int(nearest[0]), int(nearest[1])]
    _hits.update(time=now, points=points)
    return points


_hits = {"time": -1.0, "points": {}}


def screen_point(obj):
    return viewport_hits().get(obj.name)


def image_editors():
    """ "window N: image name" for each Image Editor in any window (a new window counts)."""
    shown = []
    for number, window in enumerate(bpy.context.window_manager.windows):
        for area in window.screen.areas:
            if area.type == "IMAGE_EDITOR":
                image = area.spaces.active.image
                shown.append(f"window {number}: {image.name if image else ''}")
    return shown


def preferences_state():
    addon = bpy.context.preferences.addons.get(ADDON)
    prefs = addon.preferences if addon is not None else None
    screen_height = bpy.context.window_manager.windows[0].height
    windows = [w for w in bpy.context.window_manager.windows
               if any(a.type == "PREFERENCES" for a in w.screen.areas)]  # fmt: skip
    return {
        "open": bool(windows),
        # The Preferences window in X screen coordinates (Blender counts rows from the bottom).
        "window": {
            "x": windows[0].x,
            "y": screen_height - (windows[0].y + windows[0].height),
            "width": windows[0].width,
            "height": windows[0].height,
        }
        if windows
        else None,
        "section": bpy.context.preferences.active_section,
        "model": prefs.model if prefs else None,
        "device": prefs.device if prefs else None,
        "allow_downloads": prefs.allow_downloads if prefs else None,
    }


def models_state():
    """The chosen teacher's model as the Models box sees it, and its download."""
    manager = sys.modules.get(ADDON + ".partdistill_blender.model_manager")
    downloads = sys.modules.get(ADDON + ".partdistill_blender.model_downloads")
    if manager is None or downloads is None:
        return None
    window = bpy.context.window_manager.windows[0]
    area, sidebar = view3d(window.screen)
    with bpy.context.temp_override(window=window, area=area, region=sidebar):
        enabled = bpy.ops.partdistill.segment_parts.poll()
        reason = manager.missing_model_reason(bpy.context) or ""
        chosen = manager.chosen_model(bpy.context)
        cache = manager.cache_dir(bpy.context)
    name = chosen.name if chosen is not None else ""
    job = downloads.job_for(name) if name else None
    progress = job.progress if job is not None else None
    return {
        "online_access": bool(bpy.app.online_access),
        "segment_enabled": bool(enabled),
        "reason": reason,
        "chosen": name,
        "installed": bool(name) and manager.installed_location(name, cache) is not None,
        "partial_bytes": manager.partial_bytes(name, cache) if name else 0,
        "job": None
        if job is None
        else {
            "state": job.state,
            "running": job.running,
            "cancelling": job.cancel.is_set(),
            "message": job.message,
            "done_bytes": progress.done_bytes if progress else 0,
            "total_bytes": progress.total_bytes if progress else 0,
            "text": progress.describe() if progress else "",
        },
    }


def user_presets():
    module = sys.modules.get(ADDON + ".partdistill_blender.presets")
    return sorted(module.load_user_presets()) if module else None


def report():
    global sequence, copied, longest_stall_s
    sequence += 1
    now = time.perf_counter()
    running = bool(bpy.context.scene.partdistill.is_running)
    if running or last_report["running"]:
        phase = "run" if running and last_report["running"] else "start" if running else "finish"
        gap = now - last_report["time"]
        stalls_s[phase] = max(stalls_s[phase], gap)
        longest_stall_s = max(longest_stall_s, gap)
    last_report.update(time=now, running=running)
    wm = bpy.context.window_manager
    if wm.clipboard:
        # Taken and emptied, so that a hover where Ctrl+C copies nothing is not mistaken for
        # the button met before.
        copied = {"text": wm.clipboard, "sequence": sequence}
        wm.clipboard = ""
    window = bpy.context.window_manager.windows[0]
    area, sidebar = view3d(window.screen)
    settings = bpy.context.scene.partdistill
    obj = bpy.data.objects["Chair"]
    chair = object_state(obj, settings)
    state = {
        "sequence": sequence,
        # The tests find a button by hovering and pressing Ctrl+C, which copies the Python
        # command of the operator button (or the value of the field) under the mouse.
        "copied": copied,
        # X screens count rows from the top, Blender's windows from the bottom.
        "sidebar": {
            "x": sidebar.x,
            "y": window.height - (sidebar.y + sidebar.height),
            "width": sidebar.width,
            "height": sidebar.height,
        },
        "window": {"width": window.width, "height": window.height},
        "windows": len(bpy.context.window_manager.windows),
        # Where the object is drawn: the viewport right of the toolbar, under the headers,
        # left of the sidebar (the regions overlap the main region of the viewport).
        "canvas": canvas(window, area),
        "tab": getattr(sidebar, "active_panel_category", ""),
        "running": bool(settings.is_running),
        "longest_stall_s": round(longest_stall_s, 3),
        "stalls_s": {phase: round(gap, 3) for phase, gap in stalls_s.items()},
        "progress": settings.progress_text,
        "part_list": [p.name for p in settings.parts],
        "active_part": settings.active_part,
        "category": settings.category,
        "teacher": settings.teacher,
        "one_student": settings.one_student,
        "menus_drawn": menus_drawn,
        "panels_drawn": panels_drawn,
        "user_presets": user_presets(),
        "image_editors": image_editors(),
        "preferences": preferences_state(),
        "models": models_state(),
        "materials": [s.material.name for s in obj.material_slots if s.material],
        "has_part_attribute": chair["segmented"],
        "snapshot": chair["snapshot"],
        "chair": chair,
        "objects": {
            o.name: object_state(o, settings) if o != obj else chair
            for o in bpy.context.scene.objects
            if o.type == "MESH"
        },
        # Operators that ended FINISHED (a cancelled run adds none). Blender prints an
        # operator's reports to stdout only when it finishes, so a cancel's report is not there.
        "finished_runs": sum(
            op.bl_idname == "PARTDISTILL_OT_segment_parts"
            for op in bpy.context.window_manager.operators
        ),
        # The same for Refine and Assign, and the last operators that finished (for the log).
        "refines": sum(
            op.bl_idname == "PARTDISTILL_OT_refine" for op in bpy.context.window_manager.operators
        ),
        "assigns": sum(
            op.bl_idname == "PARTDISTILL_OT_assign_part"
            for op in bpy.context.window_manager.operators
        ),
        "operators": [op.bl_idname for op in bpy.context.window_manager.operators][-8:],
        "active": bpy.context.view_layer.objects.active.name
        if bpy.context.view_layer.objects.active
        else "",  # fmt: skip
        "keep_corrections": getattr(settings, "keep_corrections", None),
    }
    temporary = STATE_FILE + ".partial"
    with open(temporary, "w") as handle:
        json.dump(state, handle)
    os.replace(temporary, STATE_FILE)
    return REPORT_INTERVAL_S


bpy.app.timers.register(prepare, first_interval=1.0)
print("ui_driver ready", file=sys.stderr)
