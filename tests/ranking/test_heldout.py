"""Held-out splits by time (cold start by publication time) and the time-vs-quality diagnostic."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intentrank.errors import DataError
from intentrank.ranking.heldout import time_quality_correlation, time_split

from .conftest import make_events


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    imp, items = make_events(n_users=50, n_items=300, n_slates=400, seed=5)
    return imp.merge(items, on="item_id", how="left")


def test_cold_start_set_is_split_by_publication_time(log: pd.DataFrame) -> None:
    split_ts = 2 * 86_400.0
    s = time_split(log, split_ts)
    assert (s.train["ts"] < split_ts).all() and (s.held_out["ts"] >= split_ts).all()
    assert len(s.train) + len(s.held_out) == len(log) and s.train_end_ts == s.train["ts"].max()
    # cold = published at or after the training data ends, whether or not the id was ever seen
    np.testing.assert_array_equal(s.cold, s.held_out["publish_ts"].to_numpy() >= s.train_end_ts)
    assert 0 < s.cold.sum() < len(s.cold)
    cold_items = set(s.held_out.loc[s.cold, "item_id"])
    assert not cold_items & set(s.train.loc[s.train["publish_ts"] < s.train_end_ts, "item_id"])
    with pytest.raises(DataError, match="empty"):
        time_split(log, -1.0)
    with pytest.raises(DataError, match="publish_ts"):
        time_split(log.drop(columns="publish_ts"), split_ts)


def test_time_quality_correlation_per_category(log: pd.DataFrame) -> None:
    quality = np.random.default_rng(0).random(300)
    good = np.exp(2.0 + quality[log["item_id"].to_numpy()])  # predicted time rising with quality
    out = time_quality_correlation(log, good, quality)
    assert out and all(v["pearson"] > 0.99 and v["items"] >= 10 for v in out.values())
    bad = np.exp(2.0 - quality[log["item_id"].to_numpy()])
    assert all(v["pearson"] < -0.99 for v in time_quality_correlation(log, bad, quality).values())
    with pytest.raises(DataError, match="positive"):
        time_quality_correlation(log, np.zeros(len(log)), quality)
