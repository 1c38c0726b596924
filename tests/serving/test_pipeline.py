"""The four-stage pipeline: the fast scorer equals the generic path; sources, filtering, diversity."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from intentrank.ranking.config import DenseFeature, RankerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.service.retrieval import ItemSnapshot
from intentrank.serving.config import CandidatesConfig, DiversityConfig, FilteringConfig, ScoringConfig
from intentrank.serving.fast import PreparedItems, supports
from intentrank.serving.pipeline import (
    SOURCES,
    Scorer,
    ServingHistory,
    SharedHistory,
    UserSignals,
    cap_per_topic,
    filter_mask,
    order_slate,
    retrieve,
)
from intentrank.serving.policy import SlateRequest
from intentrank.serving.ranker import RankerPolicy

from ..ranking.conftest import make_events

SMALL = {"model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}}}


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame]:
    imp, items = make_events(n_items=300, n_slates=200, seed=3)
    return imp, items


def _history(imp: pd.DataFrame, items: pd.DataFrame, kind: type = SharedHistory) -> Any:
    h = kind()
    return h.update(imp.merge(items[["item_id", "topic"]], on="item_id"))


@pytest.mark.parametrize(
    "arch,kind",
    [({}, SharedHistory), ({}, ServingHistory), (SMALL, SharedHistory),
     ({**SMALL, "model": {**SMALL["model"], "backbone": "mmoe"}}, SharedHistory)],
)  # fmt: skip
def test_fast_scores_equal_generic_path(world, arch, kind) -> None:
    """The fast path (its request columns from one history lookup per request: the serving history's
    by topic code) scores as the generic row builder does."""
    imp, items = world
    model = MultiTaskRanker(RankerConfig.model_validate(arch)).eval()
    assert supports(model)
    history = _history(imp, items, kind)
    pol = RankerPolicy(model, history=history, fast=False)  # the generic row builder
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    rng = np.random.default_rng(0)
    prep = PreparedItems(model, pol.candidate_features(snap, model), history)
    for user in (int(imp["user_id"].iloc[0]), 10**9):  # a user with history and an unknown one
        cand = rng.choice(len(items), 120, replace=False)
        ts = 200_000.0 + rng.uniform(0, 1e5)
        req = SlateRequest(np.array([user]), cand[None], np.array([3], np.int16), np.array([ts]), 2)
        slow = pol.predict(req, snap)
        fast = prep.predict(user, cand, 3, ts, 2)
        for k in ("p_click", "time", "p_conv"):
            np.testing.assert_allclose(fast[k], slow[k][0], rtol=1e-5, atol=1e-6)


def test_fast_scores_equal_generic_path_with_topic_read_rate(world) -> None:
    """The opt-in per-topic read rate is computed the same way by the fast path and the row builder."""
    imp, items = world
    base = RankerConfig.model_validate(SMALL)
    dense = [*base.features.dense, DenseFeature(name="user_topic_read_rate", scale=10.0)]
    cfg = base.model_copy(update={"features": base.features.model_copy(update={"dense": dense})})
    model = MultiTaskRanker(cfg).eval()
    history = _history(imp, items)
    pol = RankerPolicy(model, history=history, fast=False)
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    prep = PreparedItems(model, pol.candidate_features(snap, model), history)
    user = int(imp["user_id"].iloc[0])
    cand = np.random.default_rng(1).choice(len(items), 120, replace=False)
    ts = 250_000.0
    topics = items["topic"].to_numpy(object)[cand]
    rate = history.features(np.full(len(cand), user), topics, np.full(len(cand), ts), cand)
    assert rate["user_topic_read_rate"].nunique() > 1  # the column is exercised, not a constant
    req = SlateRequest(np.array([user]), cand[None], np.array([3], np.int16), np.array([ts]), 2)
    slow, fast = pol.predict(req, snap), prep.predict(user, cand, 3, ts, 2)
    for k in ("p_click", "time", "p_conv"):
        np.testing.assert_allclose(fast[k], slow[k][0], rtol=1e-5, atol=1e-6)


def test_prerank_scores_kept_and_best_prior_exactly(world) -> None:
    imp, items = world
    model = MultiTaskRanker(RankerConfig.model_validate(SMALL)).eval()
    history = _history(imp, items)
    pol = RankerPolicy(model, history=history)
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    exact = Scorer(pol)
    two = Scorer(pol, ScoringConfig(prerank=30))
    user = UserSignals(int(imp["user_id"].iloc[0]), 0, 300_000.0, 3, np.empty(0, np.int64))
    cand = np.arange(200)
    keep = np.zeros(200, bool)
    keep[[5, 150]] = True
    a = exact.predict(snap, model, user, cand)
    b = two.predict(snap, model, user, cand, keep=keep)
    same = np.isclose(a["p_click"], b["p_click"], rtol=1e-6)
    assert same[[5, 150]].all()  # the personalised sources are always scored per user
    assert 30 <= same.sum() < 200  # the rest: the user-independent first stage


def test_retrieval_sources_and_filters(world) -> None:
    _, items = world
    items = items.copy()
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    T = len(snap.topic_names)
    topic_clicks = np.zeros(T)
    topic_clicks[2] = 5.0
    retired = snap.retired.copy()
    retired[snap.fresh_order[:3]] = True
    snap = ItemSnapshot.build(items, retired)
    shown = snap.fresh_order[:10]
    user = UserSignals(1, 0, 0.0, 0, shown, topic_clicks, np.array([7, 8]))
    vec = np.random.default_rng(0).normal(size=(len(items), 4)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    cfg = CandidatesConfig(total=120, fresh=20, popular=10, topic=20, similar=20)
    mask = filter_mask(snap, user, FilteringConfig())
    pop = np.arange(50, 100)
    cand, src = retrieve(snap, user, mask, cfg, np.random.default_rng(0), pop, vec)
    assert len(cand) == len(set(cand.tolist())) == 120
    assert not np.isin(cand, shown).any() and not retired[cand].any()
    names = [SOURCES[c] for c in src]
    assert names.count("fresh") == 20 and names.count("popular") == 10
    assert names.count("topic") == 20 and names.count("similar") == 20
    assert (snap.topic_code[cand[src == SOURCES.index("topic")]] == 2).all()
    # fresh = the newest live items not shown
    assert set(cand[src == 0]) == set(snap.fresh_order[~np.isin(snap.fresh_order, shown)][:20])
    # similar = the closest to the profile among what is left
    prof = vec[[7, 8]].mean(0)
    sims = vec @ (prof / np.linalg.norm(prof))
    got = sims[cand[src == SOURCES.index("similar")]]
    assert got.min() >= np.median(sims)
    # expired items are filtered
    old = FilteringConfig(max_item_age_s=3600.0)
    m2 = filter_mask(snap, UserSignals(1, 0, 86_400.0, 1, np.empty(0, np.int64)), old)
    assert m2[snap.publish_ts < 86_400.0 - 3600.0].all()


def test_topic_cap_and_ordering() -> None:
    scores = np.array([9, 8, 7, 6, 5, 4, 3.0])
    topics = np.array([0, 0, 0, 1, 1, 2, 0])
    assert cap_per_topic(scores, topics, 4, 2).tolist() == [0, 1, 3, 4]
    assert cap_per_topic(scores, topics, 7, 1).tolist()[:3] == [0, 3, 5]  # topped up afterwards
    o, p = order_slate(scores, 4, topics=topics, diversity=DiversityConfig(max_per_topic=2))
    assert o.tolist() == [0, 1, 3, 4] and (p == 1).all()
    o, p = order_slate(scores, 3, stochastic=True, rng=np.random.default_rng(0))
    assert len(set(o.tolist())) == 3 and np.all((p > 0) & (p <= 1))


def test_serving_history_equals_user_history() -> None:
    from intentrank.ranking.history import UserHistory
    from intentrank.serving.pipeline import ServingHistory

    rng = np.random.default_rng(5)
    topics = np.array(["a", "b", "c", "d"], object)
    sources = np.array(["news", "viral", "blog"], object)  # an item's source is fixed (item id mod 3)
    ref, fast = UserHistory(30.0), ServingHistory(30.0)
    t = 0.0
    for _ in range(6):  # updates spanning several days, in time order
        n = 300
        ts = t + np.sort(rng.uniform(0, 50_000, n))
        t = ts[-1]
        click = rng.random(n) < 0.3
        item = rng.integers(0, 30, n)
        ev = pd.DataFrame({"user_id": rng.integers(0, 40, n), "ts": ts, "item_id": item,
                           "topic": topics[rng.integers(0, 4, n)], "click": click,
                           "source": sources[item % 3],
                           "bounce": click & (rng.random(n) < 0.3),
                           "dwell_s": np.where(click, rng.uniform(0, 90, n), 0.0)})  # fmt: skip
        ref.update(ev)
        fast.update(ev)
        q_users = rng.integers(0, 50, 200)  # some never seen
        q_topics = topics[rng.integers(0, 4, 200)]
        q_ts = np.full(200, t + 100.0)
        q_items = rng.integers(-1, 40, 200)  # some never seen
        got = fast.features(q_users, q_topics, q_ts, q_items)
        pd.testing.assert_frame_equal(got, ref.features(q_users, q_topics, q_ts, q_items))
        assert (got["user_source_impressions"] > 0).mean() > 0.3  # the user × source counts are exercised
        np.testing.assert_array_equal(fast.last_day(q_users), ref.last_day(q_users))
        for user in (int(q_users[0]), 10**6):  # one user's rows (a request's candidates): its own path
            one = np.full(200, user)
            got = fast.features(one, q_topics, q_ts, q_items)
            pd.testing.assert_frame_equal(got, ref.features(one, q_topics, q_ts, q_items))
            no_items = pd.DataFrame(fast.feature_arrays(one[:3], q_topics[:3], q_ts[:3]))
            pd.testing.assert_frame_equal(
                no_items, ref.features(one[:3], q_topics[:3], q_ts[:3], np.full(3, -1))
            )
    assert len(fast) == len(ref)
    assert fast.trim(10) == len(ref) - 10 and len(fast) == 10
