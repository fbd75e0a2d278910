"""Knowledge extraction (Eq. 1-2) on shapes whose views are known exactly."""

import numpy as np
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.knowledge import extract_knowledge_units, visible_points
from partdistill.backend.sampling import polygon_centroids, sample_surface_points
from synthetic import grid_planes, polygon_centres_x, top_view

# A floor (x in [0, 1]) and, above its left half, a shelf (x in [0, 0.5]) that hides it.
PLANES = [(0.0, 1.0, 1.0, 0.0), (0.0, 0.5, 1.0, 0.5)]
CELLS = 10


def _setup(resolution=128, num_points=3000):
    geometry = grid_planes(CELLS, PLANES)
    view = top_view(CELLS, PLANES, resolution, height=3.0)
    points, _, polygons = sample_surface_points(geometry, num_points, np.random.default_rng(1))
    return geometry, view, points, polygons


def _halves(view, points):
    """A perfect two-part teacher: part 0 left of x = 0.5 in the image, part 1 right of it."""
    h, w = view.face_ids.shape
    probs = np.zeros((h, w, 2), np.float32)
    probs[:, : w // 2, 0] = 0.9
    probs[:, : w // 2, 1] = 0.1
    probs[:, w // 2 :, 1] = 0.7
    probs[:, w // 2 :, 0] = 0.3
    probs[view.face_ids < 0] = 0
    return probs


def _visible(points, polygons, view, planes=None, tolerance=0.0):
    index, _ = visible_points(points, polygons, view, planes, tolerance)
    visible = np.zeros(len(points), bool)
    visible[index] = True
    return visible


def test_occluded_points_receive_no_knowledge():
    geometry, view, points, polygons = _setup()
    centroids, normals, _ = polygon_centroids(geometry)
    floor = polygons < CELLS * CELLS
    hidden = floor & (points[:, 0] < 0.5)
    # The right half of the floor is in full view (away from the image border).
    open_floor = floor & (points[:, 0] > 0.52) & (points[:, 1] > 0.05) & (points[:, 1] < 0.95)
    exact = _visible(points, polygons, view)
    assert not exact[hidden].any(), "points under the shelf must not be visible"
    # Matching polygon ids alone loses points whose pixel centre falls on the next polygon.
    assert 0.9 < exact[open_floor].mean() < 1.0
    on_plane = _visible(points, polygons, view, (centroids, normals), tolerance=0.01)
    assert on_plane[open_floor].all()
    assert not on_plane[hidden].any(), "the shelf is 0.5 above the floor: still hidden"


def test_pixel_units_are_components_with_teacher_probabilities():
    geometry, view, points, polygons = _setup()
    units = extract_knowledge_units(
        [_halves(view, points)], [view], "pixel", points, polygons, 2, PartDistillConfig()
    )
    assert sorted(units.part.tolist()) == [0, 1]
    left = units.mask[units.part == 0][0]
    right = units.mask[units.part == 1][0]
    assert not (left & right).any()
    # Left unit: shelf points only (the floor under it is hidden); right: open floor only.
    assert (polygons[left] >= CELLS * CELLS).all()
    assert (points[right][:, 0] >= 0.5 - 1e-6).all() and (polygons[right] < CELLS**2).all()
    # Y^d carries the teacher's probabilities, so C^d_n = 0.9 on the left, 0.7 on the right.
    np.testing.assert_allclose(units.confidence[units.part == 0][0][left], 0.9, rtol=1e-6)
    np.testing.assert_allclose(units.confidence[units.part == 1][0][right], 0.7, rtol=1e-6)
    assert (units.confidence[:, ~(left | right)] == 0).all()


def test_small_components_are_dropped_as_noise():
    geometry, view, points, polygons = _setup()
    probs = _halves(view, points)
    probs[60:62, 100:102] = [0.95, 0.05]  # a 4-pixel speck of part 0 inside part 1
    units = extract_knowledge_units(
        [probs], [view], "pixel", points, polygons, 2, PartDistillConfig(min_component_pixels=8)
    )
    assert len(units) == 2
    units = extract_knowledge_units(
        [probs], [view], "pixel", points, polygons, 2, PartDistillConfig(min_component_pixels=1)
    )
    assert len(units) == 3


def test_box_unit_covers_exactly_the_visible_polygons_inside_the_box():
    geometry, view, points, polygons = _setup()
    box = (70.0, 20.0, 110.0, 90.0)  # x0, y0, x1, y1 in pixels, over the open floor
    probs = np.array([0.2, 0.8], np.float32)
    units = extract_knowledge_units(
        [[(box, probs)]], [view], "box", points, polygons, 2, PartDistillConfig()
    )
    assert len(units) == 1 and units.part[0] == 1
    rows, cols = np.mgrid[0:128, 0:128]
    inside = (cols + 0.5 >= 70) & (cols + 0.5 <= 110) & (rows + 0.5 >= 20) & (rows + 0.5 <= 90)
    expected = np.unique(view.face_ids[inside])
    expected = expected[expected >= 0]
    np.testing.assert_array_equal(np.sort(units.polygon_index), expected)
    # Covered points: visible and projecting inside the box; they carry the box's probabilities.
    index, pixel = visible_points(points, polygons, view)
    r, c = np.divmod(pixel, 128)
    in_box = (c + 0.5 >= 70) & (c + 0.5 <= 110) & (r + 0.5 >= 20) & (r + 0.5 <= 90)
    np.testing.assert_array_equal(np.flatnonzero(units.mask[0]), np.sort(index[in_box]))
    np.testing.assert_allclose(units.probs[0][units.mask[0]], np.tile(probs, (in_box.sum(), 1)))


def test_direct_vote_labels_seen_polygons_and_leaves_hidden_ones_unlabelled():
    from partdistill.backend.labels import direct_vote

    geometry, view, points, polygons = _setup()
    units = extract_knowledge_units(
        [_halves(view, points)], [view], "pixel", points, polygons, 2, PartDistillConfig()
    )
    labels, confidence = direct_vote(units, geometry.num_polygons, 2)
    x = polygon_centres_x(geometry)
    floor = np.arange(geometry.num_polygons) < CELLS * CELLS
    assert (labels[floor & (x < 0.5)] == -1).all(), "the hidden floor gets no vote"
    assert (confidence[labels == -1] == 0).all()
    seen = np.unique(view.face_ids[view.face_ids >= 0])
    assert (labels[seen] >= 0).all()
    assert (labels[floor & (x > 0.55)] == 1).all()
