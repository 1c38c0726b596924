"""Backbones: map the input vector x0 (B, d) to what the task towers read.

- ``dcn_stacked``: cross network, then the deep MLP on its output.
- ``dcn_parallel``: cross network and deep MLP side by side on x0, outputs concatenated.
- ``mmoe``: shared experts with one softmax gate per task (per-task inputs to the towers).

References:
    R. Wang et al., "DCN V2: Improved Deep & Cross Network and Practical Lessons for Web-scale Learning
    to Rank Systems", WWW 2021 (the stacked and parallel structures).
    J. Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
    Mixture-of-Experts", KDD 2018.
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
    """DCN-V2 stacked: ``MLP(CrossNetwork(x0))``, input (B, d) → (B, H = last MLP width).

    Args:
        in_dim: Width d of x0.
        cfg: ``cfg.cross`` (layers, kind, rank, experts, activation), ``cfg.mlp_hidden``, dropout,
            batch norm.

    Example:
        >>> import torch
        >>> from intentrank.ranking.config import ModelConfig
        >>> bb = DCNStacked(16, ModelConfig(mlp_hidden=[32, 8]))
        >>> bb(torch.randn(4, 16)).shape, bb.out_dim
        (torch.Size([4, 8]), 8)

    References:
        Wang et al., "DCN V2", WWW 2021.
    """

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.cross
        self.cross = CrossNetwork(in_dim, c.layers, c.kind, c.rank, c.experts, c.activation)
        self.deep = MLP(in_dim, cfg.mlp_hidden, cfg.dropout, cfg.batch_norm)
        self.out_dim = self.deep.out_dim

    def forward(self, x0: Tensor) -> Tensor:
        """(B, d) → (B, H)."""
        return self.deep(self.cross(x0))


class DCNParallel(Backbone):
    """DCN-V2 parallel: ``[CrossNetwork(x0), MLP(x0)]``, input (B, d) → (B, d + last MLP width).

    Args:
        in_dim: Width d of x0.
        cfg: As :class:`DCNStacked`.

    Example:
        >>> import torch
        >>> from intentrank.ranking.config import ModelConfig
        >>> bb = DCNParallel(16, ModelConfig(mlp_hidden=[32, 8]))
        >>> bb(torch.randn(4, 16)).shape
        torch.Size([4, 24])

    References:
        Wang et al., "DCN V2", WWW 2021.
    """

    def __init__(self, in_dim: int, cfg: ModelConfig) -> None:
        super().__init__()
        c = cfg.cross
        self.cross = CrossNetwork(in_dim, c.layers, c.kind, c.rank, c.experts, c.activation)
        self.deep = MLP(in_dim, cfg.mlp_hidden, cfg.dropout, cfg.batch_norm)
        self.out_dim = in_dim + self.deep.out_dim

    def forward(self, x0: Tensor) -> Tensor:
        """(B, d) → (B, d + H)."""
        return torch.cat([self.cross(x0), self.deep(x0)], dim=1)


class MMoEBackbone(Backbone):
    """MMoE backbone: per-task gated mixtures (T, B, h); ``encode`` = all expert outputs flattened (B, E·h).

    Args:
        in_dim: Width d of x0.
        cfg: ``cfg.mmoe`` (experts, expert_hidden), dropout, batch norm.
        tasks: Number of tasks T (one gate each).

    Example:
        >>> import torch
        >>> from intentrank.ranking.config import ModelConfig
        >>> bb = MMoEBackbone(16, ModelConfig(mmoe={"experts": 4, "expert_hidden": [8]}), tasks=3)
        >>> x0 = torch.randn(5, 16)
        >>> bb(x0).shape, bb.encode(x0).shape
        (torch.Size([3, 5, 8]), torch.Size([5, 32]))

    References:
        Ma et al., "Multi-gate Mixture-of-Experts", KDD 2018.
    """

    per_task = True

    def __init__(self, in_dim: int, cfg: ModelConfig, tasks: int) -> None:
        super().__init__()
        self.mmoe = MMoE(in_dim, cfg.mmoe.experts, cfg.mmoe.expert_hidden, tasks, cfg.dropout, cfg.batch_norm)
        self.out_dim = self.mmoe.out_dim

    def forward(self, x0: Tensor) -> Tensor:
        """(B, d) → (T, B, h)."""
        return self.mmoe(x0)

    def encode(self, x0: Tensor) -> Tensor:
        """(B, d) → (B, E·h): every expert's output, before gating."""
        return self.mmoe.expert_outputs(x0).flatten(1)

    @property
    def encode_dim(self) -> int:
        """Width of :meth:`encode`'s output (experts × expert width)."""
        return self.mmoe.n_experts * self.out_dim


def build_backbone(in_dim: int, cfg: ModelConfig, tasks: int) -> Backbone:
    """The backbone named by ``cfg.backbone``.

    Args:
        in_dim: Width d of x0.
        cfg: Model settings; ``cfg.backbone`` is ``dcn_stacked``, ``dcn_parallel`` or ``mmoe``.
        tasks: Number of tasks (used by MMoE's gates).

    Returns:
        A :class:`Backbone`; ``per_task`` says whether it returns (T, B, H) instead of (B, H).

    Example:
        >>> from intentrank.ranking.config import ModelConfig
        >>> build_backbone(16, ModelConfig(backbone="mmoe"), tasks=2).per_task
        True
    """
    if cfg.backbone == "dcn_stacked":
        return DCNStacked(in_dim, cfg)
    if cfg.backbone == "dcn_parallel":
        return DCNParallel(in_dim, cfg)
    if cfg.backbone == "mmoe":
        return MMoEBackbone(in_dim, cfg, tasks)
    raise ValueError(f"unknown backbone {cfg.backbone!r}")
