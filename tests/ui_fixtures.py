"""The scripted chair scene shared by the tests of the Blender UI (tests/test_ui.py,
tests/test_panels.py), with the real bpy module in background mode; their ``ui`` fixture is in
conftest.py."""

import bpy
import numpy as np
from partdistill.partdistill_blender import demo
from partdistill.partdistill_blender.staged_run import StagedRun

SMALL = dict(num_views=10, resolution=96, render_samples=1, num_points=256, epochs=3,
             steps_per_epoch=3, mode="direct")  # fmt: skip


def chair_scene(settings, **changes):
    obj = demo.build_demo_chair()
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    for name in demo.DEMO_CHAIR_PARTS:
        settings.parts.add().name = name
    settings.teacher = "simulated"
    for key, value in {**SMALL, **changes}.items():
        setattr(settings, key, value)
    return obj


def truth(obj):
    attr = obj.data.attributes[demo.GROUND_TRUTH_ATTRIBUTE]
    labels = np.empty(len(obj.data.polygons), np.int32)
    attr.data.foreach_get("value", labels)
    return labels


def snapshot(obj) -> dict:
    """Everything a run could change on the object, as plain comparable data."""
    mesh = obj.data
    state = {
        "slots": [s.material.name if s.material else None for s in obj.material_slots],
        "groups": [g.name for g in obj.vertex_groups],
        "attributes": sorted(a.name for a in mesh.attributes),
        "datablocks": sorted(
            f"{kind}:{d.name}"
            for kind in ("objects", "meshes", "scenes", "cameras", "lights", "images")
            for d in getattr(bpy.data, kind)
        ),
    }
    for elements, prop, dtype, width in (
        (mesh.vertices, "co", np.float32, 3),
        (mesh.polygons, "material_index", np.int32, 1),
        (mesh.loops, "vertex_index", np.int32, 1),
    ):
        values = np.empty(len(elements) * width, dtype)
        elements.foreach_get(prop, values)
        state[prop] = values.tobytes()
    for attr in mesh.attributes:
        if attr.name.startswith(".") or attr.data_type not in ("INT", "FLOAT"):
            continue
        values = np.empty(len(attr.data), np.float64)
        attr.data.foreach_get("value", values)
        state["attr:" + attr.name] = values.tobytes()
    return state


class CancelAt(StagedRun):
    """A real run that presses Cancel the first time the named stage reports progress."""

    stage = ""

    def report(self, stage, fraction):
        if stage == self.stage:
            self.cancel()
        super().report(stage, fraction)
