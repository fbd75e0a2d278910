"""Knowledge extraction (paper Sec. 3.2, Eq. 1-2): 2D teacher predictions -> 3D knowledge units.

Pixel teachers: per view, each connected component of each predicted part is a unit. Box
teachers: each box is a unit. A unit covers the points that project into it AND are visible
there, i.e. the polygon rendered at that pixel is the point's own polygon: occluded points
never receive knowledge from a view.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .config import PartDistillConfig
from .contracts import KnowledgeUnits, View
from .rescore import prior_trust


def project_points(points: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel row, column and in-front flag of every point in a view.

    points (N, 3) world -> rows (N,) int64, cols (N,) int64, valid (N,) bool (in front of the
    camera and inside the image). Rows/cols of invalid points are clipped, not meaningful.
    """
    h, w = view.face_ids.shape
    homogeneous = np.concatenate([points, np.ones((len(points), 1), points.dtype)], axis=1)
    cam = (homogeneous.astype(np.float64) @ view.world_to_camera.T)[:, :3]
    z = cam[:, 2]
    safe_z = np.where(z > 1e-9, z, 1.0)
    pix = cam @ view.K.T
    u, v = pix[:, 0] / safe_z, pix[:, 1] / safe_z
    cols, rows = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    valid = (z > 1e-9) & (cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)
    return np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1), valid


def camera_centre(view: View) -> np.ndarray:
    """(3,) float64 the camera's centre in world space."""
    rotation, translation = view.world_to_camera[:3, :3], view.world_to_camera[:3, 3]
    return -rotation.T @ translation


def visible_points(
    points, point_polygons, view: View, planes=None, tolerance: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of points visible in the view and their flat pixel index (row * W + col).

    A point is visible where the polygon rendered at its pixel is its own polygon, or, given
    ``planes`` = (centroids (P, 3), normals (P, 3)), where it lies within ``tolerance`` (world
    units, along its viewing ray) of the plane of the polygon rendered there: polygons smaller
    than a pixel, and points on a pixel's edge, still count, while occluded points (far behind
    the visible surface) never do.
    """
    rows, cols, valid = project_points(points, view)
    seen = view.face_ids[rows, cols]
    visible = valid & (seen == point_polygons)
    if planes is not None and tolerance > 0:
        centroids, normals = planes
        check = np.flatnonzero(valid & ~visible & (seen >= 0))
        eye = camera_centre(view)
        ray = points[check].astype(np.float64) - eye  # the point is at t = 1 along it
        normal = normals[seen[check]].astype(np.float64)
        facing = np.einsum("ij,ij->i", normal, ray)
        offset = np.einsum("ij,ij->i", normal, centroids[seen[check]] - eye)
        t = offset / np.where(np.abs(facing) > 1e-12, facing, np.nan)
        gap = np.abs(1.0 - t) * np.linalg.norm(ray, axis=1)
        visible[check[np.nan_to_num(gap, nan=np.inf) < tolerance]] = True
    index = np.flatnonzero(visible)
    return index, rows[index] * view.face_ids.shape[1] + cols[index]


def incidence_weights(points, normals, view: View, floor: float) -> np.ndarray:
    """(N,) |cos| of the angle between each point's normal and its viewing ray, raised to at
    least ``floor``: a surface seen edge-on covers few pixels of the teacher's map, so one pixel
    of it stands for surface the teacher barely saw, and a pixel's error spreads along it."""
    ray = points.astype(np.float64) - camera_centre(view)
    ray /= np.maximum(np.linalg.norm(ray, axis=1, keepdims=True), 1e-12)
    cos = np.abs(np.einsum("ij,ij->i", ray, normals.astype(np.float64)))
    return np.maximum(cos, floor).astype(np.float32)


def pixel_components(probs: np.ndarray, face_ids: np.ndarray, min_pixels: int):
    """Connected components of the per-pixel argmax part (Eq. 1).

    probs (H, W, R), face_ids (H, W) -> component image (H, W) int64 (-1 = none) and the part of
    each component (C,) int64. Components smaller than ``min_pixels`` are dropped as noise.
    """
    on_object = face_ids >= 0
    argmax = np.where(on_object, probs.argmax(axis=2), -1)
    components = np.full(face_ids.shape, -1, np.int64)
    parts = []
    for r in range(probs.shape[2]):
        labelled, count = ndimage.label(argmax == r)
        if count == 0:
            continue
        sizes = np.bincount(labelled.ravel(), minlength=count + 1)
        keep = np.flatnonzero(sizes[1:] >= min_pixels) + 1
        remap = np.full(count + 1, -1, np.int64)
        remap[keep] = np.arange(len(keep)) + len(parts)
        region = labelled > 0
        components[region] = remap[labelled[region]]
        parts.extend([r] * len(keep))
    return components, np.array(parts, np.int64)


def _polygon_pairs(unit_of_pixel, pixel_face, pixel_conf, first_unit: int):
    """(unit, polygon, mean confidence) for every unit-polygon pair seen in a view's pixels."""
    keep = (unit_of_pixel >= 0) & (pixel_face >= 0)
    unit, face, conf = unit_of_pixel[keep], pixel_face[keep], pixel_conf[keep]
    if unit.size == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float32)
    span = int(face.max()) + 1
    key, inverse = np.unique(unit * span + face, return_inverse=True)
    mean_conf = np.bincount(inverse, conf) / np.bincount(inverse)
    return key // span + first_unit, key % span, mean_conf.astype(np.float32)


