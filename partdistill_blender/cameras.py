"""Cameras around an object's bounding sphere, in the OpenCV convention of backend.contracts.

Pure numpy: no bpy, so the camera maths is shared by the renderer and its tests.
"""

from __future__ import annotations

import math

import numpy as np

# Blender camera axes (x right, y up, looking down -z) to OpenCV axes (x right, y down, z forward).
BLENDER_TO_OPENCV_AXES = np.diag([1.0, -1.0, -1.0, 1.0])


def view_directions(num_views: int, view_angles) -> list[tuple[float, float]]:
    """(elevation, azimuth) in degrees for each view.

    ``view_angles`` as given when it has ``num_views`` entries; otherwise a deterministic even
    spread (a Fibonacci lattice on the sphere, elevations kept off the poles).
    """
    if num_views == len(view_angles):
        return [(float(e), float(a)) for e, a in view_angles]
    golden_angle = math.pi * (3.0 - math.sqrt(5.0))
    angles = []
    for i in range(num_views):
        z = 1.0 - 2.0 * (i + 0.5) / num_views  # in (-1, 1): never exactly a pole
        z = 0.8 * z  # keep views within about +-53 degrees: objects are seen from around
        elevation = math.degrees(math.asin(z))
        azimuth = math.degrees(i * golden_angle) % 360.0
        angles.append((elevation, azimuth))
    return angles


def bounding_sphere(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (3,) of the bounding box and radius enclosing all (V, 3) vertices."""
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    centre = (low + high) / 2.0
    radius = float(np.linalg.norm(vertices - centre, axis=1).max())
    return centre.astype(np.float64), max(radius, 1e-6)


def camera_to_world_blender(
    centre: np.ndarray, distance: float, elevation_deg: float, azimuth_deg: float
) -> np.ndarray:
    """(4, 4) Blender camera matrix_world looking at ``centre`` from (elevation, azimuth).

    Azimuth 0 looks at the object's front (the camera on the -Y side), 90 from +X; positive
    elevation looks from above. World up is +Z.
    """
    elevation, azimuth = math.radians(elevation_deg), math.radians(azimuth_deg)
    offset = np.array(
        [
            math.cos(elevation) * math.sin(azimuth),
            -math.cos(elevation) * math.cos(azimuth),
            math.sin(elevation),
        ]
    )
    backward = offset / np.linalg.norm(offset)  # Blender camera +z points away from the target
    up = np.array([0.0, 0.0, 1.0])
    right = np.cross(up, backward)
    if np.linalg.norm(right) < 1e-8:  # looking straight down or up
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    true_up = np.cross(backward, right)
    matrix = np.eye(4)
    matrix[:3, 0], matrix[:3, 1], matrix[:3, 2] = right, true_up, backward
    matrix[:3, 3] = centre + distance * offset
    return matrix


def intrinsics(resolution: int, fov_deg: float) -> np.ndarray:
    """(3, 3) K of a square image with field of view ``fov_deg``; principal point at centre."""
    focal = (resolution / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return np.array(
        [[focal, 0.0, resolution / 2.0], [0.0, focal, resolution / 2.0], [0.0, 0.0, 1.0]]
    )


def framing_distance(radius: float, fov_deg: float, margin: float) -> float:
    """Camera distance at which a sphere of ``radius * margin`` just fits the field of view."""
    return radius * margin / math.sin(math.radians(fov_deg) / 2.0)


def world_to_camera_opencv(camera_to_world: np.ndarray) -> np.ndarray:
    """(4, 4) OpenCV world_to_camera from a Blender camera matrix_world."""
    return np.linalg.inv(camera_to_world @ BLENDER_TO_OPENCV_AXES)
