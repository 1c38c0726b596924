"""DCN-V2 cross layers (Wang et al., WWW 2021): ``x_{l+1} = x_0 ⊙ (W x_l + b) + x_l``.

Three parameterisations of W: full rank; low rank ``W = U Vᵀ``; and a gated mixture of low-rank
experts with a non-linearity in the low-rank space,
``x_{l+1} = Σ_e G_e(x_l) · x_0 ⊙ (U_e g(C_e g(V_eᵀ x_l)) + b) + x_l``.
The experts are computed together: one matmul projects onto every expert's V, one batched matmul
applies every C, and, because the gate weights sum to one and ``x_0 ⊙`` is linear, the gated sum
over experts is one matmul against the stacked U's — no Python loop over experts.

References:
    R. Wang, R. Shivanna, D. Z. Cheng, S. Jain, D. Lin, L. Hong, E. H. Chi. "DCN V2: Improved Deep &
    Cross Network and Practical Lessons for Web-scale Learning to Rank Systems". WWW 2021
    (arXiv:2008.13535); full rank Eq. (1), low rank Eq. (2), the mixture of low-rank experts Section 5.
    R. Wang, B. Fu, G. Fu, M. Wang. "Deep & Cross Network for Ad Click Predictions". ADKDD 2017.
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
    """Full-rank DCN-V2 cross layer: an explicit, bounded-degree feature interaction.

    ``x_{l+1} = x_0 ⊙ (W x_l + b) + x_l`` with W of shape (d, d). Stacking L layers gives every
    polynomial feature cross up to degree L + 1, the residual keeps the lower degrees. W is
    Xavier-uniform, b zero.

    Args:
        dim: Width d of x0 and of the layer's input and output.

    Example:
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> layer = CrossLayerFull(dim=8)
        >>> x0 = torch.randn(4, 8)
        >>> layer(x0, x0).shape
        torch.Size([4, 8])

    References:
        Wang et al., "DCN V2", WWW 2021, Eq. (1).
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        """One cross step.

        Args:
            x0: The network's input (B, d), the same for every layer of the stack.
            x: The previous layer's output (B, d) (``x0`` for the first layer).

        Returns:
            (B, d): ``x0 ⊙ (W x + b) + x``.
        """
        return torch.addcmul(x, x0, self.linear(x))


class CrossLayerLowRank(nn.Module):
    """Low-rank DCN-V2 cross layer: the full layer with ``W = U Vᵀ``, d·d weights down to 2·d·r.

    ``x_{l+1} = x_0 ⊙ (U (Vᵀ x_l) + b) + x_l``. The paper finds the learned W of the full layer
    numerically low-rank, so a rank r ≪ d keeps the quality at a fraction of the cost.
    ``v.weight`` is Vᵀ (r, d) and ``u.weight`` is U (d, r), so the full-rank equivalent is
    ``W = u.weight @ v.weight``.

    Args:
        dim: Width d of x0 and of the layer's input and output.
        rank: Rank r of U and V.

    Example:
        >>> import torch
        >>> layer = CrossLayerLowRank(dim=16, rank=4)
        >>> x0 = torch.randn(2, 16)
        >>> layer(x0, x0).shape
        torch.Size([2, 16])
        >>> (layer.u.weight @ layer.v.weight).shape  # the full-rank W it stands for
        torch.Size([16, 16])

    References:
        Wang et al., "DCN V2", WWW 2021, Eq. (2) (low-rank DCN).
    """

    def __init__(self, dim: int, rank: int) -> None:
        super().__init__()
        self.v = nn.Linear(dim, rank, bias=False)
        self.u = nn.Linear(rank, dim)
        nn.init.xavier_uniform_(self.v.weight)
        nn.init.xavier_uniform_(self.u.weight)
        nn.init.zeros_(self.u.bias)

    def forward(self, x0: Tensor, x: Tensor) -> Tensor:
        """One cross step.

        Args:
            x0: The network's input (B, d).
            x: The previous layer's output (B, d).

        Returns:
            (B, d): ``x0 ⊙ (U Vᵀ x + b) + x``.
        """
        return torch.addcmul(x, x0, self.u(self.v(x)))


