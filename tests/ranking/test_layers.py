"""Unit properties of the cross layers, MMoE, towers and embeddings."""

from __future__ import annotations

import torch
from torch import nn

from intentrank.ranking.layers import (
    BatchedMLP,
    CrossLayerFull,
    CrossLayerLowRank,
    CrossLayerMixture,
    CrossNetwork,
    FusedEmbedding,
    MMoE,
    ShallowTower,
    TaskTowers,
)

torch.manual_seed(0)


def test_low_rank_with_full_rank_equals_full_layer_with_matrix_uv() -> None:
    d = 12
    low = CrossLayerLowRank(d, rank=d)
    nn.init.normal_(low.u.bias)
    full = CrossLayerFull(d)
    with torch.no_grad():
        full.linear.weight.copy_(low.u.weight @ low.v.weight)  # W = U Vᵀ
        full.linear.bias.copy_(low.u.bias)
    x0, x = torch.randn(7, d), torch.randn(7, d)
    torch.testing.assert_close(low(x0, x), full(x0, x), rtol=1e-5, atol=1e-5)
    # a different matrix gives a different layer (the test can fail)
    with torch.no_grad():
        full.linear.weight.add_(0.1)
    assert not torch.allclose(low(x0, x), full(x0, x), atol=1e-4)


def test_one_expert_mixture_with_identity_activation_equals_low_rank() -> None:
    d, r = 10, 4
    mix = CrossLayerMixture(d, rank=r, experts=1, activation="identity")
    low = CrossLayerLowRank(d, rank=r)
    with torch.no_grad():
        mix.c.copy_(torch.eye(r).unsqueeze(0))
        mix.bias.normal_()
        low.v.weight.copy_(mix.v.T)  # Vᵀ
        low.u.weight.copy_(mix.u.T)  # U
        low.u.bias.copy_(mix.bias)
    x0, x = torch.randn(9, d), torch.randn(9, d)
    torch.testing.assert_close(mix(x0, x), low(x0, x), rtol=1e-5, atol=1e-5)


def test_mixture_matches_per_expert_reference() -> None:
    """The vectorised mixture equals the textbook loop Σ_e G_e · x0 ⊙ (U_e g(C_e g(V_eᵀ x)) + b) + x."""
    d, r, E = 8, 3, 5
    mix = CrossLayerMixture(d, rank=r, experts=E, activation="tanh")
    with torch.no_grad():
        mix.bias.normal_()
    x0, x = torch.randn(6, d), torch.randn(6, d)
    g = torch.softmax(mix.gate(x), -1)
    ref = x.clone()
    for e in range(E):
        V = mix.v[:, e * r : (e + 1) * r]  # (d, r)
        U = mix.u[e * r : (e + 1) * r].T  # (d, r)
        h = torch.tanh(torch.tanh(x @ V) @ mix.c[e])
        ref = ref + g[:, e : e + 1] * x0 * (h @ U.T + mix.bias)
    torch.testing.assert_close(mix(x0, x), ref, rtol=1e-5, atol=1e-5)


def test_batch_of_one_and_gradients() -> None:
    for kind in ("full", "low_rank", "mixture"):
        net = CrossNetwork(6, layers=2, kind=kind, rank=2, experts=3)
        x = torch.randn(1, 6, requires_grad=True)
        y = net(x)
        assert y.shape == (1, 6)
        y.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()


def test_mmoe_shapes_and_gate_mixture() -> None:
    m = MMoE(in_dim=5, experts=4, expert_hidden=[8, 6], tasks=3)
    x = torch.randn(2, 5)
    out = m(x)
    assert out.shape == (3, 2, 6)
    ex = m.expert_outputs(x)  # (B, E, h)
    g = torch.softmax(m.gates(x).view(2, 3, 4), -1)
    torch.testing.assert_close(out[1], (g[:, 1, :, None] * ex).sum(1))
    assert m(torch.randn(1, 5)).shape == (3, 1, 6)


def test_batched_mlp_equals_independent_mlps() -> None:
    bm = BatchedMLP(3, 4, [5, 2])
    x = torch.randn(7, 4)
    out = bm(x)
    for i in range(3):
        h = torch.relu(x @ bm.weights[0][i] + bm.biases[0][i])
        h = torch.relu(h @ bm.weights[1][i] + bm.biases[1][i])
        torch.testing.assert_close(out[i], h)
    torch.testing.assert_close(bm(x.expand(3, 7, 4).contiguous()), out)


def test_towers_and_shallow_tower() -> None:
    t = TaskTowers(3, 4, [8])
    assert t(torch.randn(5, 4)).shape == (3, 5)
    s = ShallowTower(1, hidden=4, dropout=0.1)
    assert s(torch.rand(5, 1)).shape == (5,)
    assert ShallowTower(2, hidden=0)(torch.rand(1, 2)).shape == (1,)


def test_fused_embedding_offsets_keep_features_apart() -> None:
    emb = FusedEmbedding([3, 5], dim=2)
    ids = torch.tensor([[0, 0], [2, 4]])
    out = emb(ids)
    assert out.shape == (2, 4)
    w = emb.table.weight
    torch.testing.assert_close(out[1], torch.cat([w[2], w[3 + 4]]))
    assert not torch.equal(out[0, :2], out[0, 2:])


def test_batched_mlp_batch_norm_equals_independent_batch_norm() -> None:
    bm = BatchedMLP(2, 3, [4], batch_norm=True)
    bm.train()
    x = torch.randn(16, 3)
    out = bm(x)
    for i in range(2):
        h = x @ bm.weights[0][i] + bm.biases[0][i]
        bn = nn.functional.batch_norm(
            h,
            None,
            None,
            bm.norms[0].weight[i * 4 : (i + 1) * 4],
            bm.norms[0].bias[i * 4 : (i + 1) * 4],
            training=True,
        )
        torch.testing.assert_close(out[i], torch.relu(bn), rtol=1e-5, atol=1e-5)