def _box_pixel_ranges(box, shape) -> tuple[slice, slice]:
    """Rows and columns whose pixel centres lie inside box (x0, y0, x1, y1), in pixels."""
    x0, y0, x1, y1 = (float(c) for c in box)
    h, w = shape
    col0, col1 = max(0, int(np.ceil(x0 - 0.5))), min(w, int(np.floor(x1 - 0.5)) + 1)
    row0, row1 = max(0, int(np.ceil(y0 - 0.5))), min(h, int(np.floor(y1 - 0.5)) + 1)
    return slice(row0, max(row0, row1)), slice(col0, max(col0, col1))


def _pixel_units(prediction, view, index, pixel, n, num_parts, config):
    """Units of one view of a pixel teacher: one per connected component of a part."""
    prediction = np.asarray(prediction, np.float32)
    if prediction.shape != (*view.face_ids.shape, num_parts):
        raise ValueError(
            f"the teacher predicted shape {prediction.shape}, expected "
            f"{(*view.face_ids.shape, num_parts)}"
        )
    components, comp_parts = pixel_components(
        prediction, view.face_ids, config.min_component_pixels
    )
    flat_probs = prediction.reshape(-1, num_parts)
    unit_of_point = components.ravel()[pixel]
    units = []
    for c, r in enumerate(comp_parts):
        hit = unit_of_point == c
        y = np.zeros((n, num_parts), np.float32)
        y[index[hit]] = flat_probs[pixel[hit]]
        mask = np.zeros(n, bool)
        mask[index[hit]] = True
        units.append((y, mask, int(r)))
    pairs = _polygon_pairs(components.ravel(), view.face_ids.ravel(), flat_probs.max(axis=1), 0)
    return units, pairs


def _box_units(prediction, view, index, pixel, n, num_parts):
    """Units of one view of a box teacher: one per box, over the visible points inside it."""
    rows, cols = np.divmod(pixel, view.face_ids.shape[1])
    units, pairs = [], ([], [], [])
    for b, (box, box_probs) in enumerate(prediction):
        box_probs = np.asarray(box_probs, np.float32)
        row_range, col_range = _box_pixel_ranges(box, view.face_ids.shape)
        inside = (rows >= row_range.start) & (rows < row_range.stop)
        inside &= (cols >= col_range.start) & (cols < col_range.stop)
        mask = np.zeros(n, bool)
        mask[index[inside]] = True
        y = np.zeros((n, num_parts), np.float32)
        y[mask] = box_probs
        units.append((y, mask, int(box_probs.argmax())))
        faces = np.unique(view.face_ids[row_range, col_range])
        faces = faces[faces >= 0].astype(np.int64)
        pairs[0].append(np.full(len(faces), b, np.int64))
        pairs[1].append(faces)
        pairs[2].append(np.full(len(faces), box_probs.max(), np.float32))
    if not units:
        return units, (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
    return units, tuple(np.concatenate(p) for p in pairs)


def extract_knowledge_units(
    predictions: list,
    views: list[View],
    kind: str,
    points: np.ndarray,
    point_polygons: np.ndarray,
    num_parts: int,
    config: PartDistillConfig,
    planes: tuple[np.ndarray, np.ndarray] | None = None,
    normals: np.ndarray | None = None,
) -> KnowledgeUnits:
    """Back-project every view's predictions onto the points (Eq. 2).

    points (N, 3), point_polygons (N,) -> KnowledgeUnits with D units over N points, R parts.
    planes: polygon centroids and normals (P, 3) each, for the visibility test of
    ``visible_points``, with tolerance config.visibility_tolerance x the points' bounding radius.
    normals (N, 3): with config.incidence_weighting, each unit's points are weighted by how
    squarely its view sees them (``incidence_weights``).
    """
    tolerance = 0.0
    if planes is not None:
        extent = points.max(axis=0) - points.min(axis=0)
        tolerance = config.visibility_tolerance * 0.5 * float(np.linalg.norm(extent))
    if kind not in ("pixel", "box"):
        raise ValueError(f"unknown teacher kind {kind!r}: expected 'pixel' or 'box'")
    n = len(points)
    units, unit_views, pairs, incidence = [], [], ([], [], []), []
    weigh = normals is not None and config.incidence_weighting
    for v, (prediction, view) in enumerate(zip(predictions, views, strict=True)):
        index, pixel = visible_points(points, point_polygons, view, planes, tolerance)
        if weigh:
            view_weight = incidence_weights(points, normals, view, config.incidence_floor)
        try:
            if kind == "pixel":
                got, got_pairs = _pixel_units(prediction, view, index, pixel, n, num_parts, config)
            else:
                got, got_pairs = _box_units(prediction, view, index, pixel, n, num_parts)
        except ValueError as exc:
            raise ValueError(f"view {v}: {exc}") from exc
        pairs[0].append(got_pairs[0] + len(units))
        pairs[1].append(got_pairs[1])
        pairs[2].append(got_pairs[2])
        units.extend(got)
        unit_views.extend([v] * len(got))
        if weigh:
            incidence.extend([view_weight] * len(got))

    if not units:
        return KnowledgeUnits.empty(n, num_parts)
    mask = np.stack([u[1] for u in units])
    extracted = KnowledgeUnits(
        probs=np.stack([u[0] for u in units]),
        mask=mask,
        part=np.array([u[2] for u in units], np.int64),
        view=np.array(unit_views, np.int64),
        polygon_unit=np.concatenate(pairs[0]),
        polygon_index=np.concatenate(pairs[1]),
        polygon_confidence=np.concatenate(pairs[2]),
        incidence=np.stack(incidence) * mask if weigh else None,
    )
    extracted.trust = prior_trust(extracted, kind, config)
    return extracted
