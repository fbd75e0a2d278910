"""Rendering views with real Cycles: polygon maps against ray casting, cameras, cleanup."""

import math

import bpy
import numpy as np
import pytest
from conftest import SHARED_DATA
from mathutils import Vector
from mathutils.bvhtree import BVHTree
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import View
from partdistill.backend.knowledge import project_points
from partdistill.partdistill_blender import cameras, geometry, importers, render

CHAIR = SHARED_DATA / "psb_dev" / "Chair" / "101.off"
FAST = PartDistillConfig(resolution=96, num_views=3, render_samples=2)
COLLECTIONS = (
    "scenes", "objects", "meshes", "cameras", "lights", "materials", "images", "worlds",
    "node_groups", "textures", "collections",
)  # fmt: skip


def _counts():
    return {name: len(getattr(bpy.data, name)) for name in COLLECTIONS}


def _ray_cast_polygon_map(geometry_data, K, world_to_camera, resolution):
    """(H, W) polygon index hit through each pixel centre, -1 on a miss (test-side oracle)."""
    tree = BVHTree.FromPolygons(
        [Vector(v) for v in geometry_data.vertices.astype(np.float64)],
        geometry_data.triangles.tolist(),
        all_triangles=True,
    )
    camera_to_world = np.linalg.inv(world_to_camera)
    origin = Vector(camera_to_world[:3, 3])
    columns, rows = np.meshgrid(np.arange(resolution) + 0.5, np.arange(resolution) + 0.5)
    pixels = np.stack([columns, rows, np.ones_like(columns)], axis=-1).reshape(-1, 3)
    directions = (camera_to_world[:3, :3] @ (np.linalg.inv(K) @ pixels.T)).T
    result = np.full(len(directions), -1, dtype=np.int64)
    for i, direction in enumerate(directions):
        _, _, triangle, _ = tree.ray_cast(origin, Vector(direction))
        if triangle is not None:
            result[i] = geometry_data.triangle_polygons[triangle]
    return result.reshape(resolution, resolution)


def _assert_maps_agree_with_ray_casting(renderer, views, minimum=0.99):
    for view in views:
        expected = _ray_cast_polygon_map(
            renderer.geometry, view.K, view.world_to_camera, view.face_ids.shape[0]
        )
        # Measured on the pixels where either map sees the object, not the easy background.
        foreground = (view.face_ids >= 0) | (expected >= 0)
        agreement = (view.face_ids == expected)[foreground].mean()
        assert agreement >= minimum, f"polygon map agrees on only {agreement:.4f} of pixels"
        assert (expected >= 0).mean() > 0.05  # the object fills a real part of the view


def _grow(mask):
    """``mask`` grown by one pixel in all eight directions."""
    grown = mask.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(np.roll(mask, dy, axis=0), dx, axis=1)
    return grown


def _suzanne():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_monkey_add(location=(1.0, -2.0, 0.5), rotation=(0.3, 0.2, 1.0))
    obj = bpy.context.active_object
    obj.scale = (1.5, 1.0, 0.7)
    return obj


@pytest.mark.skipif(not CHAIR.exists(), reason=f"dev meshes not present at {CHAIR}")
def test_chair_polygon_map_matches_ray_casting():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    (obj,) = importers.import_mesh_file(CHAIR)
    config = FAST.replace(resolution=128, render_samples=1)
    with render.ViewRenderer(obj, config) as renderer:
        views = [renderer.render_view(i) for i in range(len(renderer))]
        assert renderer.geometry.num_polygons == len(obj.data.polygons)
        _assert_maps_agree_with_ray_casting(renderer, views)
    for view in views:
        assert view.face_ids.max() < len(obj.data.polygons)
        assert view.image.shape == (128, 128, 3) and view.image.dtype == np.uint8


