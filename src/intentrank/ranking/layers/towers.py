"""Task towers (one small MLP + scalar output per task, batched) and the shallow bias tower."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from intentrank.ranking.layers.mlp import BatchedMLP


class TaskTowers(nn.Module):
    """``n`` task towers evaluated together: input (B, d) shared or (n, B, d); output (n, B) logits."""

    def __init__(
        self, n: int, in_dim: int, hidden: Sequence[int], dropout: float = 0.0, batch_norm: bool = False
    ) -> None:
        super().__init__()
        self.net = BatchedMLP(n, in_dim, [*hidden, 1], dropout, last_activation=False, batch_norm=batch_norm)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)

    def output_bias(self, task: int) -> Tensor:
        """The final bias of one task (e.g. to start a regression head at the label mean)."""
        return self.net.biases[-1][task]


class ShallowTower(nn.Module):
    """The bias tower of the shallow-tower debiasing method: dense inputs (B, k) → one logit (B,).

    One dense layer (``hidden`` units, ReLU, dropout) and a linear output; ``hidden=0`` is a single
    linear layer. The ranker adds its logit to every head in training and zeroes its inputs at serving.
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
        return self.net(x).squeeze(-1)
