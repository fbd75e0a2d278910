"""Labels that follow the mesh: the CRF over the polygon adjacency graph, on shapes whose right
answer is known."""

import numpy as np
import pytest
from partdistill.backend.config import PartDistillConfig
from partdistill.backend.contracts import MeshGeometry
from partdistill.backend.part_floor import area_shares, solve_with_floor
from partdistill.backend.refine import (
    crease_pieces,
    polygon_adjacency,
    refine_probabilities,
    row_ids,
    surface_segments,
)
from partdistill.backend.spectral_segments import spectral_clusters

CONFIG = PartDistillConfig(refine=True)


def _sheet(cells, to_3d, first_polygon=0):
    """A cells x cells grid of quads (two triangles each) mapped to 3D by to_3d(u, v)."""
    u, v = np.meshgrid(np.linspace(0, 1, cells + 1), np.linspace(0, 1, cells + 1))
    vertices = to_3d(u.ravel(), v.ravel())
    i, j = np.meshgrid(np.arange(cells), np.arange(cells))
    a = (j * (cells + 1) + i).ravel()
    b, c, d = a + 1, a + cells + 2, a + cells + 1
    triangles = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    quad = np.arange(cells * cells) + first_polygon
    return vertices, triangles, np.concatenate([quad, quad])


def _join(*sheets) -> MeshGeometry:
    vertices, triangles, owners, offset = [], [], [], 0
    for verts, tris, own in sheets:
        vertices.append(verts)
        triangles.append(tris + offset)
        owners.append(own)
        offset += len(verts)
    owners = np.concatenate(owners)
    return MeshGeometry(
        np.concatenate(vertices).astype(np.float32),
        np.concatenate(triangles).astype(np.int32),
        owners.astype(np.int32),
        int(owners.max()) + 1,
    )


