"""Synthetic events in the store's schema (until/besides the simulator): users with topic affinities,
items with a clickbait score and a hidden quality; clickbait raises clicks and bounces, quality drives
dwell and conversions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intentrank.store.schema import ITEM_COLUMNS, LEGACY_IMPRESSION_COLUMNS

TOPICS = np.array(["news", "sport", "tech", "money", "health", "travel"])


def make_events(
    n_users: int = 300, n_items: int = 400, n_slates: int = 1000, seed: int = 0, slate_size: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(impressions with the columns of a store written before runs existed, items with ITEM_COLUMNS)."""
    rng = np.random.default_rng(seed)
    topic = rng.integers(0, len(TOPICS), n_items)
    cb = rng.beta(1.2, 2.0, n_items)
    quality = rng.random(n_items)
    items = pd.DataFrame(
        {
            "item_id": np.arange(n_items, dtype=np.int64),
            "title": [f"title {i}" for i in range(n_items)],
            "topic": TOPICS[topic],
            "source": np.array(["a", "b", "c", "d"])[rng.integers(0, 4, n_items)],
            "publish_ts": rng.uniform(-86_400, 86_400 * 3, n_items),
            "length": rng.integers(4, 20, n_items).astype(np.int32),
            "clickbait_score": cb,
        }
    )
    aff = rng.dirichlet(np.ones(len(TOPICS)) * 0.5, n_users)
    slate_user = rng.integers(0, n_users, n_slates)
    n = n_slates * slate_size
    user = np.repeat(slate_user, slate_size)
    item = np.concatenate([rng.choice(n_items, slate_size, replace=False) for _ in range(n_slates)])
    pos = np.tile(np.arange(slate_size), n_slates)
    a = aff[user, topic[item]]
    logit = -3.0 + 6.0 * a + 2.5 * cb[item] - 0.05 * pos
    click = rng.random(n) < 1 / (1 + np.exp(-logit))
    bounce = click & (rng.random(n) < 1 / (1 + np.exp(-(-1.0 + 3.0 * cb[item] - 2.0 * quality[item]))))
    dwell = np.where(bounce, rng.uniform(0, 5, n), np.exp(rng.normal(2.5 + 1.5 * quality[item], 0.4, n)))
    dwell = np.where(click, dwell, 0.0)
    conv = click & ~bounce & (rng.random(n) < 1 / (1 + np.exp(-(-3.0 + 3.0 * quality[item] + 2.0 * a))))
    ts = np.repeat(rng.uniform(0, 86_400 * 3, n_slates), slate_size)
    imp = pd.DataFrame(
        {
            "event_id": np.arange(n, dtype=np.int64),
            "ts": ts,
            "day": (ts // 86_400).astype(np.int32),
            "user_id": user.astype(np.int64),
            "session_id": np.repeat(np.arange(n_slates), slate_size).astype(np.int64),
            "slate_id": np.repeat(np.arange(n_slates), slate_size).astype(np.int64),
            "slate_index": np.zeros(n, dtype=np.int16),
            "position": pos.astype(np.int16),
            "item_id": item.astype(np.int64),
            "policy": "random",
            "propensity": np.full(n, 1.0),
            "click": click,
            "dwell_s": dwell,
            "bounce": bounce,
            "conversion": conv,
        }
    )
    assert list(imp.columns) == list(LEGACY_IMPRESSION_COLUMNS)
    assert list(items.columns) == list(ITEM_COLUMNS)
    return imp, items


@pytest.fixture(scope="session")
def events() -> tuple[pd.DataFrame, pd.DataFrame]:
    return make_events()
