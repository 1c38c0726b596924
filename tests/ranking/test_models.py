"""Models, ESMM, losses and the formula."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intentrank.errors import ConfigError
from intentrank.ranking.config import (
    CategoricalFeature,
    DenseFeature,
    FeatureSpecConfig,
    ModelConfig,
    RankerConfig,
    ShallowTowerConfig,
    TaskWeights,
)
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.losses import multitask_loss
from intentrank.ranking.models import MultiTaskNet, MultiTaskRanker, ctcvr_logit

SPEC = FeatureSpecConfig(
    categorical=[
        CategoricalFeature(name="user_id", buckets=50),
        CategoricalFeature(name="item_id", buckets=40),
    ],
    dense=[DenseFeature(name="clickbait_score"), DenseFeature(name="x")],
    embedding_dim=4,
)


def _batch(n: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    b = {
        "user_id": torch.randint(0, 50, (n,), generator=g),
        "item_id": torch.randint(0, 40, (n,), generator=g),
        "clickbait_score": torch.rand(n, generator=g),
        "x": torch.randn(n, generator=g),
    }
    b["y_click"] = (torch.rand(n, generator=g) < 0.5).float()
    b["y_conversion"] = b["y_click"] * (torch.rand(n, generator=g) < 0.5).float()
    b["y_dwell"] = b["y_click"] * torch.rand(n, generator=g) * 4
    b["w"] = torch.ones(n)
    return b


@pytest.mark.parametrize("backbone", ["dcn_parallel", "dcn_stacked", "mmoe"])
@pytest.mark.parametrize("kind", ["full", "low_rank", "mixture"])
def test_ranker_all_backbones_batch_of_one(backbone: str, kind: str) -> None:
    cfg = RankerConfig(
        features=SPEC,
        model=ModelConfig(
            backbone=backbone,
            cross={"kind": kind, "layers": 2, "rank": 3},
            mlp_hidden=[16],
            mmoe={"experts": 3, "expert_hidden": [8]},
        ),
    )
    m = MultiTaskRanker(cfg)
    for n in (1, 6):
        out = m(_batch(n))
        assert set(out) == {"click", "dwell", "conversion", "ctcvr"}
        assert all(v.shape == (n,) for v in out.values())
        assert m.encode(_batch(n)).shape == (n, m.encode_dim)
    loss, parts = multitask_loss(m(_batch(8)), _batch(8), TaskWeights(), esmm=True)
    loss.backward()
    assert torch.isfinite(loss) and set(parts) == {"click", "dwell", "conversion"}


def test_esmm_ctcvr_never_exceeds_ctr() -> None:
    a = torch.cat([torch.linspace(-40, 40, 401), torch.tensor([0.0, 100.0, -100.0])])
    b = torch.cat([torch.linspace(40, -40, 401), torch.tensor([100.0, 100.0, 100.0])])
    A, Bm = torch.meshgrid(a, b, indexing="ij")
    p = torch.sigmoid(ctcvr_logit(A, Bm))
    assert torch.isfinite(ctcvr_logit(A, Bm)).all()
    # ≤ up to float32 rounding of sigmoid itself (vectorised and scalar sigmoid differ in the last ulp)
    assert (p <= torch.sigmoid(A) * (1 + 1e-6)).all() and (p <= torch.sigmoid(Bm) * (1 + 1e-6)).all()
    assert (ctcvr_logit(A, Bm) <= torch.minimum(A, Bm)).all()
    mid = (A.abs() < 10) & (Bm.abs() < 10)
    torch.testing.assert_close(p[mid], (torch.sigmoid(A) * torch.sigmoid(Bm))[mid], rtol=1e-4, atol=1e-6)
    m = MultiTaskRanker(RankerConfig(features=SPEC))
    out = m(_batch(32))
    assert (torch.sigmoid(out["ctcvr"]) <= torch.sigmoid(out["click"])).all()


def test_shallow_tower_added_in_training_and_neutralised_at_serving() -> None:
    cfg = RankerConfig(features=SPEC, shallow_tower=ShallowTowerConfig(hidden=4, dropout=0.0))
    m = MultiTaskRanker(cfg)
    b1, b2 = _batch(5), _batch(5)
    b2 = {**b1, "clickbait_score": torch.rand(5) + 3}
    m.train()
    assert not torch.allclose(m(b1)["click"], m(b2)["click"])  # c moves training logits through the tower
    m.eval()
    m_no = MultiTaskRanker(cfg.model_copy(update={"shallow_tower": None}))
    m_no.load_state_dict({k: v for k, v in m.state_dict().items() if not k.startswith("shallow")})
    m_no.eval()
    # at serving the tower sees zeros: the output no longer depends on c through the tower
    zero_bias = m.shallow(torch.zeros(1, 1)).item()
    torch.testing.assert_close(m(b1)["click"], m_no(b1)["click"] + zero_bias)


def test_dense_feature_kept_out_of_main_network() -> None:
    spec = SPEC.model_copy(
        update={"dense": [DenseFeature(name="clickbait_score", to_main=False), DenseFeature(name="x")]}
    )
    net = MultiTaskNet(spec, ModelConfig(), ["t"])
    b1 = _batch(4)
    b2 = {**b1, "clickbait_score": b1["clickbait_score"] + 5}
    net.eval()
    torch.testing.assert_close(net(b1)["t"], net(b2)["t"])


def test_packed_and_named_inputs_agree() -> None:
    net = MultiTaskNet(SPEC, ModelConfig(backbone="mmoe"), ["a", "b"])
    b = _batch(3)
    packed = {
        "cat": torch.stack([b["user_id"], b["item_id"]], 1),
        "dense": torch.stack([b["clickbait_score"], b["x"]], 1),
    }
    torch.testing.assert_close(net(b)["a"], net(packed)["a"])


def test_losses_mask_unclicked_rows_for_dwell() -> None:
    b = _batch(10)
    out = {
        "click": torch.zeros(10),
        "dwell": torch.zeros(10),
        "conversion": torch.zeros(10),
        "ctcvr": torch.zeros(10),
    }
    _, parts = multitask_loss(out, b, TaskWeights(), esmm=False)
    clicked = b["y_click"].bool()
    expected = (b["y_dwell"][clicked] ** 2).mean()
    torch.testing.assert_close(parts["dwell"], expected)
    torch.testing.assert_close(parts["click"], torch.tensor(np.log(2.0), dtype=torch.float32))


def test_formula_numpy_and_torch() -> None:
    f = RankingFormula()
    p, t = np.array([0.1, 0.2, 0.5]), np.array([100.0, 10.0, 0.0])
    np.testing.assert_allclose(f.score(p, t), p * t**0.8)
    torch.testing.assert_close(
        f.score(torch.tensor(p), torch.tensor(t)), torch.tensor(p * t**0.8), rtol=1e-6, atol=1e-9
    )
    np.testing.assert_allclose(RankingFormula(1, 0, 0).score(p, t), p)
    np.testing.assert_allclose(RankingFormula(2, 0.5, 1).score(p, t, p), p**3 * t**0.5)
    with pytest.raises(ConfigError, match="exponent b"):
        RankingFormula(b=-1)


def _insert_pad(a: torch.Tensor, shape: torch.Size, raw: int, pad: int) -> torch.Tensor:
    """``a`` with ``pad`` zero slices inserted at index ``raw`` along every axis where sizes differ."""
    out = a
    for ax, (n_a, n_b) in enumerate(zip(a.shape, shape, strict=True)):
        if n_a != n_b:
            assert n_b - n_a == pad
            zeros = out.new_zeros(*[pad if i == ax else s for i, s in enumerate(out.shape)])
            out = torch.cat([out.narrow(ax, 0, raw), zeros, out.narrow(ax, raw, n_a - raw)], dim=ax)
    return out


@pytest.mark.parametrize("backbone", ["dcn_parallel", "dcn_stacked", "mmoe"])
@pytest.mark.parametrize("kind", ["full", "mixture"])
def test_input_padding_keeps_the_function_and_gets_no_gradient(backbone: str, kind: str) -> None:
    """x0 padded to a multiple of 8 (10 -> 16 columns) computes what the unpadded model computes, and
    the weights that touch the zero columns get exactly zero gradient (so they never move)."""
    cfg = {"backbone": backbone, "cross": {"kind": kind, "layers": 2, "rank": 3}, "mlp_hidden": [16],
           "mmoe": {"experts": 3, "expert_hidden": [8]}}  # fmt: skip
    torch.manual_seed(0)
    plain = MultiTaskNet(SPEC, ModelConfig(**cfg, pad_input_to=1), ["a", "b"])
    padded = MultiTaskNet(SPEC, ModelConfig(**cfg, pad_input_to=8), ["a", "b"])
    assert (plain.pad, padded.pad) == (0, 6)
    src, dst = plain.state_dict(), padded.state_dict()
    padded.load_state_dict({k: _insert_pad(src[k], dst[k].shape, 10, 6) for k in dst})
    b = _batch(32)
    out_plain, out_padded = plain(b), padded(b)
    for t in ("a", "b"):
        torch.testing.assert_close(out_padded[t], out_plain[t], rtol=1e-5, atol=1e-6)
    padded.zero_grad()
    sum(o.sum() for o in out_padded.values()).backward()
    for name, p in padded.named_parameters():
        if p.shape != src[name].shape:  # a padded weight: its inserted slices have zero gradient
            touched = _insert_pad(torch.ones_like(src[name]), p.shape, 10, 6) == 0
            assert touched.any() and p.grad[touched].abs().max() == 0, name
