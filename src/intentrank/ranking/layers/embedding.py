"""All categorical features in one embedding table, addressed with per-feature offsets.

One gather for every feature instead of one ``nn.Embedding`` call per feature; with ``sparse=True``
the backward pass touches only the rows in the batch (use a sparse-aware optimiser such as SparseAdam).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class FusedEmbedding(nn.Module):
    """All categorical features' embeddings in one table: ids (B, F) → (B, F·dim), concatenated.

    Feature f's rows start at ``offsets[f] = Σ_{g<f} buckets[g]``, so one ``nn.Embedding`` gather
    serves every feature. Rows are initialised N(0, ``init_std``²).

    Args:
        buckets: Rows of each feature's sub-table (F entries).
        dim: Embedding width of every feature.
        sparse: Sparse gradients (only the batch's rows; needs a sparse-aware optimiser).
        init_std: Standard deviation of the initial rows.

    Example:
        >>> import torch
        >>> emb = FusedEmbedding(buckets=[10, 3], dim=4)
        >>> ids = torch.tensor([[9, 0], [1, 2]])  # feature 0 in 0..9, feature 1 in 0..2
        >>> emb(ids).shape
        torch.Size([2, 8])
        >>> bool((emb(ids)[0, 4:] == emb.table.weight[10]).all())  # feature 1, id 0 is row 10
        True
    """

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
        """Look up and concatenate.

        Args:
            ids: Long tensor (B, F) of per-feature bucket indices (feature f's in ``0..buckets[f]-1``).

        Returns:
            (B, F·dim): feature 0's embedding, then feature 1's, ...
        """
        return self.table(ids + self.offsets).view(ids.shape[0], self.out_dim)


class TextEmbedding(nn.Module):
    """Text features as the mean of their n-gram embeddings: packed ids (B, ΣL) → (B, T·dim).

    Text feature t owns columns ``[Σ_{s<t} L_s, Σ_{s≤t} L_s)`` of the packed ids and its own
    ``nn.EmbeddingBag`` (mode mean over the non-padding ids; row 0 = padding, never read; an
    all-padding text gives zeros), a small learned content encoder over hashed word and character
    n-grams.

    Args:
        buckets: Rows of each text feature's table (row 0 is padding).
        lengths: Token columns L of each text feature.
        dim: Embedding width.
        sparse: Sparse gradients (only the batch's rows).
        init_std: Standard deviation of the initial rows.

    Example:
        >>> import torch
        >>> emb = TextEmbedding(buckets=[100], lengths=[4], dim=3)
        >>> ids = torch.tensor([[5, 7, 0, 0], [0, 0, 0, 0]])
        >>> out = emb(ids)
        >>> out.shape, bool(torch.allclose(out[0], emb.bags[0].weight[[5, 7]].mean(0)))
        (torch.Size([2, 3]), True)
        >>> bool((out[1] == 0).all())  # an all-padding text
        True
    """

    def __init__(
        self, buckets: Sequence[int], lengths: Sequence[int], dim: int, sparse: bool = False,
        init_std: float = 0.05,
    ) -> None:  # fmt: skip
        super().__init__()
        self.bags = nn.ModuleList(
            nn.EmbeddingBag(b, dim, mode="mean", sparse=sparse) for b in buckets
        )
        for bag in self.bags:
            nn.init.normal_(bag.weight, std=init_std)
            with torch.no_grad():
                bag.weight[0].zero_()
        self.bounds = [0, *torch.cumsum(torch.tensor(list(lengths)), 0).tolist()]
        self.out_dim = len(self.bags) * dim

    def forward(self, ids: Tensor) -> Tensor:
        """(B, ΣL) long n-gram ids (0 = padding) → (B, T·dim) mean embeddings, feature 0's first."""
        parts = []
        for i, bag in enumerate(self.bags):
            # padding dropped before the lookup (1-D ids + offsets): ~5x faster backward than a padded
            # (B, L) bag on CPU; an empty bag gives zeros
            x = ids[:, self.bounds[i] : self.bounds[i + 1]]
            real = x > 0
            counts = real.sum(1)
            offsets = torch.cumsum(counts, 0) - counts
            parts.append(bag(x[real], offsets))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
