"""Plain and batched multi-layer perceptrons (ReLU, optional dropout)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class MLP(nn.Sequential):
    """Linear → (BatchNorm) → ReLU → Dropout blocks, the deep part of DCN-V2; no output layer.

    ``out_dim`` is the last hidden size (``in_dim`` when ``hidden`` is empty: the identity).

    Args:
        in_dim: Input width.
        hidden: Width of each block, in order.
        dropout: Dropout after each activation (0 = none).
        batch_norm: BatchNorm1d between each linear layer and its ReLU.

    Shape:
        Input (B, in_dim); output (B, out_dim).

    Example:
        >>> import torch
        >>> mlp = MLP(8, [16, 4], dropout=0.1)
        >>> mlp(torch.randn(3, 8)).shape, mlp.out_dim
        (torch.Size([3, 4]), 4)
    """

    def __init__(
        self, in_dim: int, hidden: Sequence[int], dropout: float = 0.0, batch_norm: bool = False
    ) -> None:
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers.append(nn.Linear(d, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        super().__init__(*layers)
        self.out_dim = d


class BatchedMLP(nn.Module):
    """``n`` independent MLPs of the same shape evaluated together with batched matmuls.

    Used for MMoE's experts and the task towers: n small MLPs in a Python loop would be n tiny GEMMs
    per layer; here a shared input is one matmul against the n weight matrices side by side, and
    separate inputs are one ``baddbmm``. ``out_dim`` = last entry of ``sizes``. With ``batch_norm``,
    every activated layer is batch-normalised per MLP and channel (one ``BatchNorm1d`` over the n·out
    channels). Weights and biases are uniform(±1/√fan_in), as ``nn.Linear``.

    Args:
        n: Number of MLPs.
        in_dim: Input width of each.
        sizes: Output width of each layer (at least one).
        dropout: Dropout after each activation (0 = none).
        last_activation: ReLU (and dropout, batch norm) after the last layer too; ``False`` for
            output layers (logits).
        batch_norm: Batch-normalise every activated layer.

    Raises:
        ValueError: If ``sizes`` is empty.

    Example:
        >>> import torch
        >>> mlps = BatchedMLP(n=3, in_dim=8, sizes=[16, 4])
        >>> mlps(torch.randn(5, 8)).shape  # one input shared by the 3 MLPs
        torch.Size([3, 5, 4])
        >>> mlps(torch.randn(3, 5, 8)).shape  # one input each
        torch.Size([3, 5, 4])
    """

    def __init__(
        self,
        n: int,
        in_dim: int,
        sizes: Sequence[int],
        dropout: float = 0.0,
        last_activation: bool = True,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        if not sizes:
            raise ValueError("BatchedMLP needs at least one layer size")
        self.n, self.sizes, self.last_activation = n, list(sizes), last_activation
        dims = [in_dim, *sizes]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in itertools.pairwise(dims):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(n, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n, 1, b).uniform_(-bound, bound)))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.out_dim = dims[-1]
        n_act = len(sizes) if last_activation else len(sizes) - 1
        self.norms = nn.ModuleList(nn.BatchNorm1d(n * sizes[i]) for i in range(n_act)) if batch_norm else None

    def forward(self, x: Tensor) -> Tensor:
        """Run the n MLPs.

        Args:
            x: (B, in_dim), shared by all MLPs, or (n, B, in_dim), one input each.

        Returns:
            (n, B, out_dim): MLP i's output in row i.
        """
        n = self.n
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if x.dim() == 2:  # shared input: one (B, in) @ (in, n*out) matmul
                B = x.shape[0]
                out = w.shape[2]
                x = (x @ w.permute(1, 0, 2).reshape(w.shape[1], n * out)).view(B, n, out).transpose(0, 1) + b
            else:
                x = torch.baddbmm(b, x, w)
            if i < last or self.last_activation:
                if self.norms is not None:
                    B, out = x.shape[1], x.shape[2]
                    x = self.norms[i](x.transpose(0, 1).reshape(B, n * out)).view(B, n, out).transpose(0, 1)
                x = self.dropout(torch.relu(x))
        return x