def _folded_sheet(cells=48):
    """An L: a floor (part 0) and a wall (part 1) meeting at a 90 degree crease along y = 1.
    The two sheets repeat the vertices of the crease, as many files do."""
    floor = _sheet(cells, lambda u, v: np.column_stack([u, v, 0 * u]))
    wall = _sheet(cells, lambda u, v: np.column_stack([u, 1 + 0 * u, v]), cells * cells)
    geometry = _join(floor, wall)
    truth = np.repeat([0, 1], cells * cells)
    # Distance of each polygon from the crease, along the surface, in cells.
    rows = np.concatenate([cells - 1 - np.arange(cells * cells) // cells,
                           np.arange(cells * cells) // cells])  # fmt: skip
    return geometry, truth, rows


def _refine(geometry, probs):
    """The refinement at the default settings, as the pipeline runs it (every polygon seen,
    so the part floor is on)."""
    seen = np.ones(geometry.num_polygons, bool)
    return refine_probabilities(geometry, np.asarray(probs, np.float32), CONFIG, seen=seen)


def test_labels_switch_exactly_at_the_crease():
    geometry, truth, rows = _folded_sheet()
    # A blurred teacher: the floor's label bleeds two rows up the wall, and the boundary
    # probabilities are soft (0.6 / 0.4), as a student's are near a part boundary.
    probs = np.where(truth[:, None] == 0, [0.8, 0.2], [0.2, 0.8])
    bled = (truth == 1) & (rows < 2)
    probs[bled] = [0.6, 0.4]
    before = probs.argmax(axis=1)
    assert (before != truth).sum() == 2 * 48, "the test starts from a wrong boundary"
    after = _refine(geometry, probs).argmax(axis=1)
    np.testing.assert_array_equal(after, truth)


def test_a_correct_labelling_is_left_unchanged():
    geometry, truth, _ = _folded_sheet()
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.55, 0.95, len(truth))  # right everywhere, unevenly sure
    probs = np.where(np.eye(2, dtype=bool)[truth], confidence[:, None], 1 - confidence[:, None])
    refined = _refine(geometry, probs)
    np.testing.assert_array_equal(refined.argmax(axis=1), truth)


def test_speckle_on_a_smooth_sheet_is_removed():
    cells = 16
    flat = _sheet(cells, lambda u, v: np.column_stack([u, v, 0.2 * np.sin(3 * u)]))
    geometry = _join(flat)
    rng = np.random.default_rng(1)
    probs = np.tile([0.75, 0.25], (cells * cells, 1))
    specks = rng.choice(cells * cells, 20, replace=False)  # isolated wrong polygons
    probs[specks] = [0.35, 0.65]
    refined = _refine(geometry, probs)
    assert (refined.argmax(axis=1) == 0).all()


def test_separate_pieces_do_not_interact_and_ngons_are_one_node():
    # Two sheets far apart: a confident piece must not pull a weakly labelled one.
    a = _sheet(4, lambda u, v: np.column_stack([u, v, 0 * u]))
    b = _sheet(4, lambda u, v: np.column_stack([u + 5, v, 0 * u]), 16)
    geometry = _join(a, b)
    adjacency = polygon_adjacency(geometry, 1.0, 0.2).tocoo()
    assert ((adjacency.row < 16) == (adjacency.col < 16)).all(), "an edge across pieces"
    # Every quad (two triangles) is one node: no self-edge from its own diagonal.
    assert (adjacency.row != adjacency.col).all()
    probs = np.concatenate([np.tile([0.95, 0.05], (16, 1)), np.tile([0.45, 0.55], (16, 1))])
    refined = _refine(geometry, probs)
    assert (refined[16:].argmax(axis=1) == 1).all()


def test_non_manifold_edges_and_isolated_polygons():
    # Three sheets sharing one edge (a book's spine), plus one triangle that touches nothing.
    pages = [
        _sheet(3, lambda u, v, a=a: np.column_stack([u, v * np.cos(a), v * np.sin(a)]), 9 * k)
        for k, a in enumerate((0.0, 2.0, 4.0))
    ]
    verts, tris, owners = [p[0] for p in pages], [p[1] for p in pages], [p[2] for p in pages]
    verts.append(np.array([[9, 9, 9], [10, 9, 9], [9, 10, 9]], float))
    tris.append(np.array([[0, 1, 2]]))
    owners.append(np.array([27]))
    geometry = _join(*zip(verts, tris, owners, strict=True))
    adjacency = polygon_adjacency(geometry, 1.0, 0.2)
    assert adjacency[27].nnz == 0
    spine = [0, 1, 2]  # first row of each page touches the spine
    linked = {(r, c) for r, c in zip(*adjacency.nonzero(), strict=True)}
    assert any((r in spine and 9 <= c < 27) for r, c in linked), "pages are not linked"
    probs = np.full((28, 2), 0.5)
    probs[27] = [0.3, 0.7]
    refined = _refine(geometry, probs)
    assert refined[27].argmax() == 1 and np.isfinite(refined).all()


def test_surface_segments_stop_at_creases_and_cut_smooth_surface_into_patches():
    geometry, truth, _ = _folded_sheet(cells=16)
    segments = surface_segments(geometry, crease_pieces(geometry, crease_deg=20.0), cell=0.25)
    for s in np.unique(segments):
        assert len(np.unique(truth[segments == s])) == 1, "a segment crosses the crease"
    # The L spans about 1.4 in each of two directions, radius ~0.87: cells of ~0.22 per side,
    # so each 1 x 1 sheet is cut into several patches, not left whole.
    assert len(np.unique(segments[truth == 0])) >= 9
    assert len(np.unique(segments)) < len(truth) / 4, "patches are many polygons each"


def test_segment_blend_outvotes_a_wrong_patch_inside_a_segment():
    geometry, truth, rows = _folded_sheet(cells=32)
    probs = np.where(truth[:, None] == 0, [0.7, 0.3], [0.3, 0.7])
    # A wrong 3 x 3 island on the wall, four rows from the crease: a view's speckle, which
    # the CRF alone keeps (too large and sure to be smoothed away).
    column = np.arange(len(truth)) % 32
    island = (truth == 1) & (rows >= 4) & (rows < 7) & (column >= 6) & (column < 9)
    probs[island] = [0.8, 0.2]
    plain = refine_probabilities(geometry, probs, CONFIG.replace(refine_segment_weight=0.0))
    blended = refine_probabilities(geometry, probs, CONFIG)  # the defaults blend segments
    assert (plain.argmax(axis=1) != truth).sum() > 0, "the test starts from a wrong island"
    np.testing.assert_array_equal(blended.argmax(axis=1), truth)


def test_spectral_clusters_never_join_separate_pieces():
    # Two balls of points far apart (a chair's separate legs): the kNN graph has two
    # components, the spectral embedding is constant on each, so no cluster takes from both.
    rng = np.random.default_rng(0)
    ball = rng.normal(size=(600, 3))
    ball /= np.linalg.norm(ball, axis=1, keepdims=True)
    points = np.concatenate([ball, ball * 0.5 + [5.0, 0.0, 0.0]])
    clusters = spectral_clusters(points, count=8, knn=16, dims=8)
    for c in np.unique(clusters):
        members = np.flatnonzero(clusters == c)
        assert (members < 600).all() or (members >= 600).all(), "a cluster spans both balls"
    assert len(np.unique(clusters[:600])) > 1, "a ball is cut into several clusters"


def test_part_floor_keeps_a_part_at_its_share_and_takes_its_surest_polygons():
    # Part 1 loses the argmax on every polygon (0.45 against 0.55), but the evidence gives it
    # 30 % of the area: the floor (0.85) must bring it back to at least 0.85 x 30 %, and on the
    # polygons where it is surest.
    rng = np.random.default_rng(1)
    strength = rng.uniform(0.30, 0.45, size=200)
    probs = np.column_stack([1.0 - strength, strength]).astype(np.float32)
    areas = np.ones(200)
    seen = np.ones(200, bool)
    target = np.array([0.7, 0.3])
    plain = probs.argmax(axis=1)
    assert area_shares(plain, areas, 2, seen)[1] == 0.0
    floored = solve_with_floor(probs, lambda p: p, target, areas, seen, 0.85, 6).argmax(axis=1)
    share = area_shares(floored, areas, 2, seen)[1]
    assert 0.85 * 0.3 <= share <= 0.6, share
    assert strength[floored == 1].min() > strength[floored == 0].max()


def test_part_floor_changes_nothing_where_no_part_shrinks():
    # Every part already holds its share: no bias, the solver's answer as it is.
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], np.float32)
    got = solve_with_floor(probs, lambda p: p, np.array([2 / 3, 1 / 3]), np.ones(3),
                           np.ones(3, bool), 0.85, 6)  # fmt: skip
    np.testing.assert_array_equal(got, probs)


