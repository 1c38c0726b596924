"""DCN-V2 cross layers (Wang et al., WWW 2021): ``x_{l+1} = x_0 ⊙ (W x_l + b) + x_l``.

Three parameterisations of W: full rank; low rank ``W = U Vᵀ``; and a gated mixture of low-rank
experts with a non-linearity in the low-rank space,
``x_{l+1} = Σ_e G_e(x_l) · x_0 ⊙ (U_e g(C_e g(V_eᵀ x_l)) + b) + x_l``.
The experts are computed together: one matmul projects onto every expert's V, one batched matmul
applies every C, and, because the gate weights sum to one and ``x_0 ⊙`` is linear, the gated sum
over experts is one matmul against the stacked U's — no Python loop over experts.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

Activation = Literal["identity", "tanh", "relu"]


def _activation(name: Activation) -> nn.Module:
    return {"identity": nn.Identity, "tanh": nn.Tanh, "relu": nn.ReLU}[name]()


class CrossLayerFull(nn.Module):
    """Full-rank cross layer: ``x0 * (W x + b) + x`` with W of shape (d, d)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        return torch.addcmul(x, x0, self.linear(x))


class CrossLayerLowRank(nn.Module):
    """Low-rank cross layer: ``x0 * (U (Vᵀ x) + b) + x``.

    ``v.weight`` is Vᵀ (r, d) and ``u.weight`` is U (d, r), so the full-rank equivalent is
    ``W = u.weight @ v.weight``.
    """

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.v = nn.Linear(dim, rank, bias=False)
        self.u = nn.Linear(rank, dim)
        nn.init.xavier_uniform_(self.v.weight)
        nn.init.xavier_uniform_(self.u.weight)
        nn.init.zeros_(self.u.bias)

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        return torch.addcmul(x, x0, self.u(self.v(x)))


class CrossLayerMixture(nn.Module):
    """Mixture of ``experts`` low-rank cross experts with a softmax gate (DCN-V2's DCN-Mix).

    Parameters: ``v`` (d, E·r) = the experts' V side by side; ``c`` (E, r, r); ``u`` (E·r, d) = the
    experts' Uᵀ stacked; ``gate`` (d → E); ``bias`` (d,), shared (the gate weights sum to one).
    """

    def __init__(self, dim: int, rank: int, experts: int, activation: Activation = "tanh") -> None:
        super().__init__()
        self.dim, self.rank, self.experts = dim, rank, experts
        self.v = nn.Parameter(torch.empty(dim, experts * rank))
        self.c = nn.Parameter(torch.empty(experts, rank, rank))
        self.u = nn.Parameter(torch.empty(experts * rank, dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.gate = nn.Linear(dim, experts, bias=False)
        self.act = _activation(activation)
        bound_v = math.sqrt(6.0 / (dim + rank))
        nn.init.uniform_(self.v, -bound_v, bound_v)
        nn.init.uniform_(self.u, -bound_v, bound_v)
        nn.init.uniform_(self.c, -math.sqrt(3.0 / rank), math.sqrt(3.0 / rank))

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        B = x.shape[0]
        E, r = self.experts, self.rank
        h = self.act(x @ self.v)  # (B, E*r): every expert's Vᵀx in one matmul
        h = torch.bmm(h.view(B, E, r).transpose(0, 1), self.c)  # (E, B, r): every C_e in one bmm
        g = torch.softmax(self.gate(x), dim=-1)  # (B, E)
        h = self.act(h).transpose(0, 1) * g.unsqueeze(-1)  # (B, E, r), gate applied in the low-rank space
        mixed = h.reshape(B, E * r) @ self.u  # Σ_e g_e U_e h_e in one matmul
        return torch.addcmul(x, x0, mixed + self.bias)


class CrossNetwork(nn.Module):
    """A stack of cross layers of one kind; input and output (B, d)."""

    def __init__(
        self,
        dim: int,
        layers: int,
        kind: Literal["full", "low_rank", "mixture"] = "mixture",
        rank: int = 32,
        experts: int = 4,
        activation: Activation = "tanh",
    ) -> None:
        super().__init__()
        if kind == "full":
            mods = [CrossLayerFull(dim) for _ in range(layers)]
        elif kind == "low_rank":
            mods = [CrossLayerLowRank(dim, rank) for _ in range(layers)]
        elif kind == "mixture":
            mods = [CrossLayerMixture(dim, rank, experts, activation) for _ in range(layers)]
        else:
            raise ValueError(f"unknown cross kind {kind!r}; choose full, low_rank or mixture")
        self.layers = nn.ModuleList(mods)

    def forward(self, x0: Tensor) -> Tensor:
        x = x0
        for layer in self.layers:
            x = layer(x0, x)
        return x
