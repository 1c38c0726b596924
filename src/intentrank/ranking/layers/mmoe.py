"""Multi-gate Mixture-of-Experts (Ma et al., KDD 2018): shared expert MLPs, one softmax gate per task.

Experts are a :class:`BatchedMLP` (all experts in one matmul per layer) and the gates are one linear
layer producing every task's expert logits, so there is no Python loop over experts or tasks.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from intentrank.ranking.layers.mlp import BatchedMLP


class MMoE(nn.Module):
    """Input (B, d) → per-task mixtures (T, B, h); ``expert_outputs`` gives (B, E, h)."""

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
        """(B, E, h): every expert's output."""
        return self.experts(x).transpose(0, 1)

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        ex = self.experts(x)  # (E, B, h)
        g = torch.softmax(self.gates(x).view(B, self.n_tasks, self.n_experts), dim=-1)  # (B, T, E)
        # Σ_e g[b, t, e] · ex[e, b, :] as a broadcast multiply-sum over the (few) experts: a batched
        # matmul here would be B tiny (T×E)·(E×h) products, which CPUs run far below GEMM speed
        gt = g.permute(1, 2, 0).unsqueeze(-1)  # (T, E, B, 1)
        return (gt * ex.unsqueeze(0)).sum(dim=1)  # (T, B, h)
