"""Points on the surface, each tied to its polygon, and per-polygon centroids."""

from __future__ import annotations

import numpy as np

from .contracts import MeshGeometry


def triangle_areas_and_normals(geometry: MeshGeometry) -> tuple[np.ndarray, np.ndarray]:
    """(T,) float64 areas and (T, 3) float64 unit normals (zero for degenerate triangles)."""
    v = geometry.vertices.astype(np.float64)[geometry.triangles]  # (T, 3, 3)
    cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    length = np.linalg.norm(cross, axis=1)
    normals = cross / np.maximum(length, 1e-20)[:, None]
    return 0.5 * length, normals


def sample_surface_points(
    geometry: MeshGeometry, num_points: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample points uniformly by area.

    Returns points (N, 3) float32 world space, normals (N, 3) float32 and the polygon of each
    point (N,) int64 (an index into the object's polygons).
    """
    areas, normals = triangle_areas_and_normals(geometry)
    total = areas.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("the mesh has no surface area to sample points on")
    tri = rng.choice(len(areas), size=num_points, p=areas / total)
    # Uniform barycentric coordinates: fold the unit square onto the triangle.
    r1, r2 = rng.random(num_points), rng.random(num_points)
    fold = r1 + r2 > 1
    r1[fold], r2[fold] = 1 - r1[fold], 1 - r2[fold]
    v = geometry.vertices.astype(np.float64)[geometry.triangles[tri]]  # (N, 3, 3)
    points = v[:, 0] + r1[:, None] * (v[:, 1] - v[:, 0]) + r2[:, None] * (v[:, 2] - v[:, 0])
    polygons = geometry.triangle_polygons[tri].astype(np.int64)
    return points.astype(np.float32), normals[tri].astype(np.float32), polygons


def polygon_centroids(geometry: MeshGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-weighted centroid and normal of every polygon of the object.

    Returns centroids (P, 3) float32, normals (P, 3) float32 and present (P,) bool: False for
    polygons that have no triangle in the evaluated mesh (a modifier removed them).
    """
    p = geometry.num_polygons
    areas, normals = triangle_areas_and_normals(geometry)
    weights = np.maximum(areas, 1e-20)  # degenerate triangles still locate their polygon
    centres = geometry.vertices.astype(np.float64)[geometry.triangles].mean(axis=1)
    owner = geometry.triangle_polygons.astype(np.int64)
    total = np.bincount(owner, weights, minlength=p)
    centroid = np.stack(
        [np.bincount(owner, weights * centres[:, k], minlength=p) for k in range(3)], axis=1
    )
    normal = np.stack(
        [np.bincount(owner, areas * normals[:, k], minlength=p) for k in range(3)], axis=1
    )
    present = np.bincount(owner, minlength=p) > 0
    centroid = centroid / np.maximum(total, 1e-30)[:, None]
    normal = normal / np.maximum(np.linalg.norm(normal, axis=1), 1e-20)[:, None]
    return centroid.astype(np.float32), normal.astype(np.float32), present


def polygon_areas(geometry: MeshGeometry) -> np.ndarray:
    """(P,) float64 area of every polygon of the object (0 where it has no triangle)."""
    areas, _ = triangle_areas_and_normals(geometry)
    return np.bincount(
        geometry.triangle_polygons.astype(np.int64), areas, minlength=geometry.num_polygons
    )
