"""Backbones: map the input vector x0 (B, d) to what the task towers read.

- ``dcn_stacked``: cross network, then the deep MLP on its output.
- ``dcn_parallel``: cross network and deep MLP side by side on x0, outputs concatenated.
- ``mmoe``: shared experts with one softmax gate per task (per-task inputs to the towers).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from intentrank.ranking.config import ModelConfig
from intentrank.ranking.layers.cross import CrossNetwork
from intentrank.ranking.layers.mlp import MLP
from intentrank.ranking.layers.mmoe import MMoE


class Backbone(nn.Module):
    """Common interface: ``forward(x0)`` → (B, H) shared or (T, B, H) per task; ``encode(x0)`` → (B, H')."""

    out_dim: int
    per_task: bool = False

    @property
    def encode_dim(self) -> int:
        """Width of :meth:`encode`'s output."""
        return self.out_dim

    def encode(self, x0: Tensor) -> Tensor:
        """The shared representation the heads read."""
        return self(x0)


class DCNStacked(Backbone):
    """Cross network followed by an MLP."""

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.cross
        self.cross = CrossNetwork(in_dim, c.layers, c.kind, c.rank, c.experts, c.activation)
        self.deep = MLP(in_dim, cfg.mlp_hidden, cfg.dropout, cfg.batch_norm)
        self.out_dim = self.deep.out_dim

    def forward(self, x0: Tensor) -> Tensor:
        return self.deep(self.cross(x0))


class DCNParallel(Backbone):
    """Cross network and MLP side by side, concatenated."""

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.cross
        self.cross = CrossNetwork(in_dim, c.layers, c.kind, c.rank, c.experts, c.activation)
        self.deep = MLP(in_dim, cfg.mlp_hidden, cfg.dropout, cfg.batch_norm)
        self.out_dim = in_dim + self.deep.out_dim

    def forward(self, x0: Tensor) -> Tensor:
        return torch.cat([self.cross(x0), self.deep(x0)], dim=1)


class MMoEBackbone(Backbone):
    """MMoE: per-task gated mixtures (T, B, h); ``encode`` = all expert outputs flattened (B, E·h)."""

    per_task = True

    def __init__(self, in_dim: int, cfg: ModelConfig, tasks: int) -> None:
        super().__init__()
        self.mmoe = MMoE(in_dim, cfg.mmoe.experts, cfg.mmoe.expert_hidden, tasks, cfg.dropout, cfg.batch_norm)
        self.out_dim = self.mmoe.out_dim

    def forward(self, x0: Tensor) -> Tensor:
        return self.mmoe(x0)

    def encode(self, x0: Tensor) -> Tensor:
        return self.mmoe.expert_outputs(x0).flatten(1)

    @property
    def encode_dim(self) -> int:
        """Width of :meth:`encode`'s output (experts × expert width)."""
        return self.mmoe.n_experts * self.out_dim


def build_backbone(in_dim: int, cfg: ModelConfig, tasks: int) -> Backbone:
    """The backbone named by ``cfg.backbone``."""
    if cfg.backbone == "dcn_stacked":
        return DCNStacked(in_dim, cfg)
    if cfg.backbone == "dcn_parallel":
        return DCNParallel(in_dim, cfg)
    if cfg.backbone == "mmoe":
        return MMoEBackbone(in_dim, cfg, tasks)
    raise ValueError(f"unknown backbone {cfg.backbone!r}")
