"""The demo chair (geometry, ground truth) and its coloured preview still."""

import bpy
import numpy as np
from partdistill.partdistill_blender import demo, writeback


def test_demo_chair_geometry_and_ground_truth():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = demo.build_demo_chair("Demo")
    mesh = obj.data
    assert obj.name in bpy.context.scene.collection.all_objects
    assert 2000 <= len(mesh.polygons) <= 5000
    truth = np.empty(len(mesh.polygons), dtype=np.int32)
    mesh.attributes[demo.GROUND_TRUTH_ATTRIBUTE].data.foreach_get("value", truth)
    assert set(truth.tolist()) == set(range(len(demo.DEMO_CHAIR_PARTS)))
    # Every box is closed and welded: each one adds Euler characteristic 2 (10 boxes).
    assert len(mesh.vertices) - len(mesh.edges) + len(mesh.polygons) == 2 * 10
    centres = np.empty(len(mesh.polygons) * 3, dtype=np.float32)
    mesh.polygons.foreach_get("center", centres)
    centres = centres.reshape(-1, 3)
    height = {p: centres[truth == i, 2].mean() for i, p in enumerate(demo.DEMO_CHAIR_PARTS)}
    assert height["leg"] < height["seat"] < height["arm"] < height["back"]
    assert centres[truth == 0, 1].mean() > 0.3  # the back is behind the seat (+Y)


def test_preview_png_is_coloured_and_leaves_no_trace(tmp_path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    obj = demo.build_demo_chair()
    truth = np.empty(len(obj.data.polygons), dtype=np.int32)
    obj.data.attributes[demo.GROUND_TRUTH_ATTRIBUTE].data.foreach_get("value", truth)
    writeback.write_segmentation(obj, demo.DEMO_CHAIR_PARTS, truth, np.ones(len(truth)))
    counts = {n: len(getattr(bpy.data, n)) for n in ("scenes", "objects", "cameras", "images")}
    scene_objects = [o.name for o in bpy.context.scene.objects]
    path = tmp_path / "preview" / "chair.png"
    demo.render_preview_png(obj, path, resolution=96)
    assert {n: len(getattr(bpy.data, n)) for n in counts} == counts
    assert [o.name for o in bpy.context.scene.objects] == scene_objects
    assert obj.users_scene == (bpy.context.scene,)
    assert sorted(p.name for p in path.parent.iterdir()) == ["chair.png"]
    image = bpy.data.images.load(str(path))
    try:
        assert tuple(image.size) == (96, 96)
        pixels = np.empty(96 * 96 * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    rgb = pixels.reshape(-1, 4)[:, :3]
    saturation = rgb.max(axis=1) - rgb.min(axis=1)
    assert (saturation > 0.2).mean() > 0.1  # the part colours show, not a grey silhouette
