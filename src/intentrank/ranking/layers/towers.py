"""Task towers (one small MLP + scalar output per task, batched) and the shallow bias tower."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from intentrank.ranking.layers.mlp import BatchedMLP


class TaskTowers(nn.Module):
    """``n`` task towers (small MLP + scalar output each) evaluated together as one :class:`BatchedMLP`.

    Each task reads the shared representation (DCN backbones) or its own (MMoE's per-task mixtures)
    and returns one logit (or regression output) per example.

    Args:
        n: Number of tasks.
        in_dim: Input width d.
        hidden: Hidden widths of each tower (the scalar output layer is added).
        dropout: Dropout after each hidden layer.
        batch_norm: Batch-normalise the hidden layers.

    Example:
        >>> import torch
        >>> towers = TaskTowers(n=3, in_dim=8, hidden=[4])
        >>> towers(torch.randn(5, 8)).shape
        torch.Size([3, 5])
        >>> towers(torch.randn(3, 5, 8)).shape
        torch.Size([3, 5])
    """

    def __init__(
        self, n: int, in_dim: int, hidden: Sequence[int], dropout: float = 0.0, batch_norm: bool = False
    ) -> None:
        super().__init__()
        self.net = BatchedMLP(n, in_dim, [*hidden, 1], dropout, last_activation=False, batch_norm=batch_norm)

    def forward(self, x: Tensor) -> Tensor:
        """The towers' outputs.

        Args:
            x: (B, d) shared by all towers, or (n, B, d) one input each.

        Returns:
            (n, B): task i's logit (or regression output) in row i.
        """
        return self.net(x).squeeze(-1)

    def output_bias(self, task: int) -> Tensor:
        """The final bias of one task (e.g. to start a regression head at the label mean)."""
        return self.net.biases[-1][task]


class ShallowTower(nn.Module):
    """The bias tower of the shallow-tower debiasing method: dense inputs (B, k) → one logit (B,).

    One dense layer (``hidden`` units, ReLU, dropout) and a linear output; ``hidden=0`` is a single
    linear layer. The ranker adds its logit to every head in training and zeroes its inputs at serving,
    so the bias signal (e.g. a title's clickbait score) explains clicks in training without steering
    the served ranking.

    Args:
        in_features: Number k of bias inputs.
        hidden: Hidden units (0 = linear).
        dropout: Dropout (before the output layer, or on the inputs when ``hidden=0``).

    Example:
        >>> import torch
        >>> tower = ShallowTower(in_features=1, hidden=8)
        >>> tower(torch.rand(6, 1)).shape
        torch.Size([6])

    References:
        "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz), the shallow-tower method,
        after the position-bias shallow tower of Z. Zhao et al., "Recommending What Video to Watch
        Next: A Multitask Ranking System", RecSys 2019.
    """

    def __init__(self, in_features: int, hidden: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        if hidden > 0:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, 1)
            )
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, 1))

    def forward(self, x: Tensor) -> Tensor:
        """The bias logit.

        Args:
            x: Bias inputs (B, k).

        Returns:
            (B,) logits.
        """
        return self.net(x).squeeze(-1)