def test_crease_pieces_split_at_the_fold_and_nowhere_else():
    geometry, truth, _ = _folded_sheet(cells=8)
    pieces = crease_pieces(geometry, 20.0)
    assert len(np.unique(pieces)) == 2
    for piece in np.unique(pieces):
        assert len(np.unique(truth[pieces == piece])) == 1, "a piece crosses the fold"


def test_part_floor_keeps_a_thin_strip_that_smoothing_erases():
    # A one-polygon-wide strip of part 1 across a sheet of part 0, weakly voted (0.55): the
    # diffusion and the CRF blur it away; with the floor it stays, on the strip itself.
    cells = 32
    geometry = _join(_sheet(cells, lambda u, v: np.column_stack([u, v, 0 * u])))
    column = np.arange(cells * cells) % cells
    strip = column == cells // 2
    probs = np.where(strip[:, None], [0.45, 0.55], [0.8, 0.2]).astype(np.float32)
    seen = np.ones(len(probs), bool)
    plain = refine_probabilities(geometry, probs, CONFIG.replace(refine_part_floor=0.0), seen=seen)
    kept = refine_probabilities(geometry, probs, CONFIG, seen=seen).argmax(axis=1)
    assert (plain.argmax(axis=1) == 1).sum() < 0.5 * strip.sum(), "smoothing erases the strip"
    assert (kept == 1).sum() >= CONFIG.refine_part_floor * strip.sum()
    assert np.abs(column[kept == 1] - cells // 2).max() <= 1, "the part is kept where it was"


@pytest.mark.parametrize("rows, columns", [(1, 3), (500, 1), (20000, 3)])
def test_row_ids_number_distinct_rows_in_lexicographic_order(rows, columns):
    # The fast replacement of np.unique(axis=0)'s inverse (welding, segment ids): equal ids.
    keys = np.random.default_rng(rows).integers(-4, 4, (rows, columns))
    expected = np.unique(keys, axis=0, return_inverse=True)[1].ravel()
    assert np.array_equal(row_ids(keys), expected)
