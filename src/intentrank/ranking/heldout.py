"""Held-out evaluation splits and intent diagnostics of a trained ranker.

- :func:`time_split`: train on the events before a time, hold out those after; the held-out events of items
  *published* after the training data ends are the cold-start set (split by publication time, not by
  whether the id happens to occur in training).
- :func:`time_quality_correlation`: within each clickbait category of the public score, how an item's
  mean predicted time-given-click tracks its true quality (the simulator's hidden truth): a learner of
  intent ranks a good read above a bad one of the same clickbaitiness, not just "less clickbait first".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from intentrank.clickbait import CATEGORIES, categorize
from intentrank.errors import DataError


@dataclass
class TimeSplit:
    """``train`` (events before ``split_ts``), ``held_out`` (from it on; fresh index) and ``cold`` (bool per
    held-out row: its item was published at or after the last training event)."""

    train: pd.DataFrame
    held_out: pd.DataFrame
    cold: np.ndarray
    train_end_ts: float


def time_split(events: pd.DataFrame, split_ts: float) -> TimeSplit:
    """Split a joined event frame (``ts``, ``publish_ts``) at ``split_ts``. Features that need the past
    (user/item history) should be computed on the whole frame before splitting."""
    missing = [c for c in ("ts", "publish_ts") if c not in events.columns]
    if missing:
        raise DataError(f"time split: the event frame lacks {missing} (join the items)")
    ts = events["ts"].to_numpy(np.float64)
    before = ts < split_ts
    if not before.any() or before.all():
        raise DataError(f"time split at {split_ts}: one side is empty (events span {ts.min()}..{ts.max()})")
    train, held = events[before], events[~before].reset_index(drop=True)
    end = float(ts[before].max())
    cold = held["publish_ts"].to_numpy(np.float64) >= end
    return TimeSplit(train, held, cold, end)


def time_quality_correlation(
    events: pd.DataFrame, pred_time: np.ndarray, quality: np.ndarray, min_items: int = 10
) -> dict[str, dict[str, Any]]:
    """Per category of the public clickbait score (non / light / heavy): Pearson and Spearman correlation,
    over the items in ``events``, of the item's mean predicted log time with its true ``quality``
    (indexed by item id); ``items`` = n. Categories with fewer than ``min_items`` items are left out."""
    pred_time = np.asarray(pred_time, np.float64)
    if len(pred_time) != len(events) or not (pred_time > 0).all():
        raise DataError("time-quality correlation: one positive predicted time per event is needed")
    per_item = pd.Series(np.log(pred_time)).groupby(events["item_id"].to_numpy()).mean()
    ids = per_item.index.to_numpy()
    score = events.drop_duplicates("item_id").set_index("item_id").loc[ids, "clickbait_score"]
    cat = categorize(score.to_numpy())
    out: dict[str, dict[str, Any]] = {}
    for k, name in enumerate(CATEGORIES):
        m = cat == k
        if m.sum() < min_items:
            continue
        x, q = per_item.to_numpy()[m], np.asarray(quality)[ids[m]]
        out[name] = {"items": int(m.sum()), "pearson": round(float(np.corrcoef(x, q)[0, 1]), 3),
                     "spearman": round(float(stats.spearmanr(x, q).statistic), 3)}  # fmt: skip
    return out
