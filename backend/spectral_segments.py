"""An over-segmentation of the surface into pieces that end where the shape narrows.

Crease-bounded patches (``refine.surface_segments``) know nothing of organic shapes, whose
parts meet at smooth necks: a tentacle, a leg or a tail is cut by grid lines, not at its joint.
Clusters of the point cloud's spectral embedding (the low-frequency eigenvectors of its kNN
graph, as in spectral mesh segmentation) end instead where few edges join two regions: at
necks, joints and the thin links between separate pieces. A cluster is one part far more often
than a view is right, so the mean over a cluster outvotes a wrong view, speckle, or a patch the
teacher blurred across a joint.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2
from scipy.spatial import cKDTree

from .features import spectral_embedding


def spectral_clusters(points: np.ndarray, count: int, knn: int, dims: int, seed: int = 0):
    """(N,) int64 cluster of each of the N points (N, 3): k-means (k-means++ start, fixed seed)
    on the row-normalised spectral embedding of their kNN graph, ``count`` clusters at most."""
    points = np.asarray(points, np.float64)
    count = int(max(1, min(count, len(points) // 4)))
    if count == 1:
        return np.zeros(len(points), np.int64)
    embedding = spectral_embedding(cKDTree(points), points, knn, dims)
    # Row-normalised, as in normalised-cut clustering: a point's direction in the embedding
    # says which region it belongs to, its length mostly how well connected it is.
    embedding /= np.maximum(np.linalg.norm(embedding, axis=1, keepdims=True), 1e-12)
    _, labels = kmeans2(embedding, count, seed=np.random.default_rng(seed), minit="++")
    return labels.astype(np.int64)


def polygon_clusters(
    points: np.ndarray, centroids: np.ndarray, count: int, knn: int, dims: int
) -> np.ndarray:
    """(P,) int64: each polygon (centroids (P, 3)) takes the spectral cluster of the sampled
    point (points (N, 3)) nearest to its centroid."""
    labels = spectral_clusters(points, count, knn, dims)
    _, nearest = cKDTree(np.asarray(points, np.float64)).query(np.asarray(centroids, np.float64))
    return labels[nearest]
