"""The living world: publication schedule, retrieval from live items, windows in time order, freshness."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from intentrank.errors import ConfigError
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import synthetic_catalogue
from intentrank.simulator.config import LivingConfig, SimulatorConfig
from intentrank.simulator.engine import Simulator, WindowResult
from intentrank.simulator.living import freshness, living_catalogue
from intentrank.simulator.registry import get_policy
from intentrank.simulator.sinks import CollectSink
from intentrank.simulator.world import World

LIVING = LivingConfig(enabled=True, live_items=400, lifetime_h=12.0, freshness_half_life_h=6.0, window_min=30)
CFG = SimulatorConfig(users=400, days=2, candidates=60, max_slates=3, living=LIVING)


@pytest.fixture(scope="module")
def pool():
    return synthetic_catalogue(6000, seed=2)


@pytest.fixture(scope="module")
def living(pool):
    return living_catalogue(pool, LIVING, days=2, seed=0)


def test_schedule_keeps_the_live_catalogue_near_its_target(living) -> None:
    counts = np.array([len(living.live_at(h * 3600.0)) for h in range(0, 48, 2)])
    assert counts[0] == 400
    assert abs(counts.mean() - 400) < 60 and counts.min() > 250
    assert np.all(np.diff(living.publish_ts64) >= 0)  # ids in publication order
    assert np.all(living.retire_ts > living.publish_ts64)
    assert not living.is_variant.any()  # 6,000 titles are enough for 2 days
    # titles are drawn without repetition while the pool lasts
    assert living.items["title"].is_unique


def test_pool_exhaustion_publishes_marked_variants_and_oversize_is_refused(pool) -> None:
    small = synthetic_catalogue(500, seed=3)
    cat = living_catalogue(small, LivingConfig(live_items=300, lifetime_h=2.0), days=2)
    assert cat.is_variant.any() and not cat.is_variant[: len(small)].any()
    with pytest.raises(ConfigError, match=r"simulator\.living\.live_items \(600\) exceeds the headline pool"):
        living_catalogue(small, LivingConfig(live_items=600), days=1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window_min", 0),
        ("window_min", -5),
        ("lifetime_h", 0),
        ("lifetime_h", -1.0),
        ("freshness_half_life_h", -1),
        ("live_items", 0),
        ("update_every_windows", 0),
    ],
)
def test_bad_loop_settings_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        LivingConfig(**{field: value})


def test_windows_run_in_time_order_and_retrieve_only_live_items(living) -> None:
    sink = CollectSink()
    windows: list[WindowResult] = []
    flushed: list[int] = []

    def on_window(w: WindowResult) -> None:
        windows.append(w)
        flushed.append(sum(len(b) for b in sink.batches))

    world = World.create(living, CFG, seed=0)
    Simulator(world, get_policy("ctr_oracle"), seed=0).run(sink, on_window=on_window)
    ev = sink.table().to_pandas()
    starts = np.array([w.start_ts for w in windows])
    assert len(windows) > 20 and np.all(np.diff(starts) > 0)
    assert flushed == sorted(flushed) and flushed[-1] == len(ev)  # each window's events land before its hook
    # every shown item was live when its session's window began
    width = LIVING.window_min * 60
    window_start = (ev["ts"] // width) * width
    pub = living.publish_ts64[ev["item_id"].to_numpy()]
    ret = living.retire_ts[ev["item_id"].to_numpy()]
    session_t0 = ev.groupby("session_id")["ts"].transform("min")
    w0 = (session_t0 // width) * width
    assert np.all(pub <= w0 + 1e-6) and np.all(ret > w0)
    assert (window_start >= w0).all()


def test_living_world_is_deterministic(living) -> None:
    def run() -> object:
        sink = CollectSink()
        simulate(["ctr_oracle", "random"], CFG, seed=5, catalogue=living, sink=sink)
        return sink.table()

    assert run().equals(run())


def test_freshness_halves_every_half_life() -> None:
    f = freshness(np.array([0.0, 6 * 3600.0, 12 * 3600.0, -5.0]), LIVING)
    np.testing.assert_allclose(f, [1.0, 0.5, 0.25, 1.0], rtol=1e-6)


def test_truth_formula_reference_policy(living) -> None:
    world = World.create(living, CFG, seed=0)
    ctr, truth = get_policy("ctr_oracle"), get_policy("truth_formula")
    truth_ctr = get_policy("truth_formula", b=0)
    for p in (ctr, truth, truth_ctr):
        p.bind(world)
    from intentrank.serving.policy import SlateRequest

    cand = living.live_at(0.0)[:60].reshape(3, 20)
    req = SlateRequest(np.arange(3), cand, np.zeros(3, np.int16), np.full(3, 3600.0), 0)
    np.testing.assert_allclose(truth_ctr.scores(req, living), ctr.scores(req, living), rtol=1e-6)
    t = world.true_time(req.user_ids, cand, req.ts)
    np.testing.assert_allclose(truth.scores(req, living), ctr.scores(req, living) * t**0.8, rtol=1e-5)
    assert not np.allclose(truth.scores(req, living), truth_ctr.scores(req, living))


def test_candidates_beyond_the_live_catalogue_are_refused(living) -> None:
    cfg = CFG.model_copy(update={"candidates": 500})
    with pytest.raises(ConfigError, match=r"exceeds simulator\.living\.live_items"):
        Simulator(World.create(living, cfg, seed=0), get_policy("random"))


def test_a_run_can_continue_the_timeline_from_a_later_day(pool) -> None:
    cat = living_catalogue(pool, LIVING, days=3, seed=1)
    sink = CollectSink()
    Simulator(World.create(cat, CFG, seed=0), get_policy("random"), seed=0).run(sink, days=1, first_day=2)
    ev = sink.table().to_pandas()
    assert set(ev["day"]) == {2} and ev["ts"].min() >= 2 * 86_400
    # items shown were live on day 2, not at the start of the schedule
    assert (cat.publish_ts64[ev["item_id"].to_numpy()] > 86_400).mean() > 0.3
