"""All categorical features in one embedding table, addressed with per-feature offsets.

One gather for every feature instead of one ``nn.Embedding`` call per feature; with ``sparse=True``
the backward pass touches only the rows in the batch (use a sparse-aware optimiser such as SparseAdam).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class FusedEmbedding(nn.Module):
    """ids (B, F) of per-feature bucket indices → (B, F·dim) concatenated embeddings."""

    def __init__(
        self, buckets: Sequence[int], dim: int, sparse: bool = False, init_std: float = 0.05
    ) -> None:
        super().__init__()
        sizes = torch.tensor([0, *buckets], dtype=torch.long)
        self.register_buffer("offsets", torch.cumsum(sizes, 0)[:-1].clone(), persistent=False)
        self.table = nn.Embedding(int(sizes.sum()), dim, sparse=sparse)
        nn.init.normal_(self.table.weight, std=init_std)
        self.n_features, self.dim = len(buckets), dim
        self.out_dim = len(buckets) * dim

    def forward(self, ids: Tensor) -> Tensor:
        return self.table(ids + self.offsets).view(ids.shape[0], self.out_dim)
