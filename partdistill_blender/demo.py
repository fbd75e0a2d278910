"""A demo chair with known parts, and a preview still coloured by part materials.

The chair is one mesh of subdivided boxes (seat, back, legs, armrests with supports) whose
INT face attribute ``partdistill_ground_truth`` indexes ``DEMO_CHAIR_PARTS``: a shape to try
the extension on, and a ground truth for tests and benchmarks.
"""

from __future__ import annotations

import math
import os

import bpy
import numpy as np

from ..backend.atomic_write import write_atomically
from . import cameras
from .ground_truth import GROUND_TRUTH_ATTRIBUTE
from .importers import mesh_from_arrays
from .temporary_data import TemporaryData

DEMO_CHAIR_PARTS = ["back", "seat", "leg", "arm"]

# (part, centre xyz, size xyz, grid divisions xyz) in metres; Z up, the front faces -Y.
_CHAIR_BOXES = (
    ("seat", (0.0, 0.0, 0.45), (0.9, 0.9, 0.08), (16, 16, 3)),
    ("back", (0.0, 0.41, 0.895), (0.9, 0.08, 0.81), (16, 3, 18)),
    *(
        ("leg", (x, y, 0.205), (0.07, 0.07, 0.41), (3, 3, 16))
        for x in (-0.38, 0.38)
        for y in (-0.38, 0.38)
    ),
    *(("arm", (x, -0.015, 0.72), (0.08, 0.77, 0.05), (3, 14, 3)) for x in (-0.5, 0.5)),
    *(("arm", (x, -0.33, 0.555), (0.05, 0.05, 0.29), (3, 3, 8)) for x in (-0.5, 0.5)),
)
# Preview camera: a three-quarter view from the front left, a little above.
PREVIEW_ELEVATION_DEG = 25.0
PREVIEW_AZIMUTH_DEG = -35.0
PREVIEW_FOV_DEG = 35.0
PREVIEW_MARGIN = 1.1
PREVIEW_BACKGROUND = (0.9, 0.9, 0.9)


def _grid_face(origin, axis_u, axis_v, steps_u, steps_v):
    """Vertices ((steps_u+1)*(steps_v+1), 3) and quads (steps_u*steps_v, 4) of a planar grid."""
    u = np.linspace(0.0, 1.0, steps_u + 1)
    v = np.linspace(0.0, 1.0, steps_v + 1)
    uu, vv = np.meshgrid(u, v, indexing="ij")
    vertices = origin + uu[..., None] * axis_u + vv[..., None] * axis_v
    index = np.arange((steps_u + 1) * (steps_v + 1)).reshape(steps_u + 1, steps_v + 1)
    quads = np.stack(
        [index[:-1, :-1], index[1:, :-1], index[1:, 1:], index[:-1, 1:]], axis=-1
    ).reshape(-1, 4)
    return vertices.reshape(-1, 3), quads


def subdivided_box(centre, size, divisions):
    """Closed box surface: welded vertices (V, 3) and outward quads (F, 4)."""
    centre, size = np.asarray(centre, float), np.asarray(size, float)
    low = centre - size / 2.0
    all_vertices, all_quads, offset = [], [], 0
    for axis in range(3):
        u_axis, v_axis = (axis + 1) % 3, (axis + 2) % 3
        for side in (0.0, 1.0):
            origin = low.copy()
            origin[axis] += side * size[axis]
            direction_u = np.zeros(3)
            direction_u[u_axis] = size[u_axis]
            direction_v = np.zeros(3)
            direction_v[v_axis] = size[v_axis]
            vertices, quads = _grid_face(
                origin, direction_u, direction_v, divisions[u_axis], divisions[v_axis]
            )
            if side == 0.0:  # the low side faces -axis: reverse the winding
                quads = quads[:, ::-1]
            all_vertices.append(vertices)
            all_quads.append(quads + offset)
            offset += len(vertices)
    vertices = np.concatenate(all_vertices)
    quads = np.concatenate(all_quads)
    # Weld the duplicated vertices along the box's edges.
    unique, inverse = np.unique(np.round(vertices, 6), axis=0, return_inverse=True)
    return unique, inverse.reshape(-1)[quads]


