"""The batched fast path (many users' candidates at once, item side per model state) equals the generic
row builder, follows weight changes, and is what RankerPolicy serves plain models with."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.service.retrieval import ItemSnapshot
from intentrank.serving.batched import BatchedItems
from intentrank.serving.pipeline import SharedHistory
from intentrank.serving.policy import SlateRequest
from intentrank.serving.ranker import RankerPolicy

from ..ranking.conftest import make_events

SMALL = {"model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}}}


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame, SharedHistory]:
    imp, items = make_events(n_items=300, n_slates=200, seed=3)
    history = SharedHistory().update(imp.merge(items[["item_id", "topic"]], on="item_id"))
    return imp, items, history


def _request(imp: pd.DataFrame, n_items: int, seed: int = 0) -> SlateRequest:
    rng = np.random.default_rng(seed)
    users = np.r_[imp["user_id"].unique()[:5], [10**9]].astype(np.int64)  # known users and an unknown one
    cand = np.stack([rng.choice(n_items, 40, replace=False) for _ in users])
    ts = 200_000.0 + rng.uniform(0, 1e5, len(users))
    return SlateRequest(users, cand, rng.integers(0, 5, len(users)).astype(np.int16), ts, 2)


@pytest.mark.parametrize("arch", [{}, SMALL])
def test_batched_block_equals_generic_path(world, arch) -> None:
    imp, items, history = world
    model = MultiTaskRanker(RankerConfig.model_validate(arch)).eval()
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    generic = RankerPolicy(model, history=history, fast=False)
    fast = RankerPolicy(model, history=history)
    req = _request(imp, len(items))
    slow, quick = generic.predict(req, snap), fast.predict(req, snap)
    assert isinstance(fast._batched[1], BatchedItems)  # the fast path served it
    assert fast._batched[1]._ready.sum() < len(items)  # only the candidates' item side was computed
    assert fast._batched[1].split is not None  # x0's first linear maps split: item side precomputed
    for k in ("p_click", "time", "p_conv"):
        assert quick[k].shape == slow[k].shape
        np.testing.assert_allclose(quick[k], slow[k], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast.scores(req, snap), generic.scores(req, snap), rtol=1e-5, atol=1e-6)


def test_batched_item_side_follows_weight_changes(world) -> None:
    imp, items, history = world
    model = MultiTaskRanker(RankerConfig.model_validate(SMALL)).eval()
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    fast = RankerPolicy(model, history=history)
    generic = RankerPolicy(model, history=history, fast=False)
    req = _request(imp, len(items), seed=1)
    before = fast.predict(req, snap)["p_click"]
    first = fast._batched[1]
    with torch.no_grad():  # an in-place change, as a learner's publish copies new weights in
        model.embedding.table.weight.mul_(3.0)
    after = fast.predict(req, snap)["p_click"]
    assert fast._batched[1] is not first  # rebuilt for the new weights
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, generic.predict(req, snap)["p_click"], rtol=1e-5, atol=1e-6)


def test_batched_prior_equals_prepared(world) -> None:
    """The user-independent scores of every item (two-stage scoring's first stage) are those of the
    per-request fast path: the split's item-side products are taken only of rows already computed (once
    filled lazily, they must not be of the uncomputed table)."""
    from intentrank.serving.fast import PreparedItems

    _, items, history = world
    torch.manual_seed(0)
    model = MultiTaskRanker(RankerConfig.model_validate({})).eval()
    with torch.no_grad():
        model.towers.output_bias(1).fill_(2.0)  # dwell: a positive time, so `time` varies too
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    rows = RankerPolicy(model, history=history).candidate_features(snap, model)
    batched = BatchedItems(model, rows, history)
    want = PreparedItems(model, rows, history).prior()
    got = batched.prior()
    for k in ("p_click", "time", "p_conv"):
        assert np.ptp(want[k]) > 0
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6)
