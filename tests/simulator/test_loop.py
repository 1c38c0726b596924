"""The closed loop: own-arm learners update from their arm's traffic after every window; deterministic."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from intentrank.errors import ConfigError
from intentrank.ranking.config import RankerConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.history import UserHistory
from intentrank.ranking.trainer import Trainer
from intentrank.serving.incremental import IncrementalTrainer, ModelSlot
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.catalogue import synthetic_catalogue
from intentrank.simulator.config import LivingConfig, SimulatorConfig
from intentrank.simulator.living import living_catalogue
from intentrank.simulator.loop import run_loop
from intentrank.simulator.registry import get_policy
from intentrank.simulator.sinks import CollectSink
from intentrank.simulator.world import World
from intentrank.store import EventStore

LIVING = LivingConfig(enabled=True, live_items=300, lifetime_h=12.0, window_min=180)
CFG = SimulatorConfig(users=200, days=1, candidates=40, max_slates=2, living=LIVING)
SMALL = {
    "features": {"dense": [{"name": "length", "transform": "log1p", "scale": 0.3},
                           {"name": "item_age_h", "transform": "log1p", "scale": 0.2}]},
    "train": {"epochs": 1, "progress": False, "valid_fraction": 0.0, "batch_size": 256},
    "model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}},
}  # fmt: skip


@pytest.fixture(scope="module")
def world_and_log():
    cat = living_catalogue(synthetic_catalogue(3000, seed=1), LIVING, days=1, seed=0)
    world = World.create(cat, CFG, seed=0)
    sink = CollectSink()
    from intentrank.simulator.engine import Simulator

    Simulator(world, get_policy("random"), seed=9).run(sink)
    return world, sink.table().to_pandas()


def _run(world, log, path, workers: int = 1):
    trainer = Trainer(RankerConfig.model_validate(SMALL)).fit(log, world.catalogue.items)
    arms, learners = {}, {}
    for arm in ("clicks", "intent"):
        tr = copy.deepcopy(trainer)  # each arm owns its model, trained on its own traffic
        slot = ModelSlot(copy.deepcopy(trainer.model_))
        arms[arm] = RankerPolicy(slot, name=arm)
        learners[arm] = IncrementalTrainer(
            tr, slot=slot, items=world.catalogue.items, arm=arm, replay_events=500, max_steps=2
        )
    arms["truth"] = get_policy("truth_formula")
    with EventStore(path) as store:
        store.write_items(world.catalogue.items)
        res = run_loop(world, arms, store, learners, seed=3, workers=workers)
        events = store.read_impressions()
    return res, learners, events


@pytest.fixture(scope="module")
def two_runs(world_and_log, tmp_path_factory):
    world, log = world_and_log
    d = tmp_path_factory.mktemp("loop")
    return _run(world, log, d / "a.duckdb"), _run(world, log, d / "b.duckdb")


def test_own_arm_learners_update_every_window_from_their_own_traffic(two_runs) -> None:
    res, learners, events = two_runs[0]
    assert len(res.windows) >= 5
    for arm, lr in learners.items():
        n_arm = int((events["policy"] == arm).sum())
        assert n_arm > 0 and sum(r.new_events for r in res.updates[arm]) == n_arm
        assert lr.slot.version == len(res.updates[arm]) >= 3
        assert lr.watermark == int(events["event_id"].max())
    assert "truth" not in res.updates and set(res.seconds) >= {"training", "total"}


def test_the_loop_is_deterministic(two_runs) -> None:
    (_, la, ev_a), (_, lb, ev_b) = two_runs
    assert ev_a.drop(columns=["event_id"]).equals(ev_b.drop(columns=["event_id"]))
    for arm in la:
        for p, q in zip(la[arm].slot.model.parameters(), lb[arm].slot.model.parameters(), strict=True):
            assert torch.equal(p, q)


def test_learners_updating_in_parallel_threads_give_the_same_loop(world_and_log, two_runs, tmp_path) -> None:
    world, log = world_and_log
    _, la, ev_a = two_runs[0]
    _, lb, ev_b = _run(world, log, tmp_path / "w2.duckdb", workers=2)
    assert ev_a.drop(columns=["event_id"]).equals(ev_b.drop(columns=["event_id"]))
    for arm in la:
        assert lb[arm].slot.version == la[arm].slot.version
        for p, q in zip(la[arm].slot.model.parameters(), lb[arm].slot.model.parameters(), strict=True):
            assert torch.equal(p, q)
    with EventStore(tmp_path / "w0.duckdb") as store, pytest.raises(ConfigError, match=r"workers.*got 0"):
        run_loop(world, {"r": get_policy("random")}, store, workers=0)


def test_bad_update_cadence_names_the_field(world_and_log, tmp_path) -> None:
    world, _ = world_and_log
    with EventStore(tmp_path / "c.duckdb") as store:
        with pytest.raises(ConfigError, match=r"simulator\.living\.update_every_windows.*got 0"):
            run_loop(world, {"r": get_policy("random")}, store, update_every=0)
        with pytest.raises(ConfigError, match="learners for unknown arms"):
            run_loop(world, {"r": get_policy("random")}, store, {"x": object()})  # type: ignore[dict-item]


def test_a_live_catalogue_larger_than_retrieval_needs_is_refused() -> None:
    cat = living_catalogue(synthetic_catalogue(500, seed=1), LivingConfig(live_items=30), days=1)
    cfg = SimulatorConfig(users=10, days=1, candidates=40, living=LivingConfig(enabled=True, live_items=30))
    from intentrank.simulator.engine import Simulator

    with pytest.raises(ConfigError, match=r"simulator\.candidates \(40\) exceeds"):
        Simulator(World.create(cat, cfg, seed=0), get_policy("random"))


def test_the_loop_needs_a_living_world(tmp_path) -> None:
    world = World.create(synthetic_catalogue(500), SimulatorConfig(users=10, days=1, candidates=40), seed=0)
    with EventStore(tmp_path / "x.duckdb") as store, pytest.raises(ConfigError, match="living world"):
        run_loop(world, {"r": get_policy("random")}, store)


def test_user_history_and_titles_in_the_loop(world_and_log, tmp_path) -> None:
    """The default features (title n-grams, user history): each arm's history consumes every window's
    events before the next window; the learner featurises its new events point in time."""
    world, log = world_and_log
    small = {k: v for k, v in SMALL.items() if k != "features"}  # the default feature spec
    trainer = Trainer(RankerConfig.model_validate(small)).fit(log, world.catalogue.items)
    spec = trainer.config_.features
    assert spec.text and "user_topic_clicks" in {f.name for f in spec.dense}
    slot = ModelSlot(copy.deepcopy(trainer.model_))
    policy = RankerPolicy(slot, name="intent")
    seen: list[tuple[int, int]] = []
    learner = IncrementalTrainer(copy.deepcopy(trainer), slot=slot, items=world.catalogue.items)
    with EventStore(tmp_path / "h.duckdb") as store:
        store.write_items(world.catalogue.items)
        res = run_loop(
            world,
            {"intent": policy},
            store,
            {"intent": learner},
            seed=3,
            on_window=lambda w: seen.append((policy.history.watermark, store.watermark())),
        )
        events = load_events(store, runs="all")
    # after every window the history had consumed everything written so far
    assert len(seen) >= 5 and all(h == w for h, w in seen) and seen[0][0] >= 0
    assert policy.history.events == len(events)
    assert policy.history.watermark == learner.watermark == int(events["event_id"].max())
    # the served history equals one built from the whole log at once; the learner's too
    full = UserHistory().update(events)
    users, topics = events["user_id"].to_numpy(), events["topic"].to_numpy()
    ts, items = np.full(len(users), 1e6), events["item_id"].to_numpy()
    expected = full.features(users, topics, ts, items)
    pd.testing.assert_frame_equal(policy.history.features(users, topics, ts, items), expected)
    pd.testing.assert_frame_equal(learner.history.features(users, topics, ts, items), expected)
    assert res.seconds["history"] >= 0 and len(res.updates["intent"]) >= 3


def test_per_day_kpis_add_up_to_the_whole_loop(two_runs) -> None:
    res = two_runs[0][0]
    whole = res.per_user()
    day0 = res.day_frame(0)
    assert day0["impressions"].sum() == whole["impressions"].sum() > 0  # a one-day loop
    assert list(day0["arm"]) == list(whole["arm"])