def test_transformed_object_maps_and_projections():
    obj = _suzanne()
    with render.ViewRenderer(obj, FAST) as renderer:
        views = [renderer.render_view(i) for i in range(len(renderer))]
        _assert_maps_agree_with_ray_casting(renderer, views)
        world_vertices = renderer.geometry.vertices.astype(np.float64)
    # Geometry is in world space: the baked vertices equal matrix_world @ co.
    coordinates = np.empty(len(obj.data.vertices) * 3, dtype=np.float32)
    obj.data.vertices.foreach_get("co", coordinates)
    matrix = np.array(obj.matrix_world)
    expected = (matrix @ np.c_[coordinates.reshape(-1, 3), np.ones(len(obj.data.vertices))].T).T
    assert np.allclose(world_vertices, expected[:, :3], atol=1e-4)
    for view in views:
        # Every vertex is in front of the camera and inside the image.
        rows, columns, valid = project_points(world_vertices, view)
        assert valid.all()
        silhouette = view.face_ids >= 0
        # One pixel of slack: a vertex on the outline may fall just outside the raster.
        grown = _grow(silhouette)
        assert grown[rows, columns].all()
        # The RGB image shows the object where the map does, on a white background.
        assert (view.image[~grown] == 255).all()
        assert view.image[silhouette].mean() < 200


def test_modifiers_map_to_original_polygons_and_leave_mesh_untouched():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_cube_add(size=1.0)
    obj = bpy.context.active_object
    array = obj.modifiers.new("Array", "ARRAY")
    array.count = 3
    obj.modifiers.new("Subdivision", "SUBSURF").levels = 1
    attributes_before = sorted(a.name for a in obj.data.attributes)
    with render.ViewRenderer(obj, FAST.replace(resolution=128)) as renderer:
        geometry_data = renderer.geometry
        views = [renderer.render_view(i) for i in range(len(renderer))]
        _assert_maps_agree_with_ray_casting(renderer, views)
    # 3 copies x 6 faces x 4 after subdivision, all traced back to the cube's 6 polygons.
    assert len(geometry_data.triangles) == 3 * 6 * 4 * 2
    assert set(geometry_data.triangle_polygons.tolist()) == set(range(6))
    seen = np.unique(np.concatenate([v.face_ids.ravel() for v in views]))
    assert seen.min() == -1 and seen.max() <= 5 and len(seen) >= 5
    assert sorted(a.name for a in obj.data.attributes) == attributes_before
    assert geometry.POLYGON_INDEX_ATTRIBUTE not in obj.data.attributes


def test_cleanup_and_user_settings_untouched_even_on_error():
    obj = _suzanne()
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = 640, 360
    scene.render.filepath = "//user_output_"
    scene.view_settings.view_transform = "AgX"
    before = _counts()
    settings = lambda: (  # noqa: E731
        scene.render.engine, scene.render.resolution_x, scene.render.resolution_y,
        scene.render.filepath, scene.view_settings.view_transform, scene.camera,
        bpy.context.window_scene if hasattr(bpy.context, "window_scene") else None,
        [o.name for o in scene.objects], len(obj.data.polygons),
    )  # fmt: skip
    expected_settings = settings()
    geometry_data, views = render.render_views(obj, FAST.replace(num_views=1))
    assert len(views) == 1 and geometry_data.num_polygons == len(obj.data.polygons)
    assert _counts() == before
    assert settings() == expected_settings
    assert not [i for i in bpy.data.images if i.type == "RENDER_RESULT"]
    with pytest.raises(RuntimeError, match="stop here"):
        with render.ViewRenderer(obj, FAST) as renderer:
            renderer.render_view(0)
            raise RuntimeError("stop here")
    assert _counts() == before
    assert settings() == expected_settings


