"""Labels that follow the mesh: a CRF over the polygon adjacency graph.

The student gives every polygon part probabilities at its centroid, independently of its
neighbours, so labels can speckle and boundaries wander across smooth surface. Here the
labels minimise a Potts energy: -log p (the student) on each polygon plus, on each edge that
two polygons share, a cost for differing labels that is high across smooth, convex surface
and low across creases and concave folds, where parts of man-made and organic shapes meet.
It is solved by mean-field iterations, which are sparse matrix products: linear in the mesh,
fine for a million polygons. Pieces that share no edge (separate legs) do not interact;
n-gons are whole nodes; an edge shared by more than two polygons links each to the next.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from .contracts import MeshGeometry
from .part_floor import area_shares, parts_with_a_region, solve_with_floor
from .sampling import polygon_areas, polygon_centroids, triangle_areas_and_normals
from .spectral_segments import polygon_clusters


def row_ids(keys: np.ndarray) -> np.ndarray:
    """(M,) int64: the rank of each row of ``keys`` (M, k) among the distinct rows in
    lexicographic order, as ``np.unique(keys, axis=0, return_inverse=True)`` gives it, in a
    fraction of its time on a million rows (no structured-array sort)."""
    keys = keys.reshape(len(keys), -1)
    if len(keys) == 0:
        return np.zeros(0, np.int64)
    order = np.lexsort(keys.T[::-1])  # column 0 most significant
    ordered = keys[order]
    new = np.empty(len(keys), bool)
    new[0] = True
    new[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    ids = np.empty(len(keys), np.int64)
    ids[order] = np.cumsum(new) - 1
    return ids


def _welded_vertices(vertices: np.ndarray) -> np.ndarray:
    """(V,) an id per vertex shared by vertices at the same position (split seams, OFF files
    that repeat vertices per face)."""
    scale = float(np.abs(vertices).max()) or 1.0
    quantised = np.round(vertices.astype(np.float64) / scale * 2**20).astype(np.int64)
    return row_ids(quantised)


def polygon_edges(geometry: MeshGeometry):
    """The edges two polygons share: (first (E,), second (E,)) polygon ids, length (E,),
    |cos| of the dihedral angle (E,) and whether the edge is concave (E,) bool."""
    tris = geometry.triangles
    owner = geometry.triangle_polygons.astype(np.int64)
    vertices = geometry.vertices.astype(np.float64)
    _, normals = triangle_areas_and_normals(geometry)
    centres = (vertices[tris[:, 0]] + vertices[tris[:, 1]] + vertices[tris[:, 2]]) / 3.0

    # Every triangle edge e (of triangle e // 3, from its corner e % 3) as one int64 key, its
    # sorted pair of welded vertex ids; equal keys are shared edges. A stable argsort of the
    # key is the lexsort of the pairs. Only keys and their order are kept (a million
    # polygons: 5.7M edges), the rest is found from e for the shared edges alone.
    welded = _welded_vertices(geometry.vertices)[tris]  # (T, 3)
    a, b = welded.ravel(), welded[:, [1, 2, 0]].ravel()
    key = np.minimum(a, b) * (int(welded.max()) + 1) + np.maximum(a, b)
    del a, b, welded
    order = np.argsort(key, kind="stable")
    key = key[order]
    shared = np.flatnonzero(key[1:] == key[:-1])
    del key
    edge = order[shared]  # consecutive equal keys: a chain over an edge's triangles
    first, second = edge // 3, order[shared + 1] // 3
    del order, shared
    between = owner[first] != owner[second]
    first, second, edge = first[between], second[between], edge[between]
    corner = edge % 3
    edge_ends = np.stack([tris[first, corner], tris[first, (corner + 1) % 3]], axis=1)

    length = np.linalg.norm(vertices[edge_ends[:, 0]] - vertices[edge_ends[:, 1]], axis=1)
    n1, n2 = normals[first], normals[second]
    cos = np.clip(np.abs(np.einsum("ij,ij->i", n1, n2)), 0.0, 1.0)
    # Normals of OFF meshes are not consistently oriented: |cos| for the angle; concavity
    # from whether the neighbour's centre lies on the side the first normal points to,
    # with the first normal flipped to agree with the second.
    aligned = np.sign(np.einsum("ij,ij->i", n1, n2))
    aligned[aligned == 0] = 1.0
    rise = np.einsum("ij,ij->i", (centres[second] - centres[first]), n1 * aligned[:, None])
    return owner[first], owner[second], length, cos, rise > 0


def polygon_adjacency(
    geometry: MeshGeometry, concave_weight: float, convex_weight: float, edges=None
):
    """Sparse symmetric (P, P) edge weights between polygons that share an edge.

    weight = edge length x exp(-angular distance / its mean), with angular distance
    (1 - cos dihedral) x ``concave_weight`` on concave edges and x ``convex_weight`` on convex
    ones (Katz and Tal's measure): low across creases and folds, near the edge length on
    smooth surface. Returns a CSR matrix, row-normalised so every polygon's weights sum to 1
    (polygons with no neighbour keep a zero row). ``edges``: ``polygon_edges(geometry)``, if
    already computed.
    """
    p = geometry.num_polygons
    first, second, length, cos, concave = edges or polygon_edges(geometry)
    if first.size == 0:
        return sparse.csr_matrix((p, p), dtype=np.float64)
    distance = (1.0 - cos) * np.where(concave, concave_weight, convex_weight)
    mean = max(float(distance.mean()), 1e-6)
    weight = length * np.exp(-distance / mean)

    rows = np.concatenate([first, second])
    cols = np.concatenate([second, first])
    w = sparse.coo_matrix((np.concatenate([weight, weight]), (rows, cols)), shape=(p, p))
    w = w.tocsr()  # duplicates (n-gons sharing several triangle edges) are summed
    degree = np.asarray(w.sum(axis=1)).ravel()
    return sparse.diags(1.0 / np.maximum(degree, 1e-30)) @ w


def crease_pieces(
    geometry: MeshGeometry, crease_deg: float, edges=None, concave_only: bool = False
) -> np.ndarray:
    """(P,) int64: the connected pieces of surface that creases sharper than ``crease_deg``
    bound, only concave ones with ``concave_only`` (separate pieces of the mesh are separate
    pieces here too)."""
    p = geometry.num_polygons
    first, second, _, cos, concave = edges or polygon_edges(geometry)
    smooth = cos > np.cos(np.radians(crease_deg))
    if concave_only:
        smooth |= ~concave
    graph = sparse.coo_matrix((np.ones(int(smooth.sum())), (first[smooth], second[smooth])),
                              shape=(p, p))  # fmt: skip
    return connected_components(graph, directed=False)[1].astype(np.int64)


def split_by(*labellings: np.ndarray) -> np.ndarray:
    """(P,) int64: one id per distinct combination of the labellings, each (P,) or (P, k):
    each segment of the first cut wherever the others change."""
    return row_ids(np.column_stack(labellings))


def surface_segments(
    geometry: MeshGeometry, pieces: np.ndarray, cell: float, centroids: np.ndarray | None = None
) -> np.ndarray:
    """(P,) int64 over-segmentation: the crease pieces (P,) (``crease_pieces``), each cut
    further by a grid of ``cell`` x the bounding radius, so that smooth organic surface, which
    has no creases, still comes in local patches. ``centroids``: the polygons' (P, 3), if
    already computed."""
    if centroids is None:
        centroids, _, _ = polygon_centroids(geometry)
    v = geometry.vertices.astype(np.float64)
    radius = max(0.5 * float(np.linalg.norm(v.max(axis=0) - v.min(axis=0))), 1e-12)
    cell_index = np.floor((centroids - v.min(axis=0)) / (cell * radius)).astype(np.int64)
    return split_by(pieces, cell_index)


def segment_average(probs: np.ndarray, segments: np.ndarray, areas: np.ndarray) -> np.ndarray:
    """(P, R): each polygon's probabilities replaced by the area-weighted mean of its segment's."""
    total = np.zeros((int(segments.max()) + 1, probs.shape[1]))
    np.add.at(total, segments, probs * areas[:, None])
    total /= np.maximum(total.sum(axis=1, keepdims=True), 1e-30)
    return total[segments]


def mean_field(probs: np.ndarray, adjacency, strength: float, iterations: int) -> np.ndarray:
    """Approximate marginals (P, R) of the Potts CRF with unaries -log probs (P, R).

    Each iteration: Q = softmax(log p + strength x (adjacency @ Q)). A polygon with no
    neighbour keeps its own probabilities.
    """
    log_p = np.log(np.clip(probs, 1e-6, 1.0))
    q = probs.astype(np.float64)
    for _ in range(iterations):
        q = _softmax_rows(log_p + strength * (adjacency @ q))
    return q.astype(np.float32)


def _softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Softmax of each row of (P, R) logits, in place. Column by column: numpy's reductions
    along a row of a few parts cost more than the CRF's sparse product on a million polygons;
    the same operations in the same order, so the same numbers."""
    columns = [logits[:, r] for r in range(logits.shape[1])]
    top = columns[0].copy()
    for column in columns[1:]:
        np.maximum(top, column, out=top)
    logits -= top[:, None]
    np.exp(logits, out=logits)
    total = columns[0].copy()
    for column in columns[1:]:
        total += column
    logits /= total[:, None]
    return logits


def diffusion_steps(geometry: MeshGeometry, reach: float) -> int:
    """How many polygon hops span ``reach`` x the object's bounding radius on this mesh."""
    tris = geometry.vertices[geometry.triangles].astype(np.float64)
    edge = float(np.median(np.linalg.norm(tris[:, 1] - tris[:, 0], axis=1)))
    v = geometry.vertices.astype(np.float64)
    radius = 0.5 * float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))
    return int(np.clip(reach * radius / max(edge, 1e-12), 1, 200))