class CrossLayerMixture(nn.Module):
    """Mixture of low-rank cross experts with a softmax gate (DCN-V2's DCN-Mix).

    ``x_{l+1} = Σ_e G_e(x_l) · x_0 ⊙ (U_e g(C_e g(V_eᵀ x_l)) + b) + x_l``: each expert learns its
    interactions in its own low-rank subspace, with a non-linearity g there; the gate G (softmax over
    experts) picks experts per example. All experts run as one matmul, one batched matmul and one
    matmul (see the module docstring).

    Parameters: ``v`` (d, E·r) = the experts' V side by side; ``c`` (E, r, r); ``u`` (E·r, d) = the
    experts' Uᵀ stacked; ``gate`` (d → E); ``bias`` (d,), shared (the gate weights sum to one).

    Args:
        dim: Width d of x0 and of the layer's input and output.
        rank: Rank r of each expert's U, V and C.
        experts: Number of experts E.
        activation: The non-linearity g in the low-rank space (``"identity"`` makes every expert a
            low-rank layer).

    Example:
        >>> import torch
        >>> layer = CrossLayerMixture(dim=16, rank=4, experts=3)
        >>> x0 = torch.randn(5, 16)
        >>> layer(x0, x0).shape
        torch.Size([5, 16])

    References:
        Wang et al., "DCN V2", WWW 2021, Section 5 (DCN-Mix, mixture of low-rank experts).
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
        """One cross step.

        Args:
            x0: The network's input (B, d).
            x: The previous layer's output (B, d).

        Returns:
            (B, d): the gated sum of the experts' crosses plus ``x``.
        """
        B = x.shape[0]
        E, r = self.experts, self.rank
        h = self.act(x @ self.v)  # (B, E*r): every expert's Vᵀx in one matmul
        h = torch.bmm(h.view(B, E, r).transpose(0, 1), self.c)  # (E, B, r): every C_e in one bmm
        g = torch.softmax(self.gate(x), dim=-1)  # (B, E)
        h = self.act(h).transpose(0, 1) * g.unsqueeze(-1)  # (B, E, r), gate applied in the low-rank space
        mixed = h.reshape(B, E * r) @ self.u  # Σ_e g_e U_e h_e in one matmul
        return torch.addcmul(x, x0, mixed + self.bias)


class CrossNetwork(nn.Module):
    """A stack of cross layers of one kind: DCN-V2's cross network.

    ``x_{l+1} = x_0 ⊙ (W_l x_l + b_l) + x_l`` for l = 0 … L-1, with W_l full, low-rank or a mixture of
    low-rank experts. The ranker's DCN backbones put it before (stacked) or beside (parallel) an MLP.

    Args:
        dim: Width d of the input and output.
        layers: Number of cross layers L.
        kind: ``"full"`` (:class:`CrossLayerFull`), ``"low_rank"`` (:class:`CrossLayerLowRank`) or
            ``"mixture"`` (:class:`CrossLayerMixture`).
        rank: Rank r (low_rank and mixture).
        experts: Experts per layer (mixture).
        activation: Low-rank non-linearity (mixture).

    Raises:
        ValueError: On an unknown ``kind``.

    Example:
        >>> import torch
        >>> net = CrossNetwork(dim=16, layers=2, kind="low_rank", rank=4)
        >>> net(torch.randn(3, 16)).shape
        torch.Size([3, 16])
        >>> len(net.layers)
        2

    References:
        Wang et al., "DCN V2", WWW 2021 (arXiv:2008.13535).
    """

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
        """Apply the layers in order, each crossing with the same ``x0``.

        Args:
            x0: Input (B, d).

        Returns:
            (B, d): the last layer's output.
        """
        x = x0
        for layer in self.layers:
            x = layer(x0, x)
        return x