def test_camera_conventions_and_spread():
    config = FAST.replace(num_views=10)
    directions = cameras.view_directions(config.num_views, config.view_angles)
    assert directions[0] == (10.0, 0.0)
    centre = np.array([1.0, 2.0, 3.0])
    front = cameras.camera_to_world_blender(centre, 5.0, 0.0, 0.0)
    assert np.allclose(front[:3, 3], centre + [0, -5, 0])  # azimuth 0: the -Y (front) side
    side = cameras.camera_to_world_blender(centre, 5.0, 0.0, 90.0)
    assert np.allclose(side[:3, 3], centre + [5, 0, 0])
    above = cameras.camera_to_world_blender(centre, 5.0, 30.0, 0.0)
    assert above[2, 3] > centre[2]
    K = cameras.intrinsics(96, config.camera_fov_deg)

    def seen_from(matrix):
        return View(np.zeros((96, 96, 3), np.uint8), np.zeros((96, 96), np.int32), K,
                    cameras.world_to_camera_opencv(matrix))  # fmt: skip

    def project(point, matrix):
        rows, columns, valid = project_points(
            np.asarray(point, np.float64)[None], seen_from(matrix)
        )
        assert valid[0]
        return rows[0], columns[0]

    for matrix in (front, side, above):
        # The centre lands on the image centre (48, 48), up to where floor() puts 48 - 1e-12.
        assert all(value in (47, 48) for value in project(centre, matrix))
        # A point behind the camera is not in front of it.
        behind = matrix[:3, 3] + (matrix[:3, 3] - centre)
        assert not project_points(behind[None], seen_from(matrix))[2][0]
    # World +Z appears upwards in the image (smaller row) from the front camera.
    top_row, _ = project(centre + [0, 0, 1], front)
    _, right_column = project(centre + [1, 0, 0], front)
    assert top_row < 47 and right_column > 48
    # Another count: an even, deterministic spread of distinct directions.
    spread = cameras.view_directions(7, config.view_angles)
    assert spread == cameras.view_directions(7, config.view_angles) and len(set(spread)) == 7
    units = np.array(
        [
            [math.cos(math.radians(e)) * math.sin(math.radians(a)),
             -math.cos(math.radians(e)) * math.cos(math.radians(a)),
             math.sin(math.radians(e))]
            for e, a in spread
        ]
    )  # fmt: skip
    gaps = np.linalg.norm(units[:, None] - units[None], axis=-1) + 3 * np.eye(7)
    assert gaps.min() > 0.5


def test_render_views_reports_progress_and_cycles_rgb_shading():
    obj = _suzanne()
    calls = []
    _, views = render.render_views(obj, FAST, progress=lambda stage, f: calls.append((stage, f)))
    assert [stage for stage, _ in calls] == ["render"] * 3
    assert np.allclose([f for _, f in calls], [1 / 3, 2 / 3, 1.0])
    for view in views:
        shade = view.image[view.face_ids >= 0].mean(axis=1)
        assert shade.std() > 5  # shaded, not a flat silhouette


def test_unknown_engine_raises():
    obj = _suzanne()
    before = _counts()
    with pytest.raises(ValueError, match="render engine 'POVRAY' is not available"):
        with render.ViewRenderer(obj, FAST.replace(render_engine="POVRAY")):
            pass
    assert _counts() == before


def test_workbench_views_and_eevee_names():
    obj = _suzanne()
    config = FAST.replace(num_views=1, render_engine="BLENDER_WORKBENCH")
    with render.ViewRenderer(obj, config) as renderer:
        view = renderer.render_view(0)
        _assert_maps_agree_with_ray_casting(renderer, [view])
    inside = view.face_ids >= 0
    # Workbench anti-aliases the outline: only pixels away from it are pure background.
    assert view.image[inside].mean() < 230 and view.image[~_grow(inside)].min() >= 250
    # Both EEVEE identifiers are accepted, whichever this Blender calls it.
    scene = bpy.data.scenes.new("engine probe")
    try:
        for name in ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE"):
            used = render.set_engine(scene, name)
            assert used in ("BLENDER_EEVEE_NEXT", "BLENDER_EEVEE")
            assert scene.render.engine == used
    finally:
        bpy.data.scenes.remove(scene)


def test_non_mesh_and_edit_mode_objects_are_refused():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    camera = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
    bpy.context.collection.objects.link(camera)
    with pytest.raises(ValueError, match="'Cam' is a camera object, not a mesh object"):
        with render.ViewRenderer(camera, FAST):
            pass
    bpy.ops.mesh.primitive_cube_add()
    cube = bpy.context.active_object
    bpy.ops.object.mode_set(mode="EDIT")
    with pytest.raises(ValueError, match="Edit Mode"):
        render.render_views(cube, FAST)
    bpy.ops.object.mode_set(mode="OBJECT")
