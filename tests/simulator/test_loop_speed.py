"""The loop's fast paths keep what they replace: the window read equals load_events from the store, the
served (batched) scores equal the generic row builder's in the loop, and days are reported as they end."""

from __future__ import annotations

import numpy as np
import pandas as pd

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.history import UserHistory
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.loop import run_loop
from intentrank.simulator.registry import get_policy
from intentrank.store import EventStore

from .test_loop import SMALL, world_and_log  # noqa: F401 (the module's world fixture)


def test_window_read_without_the_item_table_equals_load_events(world_and_log, tmp_path) -> None:  # noqa: F811
    world, log = world_and_log
    items = world.catalogue.items
    with EventStore(tmp_path / "ev.duckdb") as store:
        store.write_items(items)
        store.append_impressions(log.drop(columns=[c for c in ("event_id",) if c in log.columns]))
        a, b = 100, int(store.watermark()) - 50
        ref = load_events(store, items, since_event_id=a, until_event_id=b, runs="all")
        got = load_events(store.read_impressions(a, b, "all"), items)
    pd.testing.assert_frame_equal(got, ref)


def test_batched_and_generic_scoring_serve_the_same_loop(world_and_log, tmp_path) -> None:  # noqa: F811
    world, _ = world_and_log
    model = MultiTaskRanker(RankerConfig.model_validate(SMALL)).eval()
    logs, days = [], []
    for fast in (True, False):
        history = UserHistory()
        pol = RankerPolicy(model, history=history, fast=fast, name="ranker")
        with EventStore(tmp_path / f"{fast}.duckdb") as store:
            store.write_items(world.catalogue.items)
            run_loop(world, {"ranker": pol, "truth": get_policy("truth_formula")}, store, seed=3,
                           on_day=lambda d, r: days.append((d.day, len(r.day_frame(d.day)))))  # fmt: skip
            logs.append(store.read_impressions())
        assert history.events > 0  # the served history was fed window by window
    cols = ["user_id", "item_id", "position", "click", "dwell_s"]
    same = (logs[0][cols].to_numpy() == logs[1][cols].to_numpy()).all(axis=1).mean()
    assert len(logs[0]) == len(logs[1]) and same > 0.99  # float32 rounding may swap a near tie, rarely
    assert days == [(0, len(world.users))] * 2
    assert np.isfinite(logs[0]["dwell_s"]).all()