def build_demo_chair(name: str = "Chair") -> bpy.types.Object:
    """A chair mesh object (~2.9k quads) in the current scene's collection.

    Its INT face attribute ``partdistill_ground_truth`` holds each face's index into
    ``DEMO_CHAIR_PARTS``.
    """
    vertices, faces, labels, offset = [], [], [], 0
    for part, centre, size, divisions in _CHAIR_BOXES:
        box_vertices, box_faces = subdivided_box(centre, size, divisions)
        vertices.append(box_vertices)
        faces.append(box_faces + offset)
        labels.append(np.full(len(box_faces), DEMO_CHAIR_PARTS.index(part), dtype=np.int32))
        offset += len(box_vertices)
    mesh = mesh_from_arrays(name, np.concatenate(vertices), np.concatenate(faces))
    attribute = mesh.attributes.new(GROUND_TRUTH_ATTRIBUTE, "INT", "FACE")
    attribute.data.foreach_set("value", np.concatenate(labels))
    obj = bpy.data.objects.new(name, mesh)
    bpy.context.collection.objects.link(obj)
    return obj


def render_preview_png(obj, path, resolution: int = 512) -> None:
    """Write a PNG still of ``obj`` coloured by its materials (Workbench, three-quarter view).

    Uses a temporary scene, camera and world, all removed afterwards (also on error); the
    user's scene and object are left as they were.
    """
    path = os.path.abspath(os.fspath(path))
    with TemporaryData() as created:
        scene = bpy.data.scenes.new("PartDistill preview")
        created.add(bpy.data.scenes, scene)
        world = bpy.data.worlds.new("PartDistill preview")
        created.add(bpy.data.worlds, world)
        world.color = PREVIEW_BACKGROUND
        scene.world = world
        scene.render.engine = "BLENDER_WORKBENCH"
        scene.display.shading.light = "STUDIO"
        scene.display.shading.color_type = "MATERIAL"
        scene.render.resolution_x = scene.render.resolution_y = int(resolution)
        scene.render.resolution_percentage = 100
        scene.render.use_compositing = scene.render.use_sequencer = False
        scene.render.image_settings.file_format = "PNG"
        scene.render.image_settings.color_mode = "RGB"
        scene.view_settings.view_transform = "Standard"
        scene.collection.objects.link(obj)

        local_corners = np.c_[np.array(obj.bound_box, dtype=np.float64), np.ones(8)]
        corners = (np.array(obj.matrix_world) @ local_corners.T).T[:, :3]
        centre, radius = cameras.bounding_sphere(corners)
        camera_data = bpy.data.cameras.new("PartDistill preview")
        created.add(bpy.data.cameras, camera_data)
        camera_data.lens_unit = "FOV"
        camera_data.angle = math.radians(PREVIEW_FOV_DEG)
        distance = cameras.framing_distance(radius, PREVIEW_FOV_DEG, PREVIEW_MARGIN)
        camera_data.clip_start = max(distance - 2.0 * radius, 1e-3 * radius)
        camera_data.clip_end = distance + 2.0 * radius
        camera = bpy.data.objects.new("PartDistill preview camera", camera_data)
        created.add(bpy.data.objects, camera)
        from mathutils import Matrix

        matrix = cameras.camera_to_world_blender(
            centre, distance, PREVIEW_ELEVATION_DEG, PREVIEW_AZIMUTH_DEG
        )
        camera.matrix_world = Matrix(matrix.tolist())
        scene.collection.objects.link(camera)
        scene.camera = camera

        def render_to(temporary):
            scene.render.filepath = str(temporary)
            bpy.ops.render.render(write_still=True, scene=scene.name)

        write_atomically(path, render_to)
