"""Shapes whose views are known exactly, for backend tests that need no Blender.

Horizontal square grids of quads (two triangles each) seen from straight above: the polygon
under every pixel follows from back-projecting the pixel centre, so coverage and occlusion
are known in closed form.
"""

from __future__ import annotations

import numpy as np
from partdistill.backend.contracts import MeshGeometry, View


def grid_planes(cells: int, planes: list[tuple[float, float, float, float]]) -> MeshGeometry:
    """Planes (x0, x1, y0, y1 at height z) given as (x0, x1, z, ...)? No: each plane is
    (x0, x1, y_extent, z): x from x0 to x1, y from 0 to y_extent, at height z, cells x cells quads.
    Polygons are numbered plane by plane, row by row (y), then column (x).
    """
    vertices, triangles, owners = [], [], []
    offset = 0
    polygon = 0
    for x0, x1, y1, z in planes:
        xs = np.linspace(x0, x1, cells + 1)
        ys = np.linspace(0.0, y1, cells + 1)
        gx, gy = np.meshgrid(xs, ys)  # (cells+1, cells+1), row = y
        vertices.append(np.column_stack([gx.ravel(), gy.ravel(), np.full(gx.size, z)]))
        i, j = np.meshgrid(np.arange(cells), np.arange(cells))  # i = column, j = row
        a = (j * (cells + 1) + i).ravel() + offset
        b, c, d = a + 1, a + cells + 2, a + cells + 1
        triangles += [np.column_stack([a, b, c]), np.column_stack([a, c, d])]
        quad = np.arange(cells * cells) + polygon
        owners += [quad, quad]
        offset += gx.size
        polygon += cells * cells
    return MeshGeometry(
        vertices=np.concatenate(vertices).astype(np.float32),
        triangles=np.concatenate(triangles).astype(np.int32),
        triangle_polygons=np.concatenate(owners).astype(np.int32),
        num_polygons=polygon,
    )


def top_view(cells: int, planes, resolution: int, height: float = 3.0) -> View:
    """A camera above (0.5, 0.5) looking straight down at the planes of ``grid_planes``.

    Image columns follow +x, rows follow -y. The image spans exactly x, y in [0, 1].
    """
    f = resolution * height / 1.0  # focal length that maps 1 world unit at z = 0 to the image
    # OpenCV camera: x right (= world x), y down (= world -y), z forward (= world -z).
    world_to_camera = np.array(
        [[1, 0, 0, -0.5], [0, -1, 0, 0.5], [0, 0, -1, height], [0, 0, 0, 1]], np.float64
    )
    K = np.array([[f, 0, resolution / 2], [0, f, resolution / 2], [0, 0, 1]], np.float64)
    face_ids = np.full((resolution, resolution), -1, np.int32)
    uu, vv = np.meshgrid(np.arange(resolution) + 0.5, np.arange(resolution) + 0.5)
    depth_seen = np.full(face_ids.shape, np.inf)
    first = 0
    for x0, x1, y1, z in planes:
        depth = height - z
        x = (uu - resolution / 2) * depth / f + 0.5
        y = -(vv - resolution / 2) * depth / f + 0.5
        inside = (x >= x0) & (x < x1) & (y >= 0) & (y < y1) & (depth < depth_seen)
        col = np.clip(((x - x0) / (x1 - x0) * cells).astype(int), 0, cells - 1)
        row = np.clip((y / y1 * cells).astype(int), 0, cells - 1)
        face_ids[inside] = (first + row * cells + col)[inside]
        depth_seen[inside] = depth
        first += cells * cells
    image = np.where(face_ids[..., None] >= 0, 200, 0).astype(np.uint8).repeat(3, axis=2)
    return View(image=image, face_ids=face_ids, K=K, world_to_camera=world_to_camera)


def polygon_centres_x(geometry: MeshGeometry) -> np.ndarray:
    """x of every polygon's centre (P,)."""
    centres = geometry.vertices[geometry.triangles].mean(axis=1)
    return np.bincount(geometry.triangle_polygons, centres[:, 0]) / np.bincount(
        geometry.triangle_polygons
    )
