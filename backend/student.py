"""The 3D student: an optional learnable point encoder and the 4-layer distillation head.

Plain torch only (kNN by cdist + topk), so the same code runs on CPU, CUDA and MPS.
"""

from __future__ import annotations

import torch
from torch import nn

QUERY_BLOCK = 65536  # query points per pass of the head (a million polygons come in blocks)


class DistillationHead(nn.Module):
    """Paper Sec. 3.5: an MLP of ``layers`` linear layers with ReLU, features -> part logits."""

    def __init__(self, in_features: int, num_parts: int, hidden: int = 256, layers: int = 4):
        super().__init__()
        sizes = [in_features] + [hidden] * (layers - 1)
        blocks = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            blocks += [nn.Linear(a, b), nn.ReLU(inplace=True)]
        blocks.append(nn.Linear(sizes[-1], num_parts))
        self.mlp = nn.Sequential(*blocks)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)  # (..., E) -> (..., R)


def knn_indices(points: torch.Tensor, k: int) -> torch.Tensor:
    """(N, 3) -> (N, k) indices of each point's k nearest neighbours (itself included)."""
    distances = torch.cdist(points, points)
    return distances.topk(min(k, len(points)), largest=False).indices


class EdgeConv(nn.Module):
    """max over neighbours j of MLP([x_i, x_j - x_i]) (DGCNN's edge convolution)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.mlp = nn.Sequential(
            nn.Linear(2 * in_channels, out_channels),
            nn.LayerNorm(out_channels),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        # x (N, C), neighbours (N, k) -> (N, out)
        centre = x.unsqueeze(1).expand(-1, neighbours.shape[1], -1)
        edges = torch.cat([centre, x[neighbours] - centre], dim=-1)  # (N, k, 2C)
        return self.mlp(edges).max(dim=1).values


class EdgeConvEncoder(nn.Module):
    """A learnable encoder with local geometric context: 3 EdgeConv layers (64-64-128).

    Its output is concatenated with its input so the head keeps the fixed features too.
    """

    def __init__(self, in_features: int, channels: tuple = (64, 64, 128)):
        super().__init__()
        sizes = (in_features, *channels)
        self.layers = nn.ModuleList(
            EdgeConv(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        )
        self.out_features = in_features + sum(channels)

    def forward(self, features: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
        # features (N, E), neighbours (N, k) -> (N, E + 256)
        outputs, x = [features], features
        for layer in self.layers:
            x = layer(x, neighbours)
            outputs.append(x)
        return torch.cat(outputs, dim=-1)


class Student(nn.Module):
    """Optional learnable encoder + distillation head, applied to one shape at a time.

    Without the encoder the head reads the shape's fixed features (test-time alignment, the
    paper's frozen encoder); with it, EdgeConv layers over the points' kNN graph come first.
    """

    def __init__(self, in_features: int, num_parts: int, edgeconv: bool, hidden: int, layers: int):
        super().__init__()
        self.encoder = EdgeConvEncoder(in_features) if edgeconv else None
        width = self.encoder.out_features if self.encoder else in_features
        self.head = DistillationHead(width, num_parts, hidden, layers)

    def point_logits(
        self, features: torch.Tensor, neighbours: torch.Tensor | None = None
    ) -> torch.Tensor:
        """features (N, E) of the points, neighbours (N, k) with the encoder -> logits (N, R)."""
        if self.encoder is not None:
            features = self.encoder(features, neighbours)
        return self.head(features)

    def query_logits(
        self,
        query_features: torch.Tensor,
        features: torch.Tensor,
        neighbours: torch.Tensor | None = None,
        query_index: torch.Tensor | None = None,
        query_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (P, R) at query points (polygon centroids) with features (P, E).

        With the encoder, a query point has no neighbours of its own in the point graph: it
        takes the encoded features of its 3 nearest points, ``query_index`` (P, 3), weighted by
        ``query_weight`` (P, 3), beside its own fixed features.
        """
        encoded = None
        if self.encoder is not None:
            encoded = self.encoder(features, neighbours)[:, query_features.shape[1] :]
        # In blocks: the head's (P, hidden) activations of a million polygons take 1 GB each.
        blocks = []
        for start in range(0, len(query_features), QUERY_BLOCK):
            block = query_features[start : start + QUERY_BLOCK]
            if encoded is not None:
                nearest = encoded[query_index[start : start + QUERY_BLOCK]]  # (B, 3, C)
                weight = query_weight[start : start + QUERY_BLOCK].unsqueeze(-1)
                block = torch.cat([block, (weight * nearest).sum(1)], dim=1)
            blocks.append(self.head(block))
        if not blocks:
            return self.head(query_features)  # (0, R)
        return torch.cat(blocks)