def diffuse(probs: np.ndarray, adjacency, steps: int) -> np.ndarray:
    """Probabilities (P, R) averaged over the surface around each polygon, about ``steps``
    polygon hops wide, mostly within the region its creases bound:
    q = (1 - a) p + a W q with a = 1 - 1 / steps, solved by 3 x steps Jacobi iterations."""
    alpha = 1.0 - 1.0 / max(steps, 1)
    has_neighbours = np.asarray(adjacency.sum(axis=1)).ravel() > 0
    p = probs.astype(np.float64)
    kept = (1.0 - alpha) * p
    q = p.copy()
    for _ in range(3 * steps):  # q = (1 - a) p + a W q, without temporaries
        q = adjacency @ q
        q *= alpha
        q += kept
    q = np.where(has_neighbours[:, None], q, p)
    return (q / np.maximum(q.sum(axis=1, keepdims=True), 1e-12)).astype(np.float32)


def refine_probabilities(
    geometry: MeshGeometry,
    probs: np.ndarray,
    config,
    points: np.ndarray | None = None,
    seen: np.ndarray | None = None,
) -> np.ndarray:
    """The student's polygon probabilities (P, R) -> refined (P, R).

    In turn: blended with the mean of their spectral cluster (``config.refine_spectral_weight``,
    given the sampled points (N, 3)) and of their surface segment
    (``config.refine_segment_weight``), diffused within the regions creases bound
    (``config.refine_reach``), then the CRF (``refine_iterations``), whose unaries are biased
    so that no part's area over the polygons some view sees (``seen`` (P,) bool) falls below
    ``config.refine_part_floor`` x its area in ``probs`` (``part_floor``).
    """
    edges = polygon_edges(geometry)
    adjacency = polygon_adjacency(
        geometry, config.refine_concave_weight, config.refine_convex_weight, edges
    )
    evidence = probs
    areas = polygon_areas(geometry)
    spectral = config.refine_spectral_weight > 0 and points is not None
    if spectral or config.refine_segment_weight > 0:
        pieces = crease_pieces(
            geometry, config.refine_crease_deg, edges, config.refine_concave_creases_only
        )
        centroids, _, _ = polygon_centroids(geometry)
    if spectral:
        clusters = polygon_clusters(
            points, centroids, config.refine_spectral_clusters, config.knn, config.spectral_dims
        )
        # The nearest sampled point can lie across a contact between touching pieces (a
        # chair's arm on its seat): a cluster never spans two crease pieces.
        mean = segment_average(probs, split_by(clusters, pieces), areas)
        probs = _blend(probs, mean, config.refine_spectral_weight)
    if config.refine_segment_weight > 0:
        segments = surface_segments(geometry, pieces, config.refine_cell, centroids)
        probs = _blend(probs, segment_average(probs, segments, areas), config.refine_segment_weight)
    if config.refine_reach > 0:
        probs = diffuse(probs, adjacency, diffusion_steps(geometry, config.refine_reach))
    if config.refine_iterations <= 0:
        return probs

    def solve(unaries):
        return mean_field(unaries, adjacency, config.refine_strength, config.refine_iterations)

    if config.refine_part_floor <= 0 or seen is None or not seen.any():
        return solve(probs)
    labels = evidence.argmax(axis=1)
    target = area_shares(labels, areas, probs.shape[1], seen)
    coherent = parts_with_a_region(
        labels, areas, edges[0], edges[1], probs.shape[1], config.refine_floor_min_region
    )
    target = np.where(coherent, target, 0.0)
    return solve_with_floor(
        probs, solve, target, areas, seen, config.refine_part_floor, config.refine_floor_rounds
    )


def _blend(probs: np.ndarray, mean: np.ndarray, weight: float) -> np.ndarray:
    return ((1.0 - weight) * probs + weight * mean).astype(np.float32)
