"""Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): shared expert MLPs, one softmax gate per task.

Experts are a :class:`BatchedMLP` (all experts in one matmul per layer) and the gates are one linear
layer producing every task's expert logits, so there is no Python loop over experts or tasks.

References:
    J. Ma, Z. Zhao, X. Yi, J. Chen, L. Hong, E. H. Chi. "Modeling Task Relationships in Multi-task
    Learning with Multi-gate Mixture-of-Experts". KDD 2018.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from intentrank.ranking.layers.mlp import BatchedMLP


class MMoE(nn.Module):
    """Multi-gate Mixture-of-Experts: E shared expert MLPs, one softmax gate per task.

    ``y_t = Σ_e softmax(W_t x)_e · f_e(x)`` for each task t. Unlike a shared bottom, each task weighs
    the experts its own way, so weakly related tasks hurt each other less. Input (B, d) → per-task
    mixtures (T, B, h) for the task towers; ``expert_outputs`` gives (B, E, h).

    Args:
        in_dim: Input width d.
        experts: Number of experts E.
        expert_hidden: Layer widths of each expert MLP (h = the last).
        tasks: Number of tasks T (one gate each).
        dropout: Dropout inside the experts.
        batch_norm: Batch-normalise the experts' layers.

    Example:
        >>> import torch
        >>> mmoe = MMoE(in_dim=8, experts=4, expert_hidden=[16], tasks=2)
        >>> x = torch.randn(5, 8)
        >>> mmoe(x).shape
        torch.Size([2, 5, 16])
        >>> mmoe.expert_outputs(x).shape
        torch.Size([5, 4, 16])

    References:
        Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
        Mixture-of-Experts", KDD 2018.
    """

    def __init__(
        self,
        in_dim: int,
        experts: int,
        expert_hidden: Sequence[int],
        tasks: int,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.n_experts, self.n_tasks = experts, tasks
        self.experts = BatchedMLP(experts, in_dim, expert_hidden, dropout, batch_norm=batch_norm)
        self.gates = nn.Linear(in_dim, tasks * experts)
        self.out_dim = self.experts.out_dim

    def expert_outputs(self, x: Tensor) -> Tensor:
        """Every expert's output, before gating.

        Args:
            x: Input (B, d).

        Returns:
            (B, E, h).
        """
        return self.experts(x).transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Per-task gated mixtures of the experts.

        Args:
            x: Input (B, d).

        Returns:
            (T, B, h): task t's mixture in row t.
        """
        B = x.shape[0]
        ex = self.experts(x)  # (E, B, h)
        g = torch.softmax(self.gates(x).view(B, self.n_tasks, self.n_experts), dim=-1)  # (B, T, E)
        # Σ_e g[b, t, e] · ex[e, b, :] as a broadcast multiply-sum over the (few) experts: a batched
        # matmul here would be B tiny (T×E)·(E×h) products, which CPUs run far below GEMM speed
        gt = g.permute(1, 2, 0).unsqueeze(-1)  # (T, E, B, 1)
        return (gt * ex.unsqueeze(0)).sum(dim=1)  # (T, B, h)
