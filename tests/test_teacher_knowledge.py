"""Teacher outputs through knowledge extraction: box units cover exactly what their box sees."""

from __future__ import annotations

import numpy as np
from fixtures_teachers import make_view, save_tiny_clip, save_tiny_owlv2
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.knowledge import extract_knowledge_units
from partdistill.backend.teachers import build_teacher

PARTS = ["leg", "seat", "back"]


def _one_point_per_pixel(view):
    """A point at depth 1 behind every object pixel's centre, on the polygon seen there."""
    rows, cols = np.nonzero(view.face_ids >= 0)
    f, cx, cy = view.K[0, 0], view.K[0, 2], view.K[1, 2]
    points = np.stack(
        [(cols + 0.5 - cx) / f, (rows + 0.5 - cy) / view.K[1, 1], np.ones(len(rows))], axis=1
    )
    assert view.K[1, 1] == f
    return points.astype(np.float32), view.face_ids[rows, cols], rows, cols


def test_owlv2_box_units_cover_exactly_the_visible_polygons_inside_each_box(tmp_path):
    config = PartDistillConfig(
        model=str(save_tiny_owlv2(tmp_path / "owl")), device="cpu", box_score_threshold=0.0
    )
    teacher = build_teacher("owlv2", PARTS, config=config)
    view = make_view(7, 48, 40)
    boxes = teacher.predict([view])[0]
    # Random tiny weights give thin boxes; widen them (same probs) so that each covers pixels.
    height, width = view.face_ids.shape
    boxes = [
        ((x0, y0, min(x0 + 12.0, width), min(y0 + 14.0, height)), probs)
        for (x0, y0, _, _), probs in boxes
    ]
    assert len(boxes) >= 2
    points, polygons, rows, cols = _one_point_per_pixel(view)
    units = extract_knowledge_units([boxes], [view], "box", points, polygons, len(PARTS), config)
    assert len(units) == len(boxes)
    for d, ((x0, y0, x1, y1), probs) in enumerate(boxes):
        inside = (cols + 0.5 >= x0) & (cols + 0.5 <= x1) & (rows + 0.5 >= y0) & (rows + 0.5 <= y1)
        np.testing.assert_array_equal(units.mask[d], inside)
        np.testing.assert_allclose(
            units.probs[d][inside], np.broadcast_to(probs, (inside.sum(), 3))
        )
        assert units.part[d] == probs.argmax()
        expected = set(polygons[inside].tolist())
        assert set(units.polygon_index[units.polygon_unit == d].tolist()) == expected


def test_clip_maps_become_pixel_units_over_object_points(tmp_path):
    config = PartDistillConfig(
        model=str(save_tiny_clip(tmp_path / "clip")), device="cpu", min_component_pixels=1
    )
    teacher = build_teacher("clip", PARTS, config=config)
    view = make_view(8, 48, 40)
    probs = teacher.predict([view])[0]
    points, polygons, rows, cols = _one_point_per_pixel(view)
    units = extract_knowledge_units([probs], [view], "pixel", points, polygons, len(PARTS), config)
    assert len(units) >= 1
    # Every object point is in exactly one component, of the part CLIP ranks first there.
    assert np.all(units.mask.sum(0) == 1)
    labels = probs[rows, cols].argmax(-1)
    unit_of_point = units.mask.argmax(0)
    np.testing.assert_array_equal(units.part[unit_of_point], labels)
    np.testing.assert_allclose(
        units.probs[unit_of_point, np.arange(len(points))], probs[rows, cols]
    )
