"""UserHistory.update's NumPy per-user sums equal a pandas groupby over all the events fed so far."""

from __future__ import annotations

import numpy as np
import pandas as pd

from intentrank.ranking.features import SECONDS_PER_DAY
from intentrank.ranking.history import UserHistory

from .conftest import make_events


def test_update_in_windows_equals_groupby_of_everything() -> None:
    imp, items = make_events(n_users=60, n_items=150, n_slates=600, seed=5)
    frame = imp.merge(items, on="item_id", how="left").sort_values("ts", kind="stable")
    frame["ts"] = frame["ts"] * 7.0  # spread over several days: active days and last day matter
    h = UserHistory()
    windows = np.array_split(np.arange(len(frame)), 9)
    users_seen: set[int] = set()
    for w in windows:
        h.update(frame.iloc[w])
        users_seen |= set(frame["user_id"].iloc[w].tolist())
        assert len(h) == len(users_seen)
    assert h._users.index.is_monotonic_increasing
    day = np.floor(frame["ts"] / SECONDS_PER_DAY)
    ref = pd.DataFrame({"u": frame["user_id"], "clk": frame["click"].astype(float), "day": day,
                        "lc": np.where(frame["click"], frame["ts"], -np.inf)}).groupby("u").agg(
        impressions=("clk", "size"), clicks=("clk", "sum"), last_click_ts=("lc", "max"),
        active_days=("day", "nunique"), last_day=("day", "max"),
    )  # fmt: skip
    got = h._users.loc[ref.index]
    for c in ref.columns:
        np.testing.assert_array_equal(got[c].to_numpy(np.float64), ref[c].to_numpy(np.float64), err_msg=c)
    users = ref.index.to_numpy()
    np.testing.assert_array_equal(h.last_day(np.r_[users, 10**9]), np.r_[ref["last_day"].to_numpy(), -1.0])
