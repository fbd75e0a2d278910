"""Fixed per-shape point features: the frozen encoder of test-time alignment (paper Sec. 3.4).

The paper freezes a pretrained Point-M2AE; its weights cannot be had here, and training a deep
encoder per shape on two CPU cores takes minutes. So the student's encoder is a fixed function
of the shape, computed once: position (raw and Fourier), normal, local covariance shape at
several scales, and the low-frequency eigenvectors of the point graph's Laplacian, which are
near-constant on each part and change across the narrow joints between parts. Features of any
query point (a polygon centroid) are computed against the same sampled cloud, so the head that
was trained on the samples applies to the queries.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import eigsh
from scipy.spatial import cKDTree

from .config import PartDistillConfig

FOURIER_OCTAVES = 2  # sin/cos of pi * 2^k * x for k < 2: smooth enough not to fit teacher noise


def normalise_to_unit_sphere(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (bounding-box centre) and scale so the cloud fits in the unit sphere."""
    centre = 0.5 * (points.min(axis=0) + points.max(axis=0))
    radius = float(np.linalg.norm(points - centre, axis=1).max())
    return centre, max(radius, 1e-12)


def fourier_features(xyz: np.ndarray) -> np.ndarray:
    """(M, 3) in the unit sphere -> (M, 12) sines and cosines at two octaves."""
    bands = [np.pi * 2.0**k * xyz for k in range(FOURIER_OCTAVES)]
    return np.concatenate([f(b) for b in bands for f in (np.sin, np.cos)], axis=1)


# Queries per block of covariance_descriptors: its (block, k, 3) float64 neighbour array stays
# near 100 MB at k = 64, where a 1M-polygon mesh's centroids at once took 1.5 GB per scale.
QUERY_BLOCK = 65536


def covariance_descriptors(cloud_tree, cloud, queries, k: int) -> np.ndarray:
    """Shape of the k-neighbourhood of each query in the cloud: (M, 7).

    Linearity, planarity, scattering (eigenvalue ratios), the principal direction's absolute
    components, and the mean neighbour distance (local scale). Queries go in blocks of
    QUERY_BLOCK; each row depends on its own query only, so the result is the same.
    """
    k = min(k, len(cloud))
    blocks = [
        _covariance_block(cloud_tree, cloud, queries[start : start + QUERY_BLOCK], k)
        for start in range(0, len(queries), QUERY_BLOCK)
    ]
    return np.concatenate(blocks) if blocks else np.zeros((0, 7))


def _covariance_block(cloud_tree, cloud, queries, k: int) -> np.ndarray:
    distances, index = cloud_tree.query(queries, k=k, workers=-1)
    neighbours = cloud[index]  # (M, k, 3)
    centred = neighbours - neighbours.mean(axis=1, keepdims=True)
    cov = np.einsum("mki,mkj->mij", centred, centred) / k
    eigenvalues, eigenvectors = np.linalg.eigh(cov)  # ascending
    l3, l2, l1 = (np.maximum(eigenvalues[:, i], 0.0) for i in range(3))
    safe = np.maximum(l1, 1e-12)
    principal = np.abs(eigenvectors[:, :, 2])
    return np.column_stack(
        [(l1 - l2) / safe, (l2 - l3) / safe, l3 / safe, principal, distances.mean(axis=1)]
    )


def spectral_embedding(cloud_tree, cloud, k: int, dims: int) -> np.ndarray:
    """Low-frequency eigenvectors of the normalised Laplacian of the cloud's kNN graph: (N, dims).

    Gaussian edge weights with the median neighbour distance as bandwidth. Disconnected pieces
    (separate legs, say) show up as vectors that are constant on each piece.
    """
    n = len(cloud)
    dims = min(dims, n - 2)
    distances, index = cloud_tree.query(cloud, k=min(k + 1, n))
    distances, index = distances[:, 1:], index[:, 1:]
    sigma = max(float(np.median(distances)), 1e-12)
    weights = np.exp(-((distances / sigma) ** 2))
    rows = np.repeat(np.arange(n), index.shape[1])
    w = sparse.coo_matrix((weights.ravel(), (rows, index.ravel())), shape=(n, n)).tocsr()
    w = w.maximum(w.T)
    degree = np.asarray(w.sum(axis=1)).ravel()
    inv_sqrt = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1e-12)))
    laplacian = sparse.identity(n) - inv_sqrt @ w @ inv_sqrt
    # Shift-invert around a point just below the spectrum finds the smallest eigenvalues fast.
    # A fixed start vector: ARPACK's random one makes labels differ from run to run.
    start = np.random.default_rng(0).random(n)
    _, vectors = eigsh(laplacian.tocsc(), k=dims, sigma=-1e-3, which="LM", v0=start)
    return (inv_sqrt @ vectors).astype(np.float64)


def inverse_distance_weights(cloud_tree, queries, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(M, k) weights summing to 1 and (M, k) indices of each query's k nearest points: the
    interpolation of per-point values (N, C) at the queries is
    ``np.einsum("mk,mkc->mc", weights, values[index])``."""
    distances, index = cloud_tree.query(queries, k=k, workers=-1)
    distances, index = distances.reshape(len(queries), k), index.reshape(len(queries), k)
    weights = 1.0 / np.maximum(distances, 1e-9)
    return weights / weights.sum(axis=1, keepdims=True), index


def compute_point_features(
    points: np.ndarray,
    normals: np.ndarray,
    query_points: np.ndarray,
    query_normals: np.ndarray,
    config: PartDistillConfig,
    spectral_dims: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the sampled points (N, E) and of query points (M, E), float32, standardised.

    ``spectral_dims`` overrides config.spectral_dims (0 when shapes must share a feature space:
    Laplacian eigenvectors have arbitrary signs and order from one shape to the next).
    """
    dims = config.spectral_dims if spectral_dims is None else spectral_dims
    centre, radius = normalise_to_unit_sphere(points)
    cloud = (points - centre) / radius
    queries = (query_points - centre) / radius
    tree = cKDTree(cloud)

    def descriptors(xyz):  # (M, 7 x scales)
        return np.concatenate(
            [covariance_descriptors(tree, cloud, xyz, k) for k in config.feature_scales], axis=1
        )

    point_descriptors = descriptors(cloud)
    point_parts = [cloud, normals, fourier_features(cloud), point_descriptors]
    spectral = spectral_embedding(tree, cloud, config.knn, dims) if dims > 0 else None
    if spectral is not None:
        point_parts.append(spectral)
    point_features = np.concatenate(point_parts, axis=1)
    mean = point_features.mean(axis=0)
    std = point_features.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)

    # The queries (a million polygons) in blocks, each standardised into the float32 result:
    # their float64 parts at once took 1.3 GB. Every row depends on its own query only.
    interpolated = len(queries) > config.exact_descriptors_max_polygons
    query_features = np.empty((len(queries), point_features.shape[1]), np.float32)
    for start in range(0, len(queries), QUERY_BLOCK):
        block = queries[start : start + QUERY_BLOCK]
        parts = [block, query_normals[start : start + QUERY_BLOCK], fourier_features(block)]
        if interpolated or spectral is not None:
            weights, index = inverse_distance_weights(tree, block, min(3, len(cloud)))
        if interpolated:
            parts.append(np.einsum("mk,mkc->mc", weights, point_descriptors[index]))
        else:
            parts.append(descriptors(block))
        if spectral is not None:
            parts.append(np.einsum("mk,mkc->mc", weights, spectral[index]))
        query_features[start : start + len(block)] = (np.concatenate(parts, axis=1) - mean) / std
    return ((point_features - mean) / std).astype(np.float32), query_features
