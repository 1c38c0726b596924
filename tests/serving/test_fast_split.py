"""The split forward of the fast path (x0's first linear maps precomputed per item) equals the plain one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.service.retrieval import ItemSnapshot
from intentrank.serving.fast import PreparedCache, PreparedItems, SplitForward
from intentrank.serving.pipeline import SharedHistory
from intentrank.serving.ranker import RankerPolicy

from ..ranking.conftest import make_events

SMALL = {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 2, "rank": 4, "experts": 2}}
ARCHS = [
    {},  # the default: DCN parallel, mixture of low-rank experts
    {"model": SMALL},
    {"model": {**SMALL, "backbone": "dcn_stacked"}},
    {"model": {**SMALL, "cross": {"layers": 1, "kind": "low_rank", "rank": 4}}},
    {"model": {**SMALL, "cross": {"layers": 2, "kind": "full"}, "batch_norm": True}},
    {"model": {**SMALL, "cross": {"layers": 1, "kind": "mixture", "activation": "relu"}, "mlp_hidden": []}},
]


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame, SharedHistory]:
    imp, items = make_events(n_items=300, n_slates=200, seed=5)
    return imp, items, SharedHistory().update(imp.merge(items[["item_id", "topic"]], on="item_id"))


def _trained_like(arch: dict, seed: int) -> MultiTaskRanker:
    """A model with non-trivial weights everywhere (biases too), in eval mode."""
    torch.manual_seed(seed)
    model = MultiTaskRanker(RankerConfig.model_validate(arch))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        model.towers.output_bias(1).fill_(2.0)  # dwell: a positive time, so `time` varies too
    return model.eval()


@pytest.mark.parametrize("arch", ARCHS)
def test_split_scores_equal_plain_forward(world, arch) -> None:
    imp, items, history = world
    model = _trained_like(arch, 0)
    assert SplitForward.supports(model)
    rows = RankerPolicy(model, history=history).candidate_features(
        ItemSnapshot.build(items, np.zeros(len(items), bool)), model
    )
    split, plain = PreparedItems(model, rows, history), PreparedItems(model, rows, history, split=False)
    assert split.split is not None and plain.split is None
    rng = np.random.default_rng(1)
    for user in (int(imp["user_id"].iloc[0]), 10**9):  # a user with history and an unknown one
        cand = rng.choice(len(items), 150, replace=False)
        ts = 150_000.0 + rng.uniform(0, 1e5)
        a, b = split.predict(user, cand, 2, ts, 1), plain.predict(user, cand, 2, ts, 1)
        for k in ("p_click", "time", "p_conv"):
            assert np.ptp(b[k]) > 0  # the check can fail: the scores vary over the candidates
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)


def test_mmoe_is_not_split_and_still_scores(world) -> None:
    _, items, history = world
    model = _trained_like({"model": {**SMALL, "backbone": "mmoe"}}, 0)
    assert not SplitForward.supports(model)
    rows = RankerPolicy(model, history=history).candidate_features(
        ItemSnapshot.build(items, np.zeros(len(items), bool)), model
    )
    prep = PreparedItems(model, rows, history)
    assert prep.split is None
    assert prep.predict(1, np.arange(20), 0, 1e5, 1)["p_click"].shape == (20,)


def test_cache_keeps_each_models_item_products_apart(world) -> None:
    """A swap: the newly published model's precomputed products are its own; the old one's are intact."""
    _, items, history = world
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    old, new = _trained_like({}, 1), _trained_like({}, 2)
    pol = RankerPolicy(old, history=history)
    cache = PreparedCache()
    cand = np.arange(0, 300, 3)
    p_old = cache.get(old, pol.candidate_features(snap, old), id(snap.items), history)
    before = p_old.predict(7, cand, 0, 1e5, 1)["p_click"]
    p_new = cache.get(new, pol.candidate_features(snap, new), id(snap.items), history)
    assert p_new is not p_old and p_new.model is new
    got = p_new.predict(7, cand, 0, 1e5, 1)["p_click"]
    plain = PreparedItems(new, pol.candidate_features(snap, new), history, split=False)
    np.testing.assert_allclose(got, plain.predict(7, cand, 0, 1e5, 1)["p_click"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, before)
    again = cache.get(old, pol.candidate_features(snap, old), id(snap.items), history)
    assert again is p_old
    np.testing.assert_array_equal(again.predict(7, cand, 0, 1e5, 1)["p_click"], before)


def test_prior_with_split_equals_plain(world) -> None:
    """The two-stage first stage (user-independent scores of every item) is the same split or not."""
    _, items, history = world
    model = _trained_like({}, 3)
    rows = RankerPolicy(model, history=history).candidate_features(
        ItemSnapshot.build(items, np.zeros(len(items), bool)), model
    )
    a = PreparedItems(model, rows, history).prior()
    b = PreparedItems(model, rows, history, split=False).prior()
    for k in ("p_click", "time", "p_conv"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
