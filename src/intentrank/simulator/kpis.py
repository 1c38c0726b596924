"""Per-user KPIs, accumulated online while simulating (no need to keep the event log in memory)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from intentrank.clickbait.categories import CATEGORIES

#: KPI columns compared as per-user means, and ratio KPIs as (numerator, denominator).
MEAN_KPIS: tuple[str, ...] = (
    "impressions",
    "clicks",
    "time_spent_s",
    "conversions",
    "bounces",
    "sessions",
    "return_rate",
    *(f"impressions_{c}" for c in CATEGORIES),
)
RATIO_KPIS: dict[str, tuple[str, str]] = {
    "ctr": ("clicks", "impressions"),
    "bounce_rate": ("bounces", "clicks"),
    "conversion_rate": ("conversions", "clicks"),
}


class KPIAccumulator:
    """Per-user counters; ``frame()`` turns them into the per-user KPI table."""

    def __init__(self, n_users: int, days: int) -> None:
        self.days = days
        z64 = lambda: np.zeros(n_users, dtype=np.int64)  # noqa: E731
        self.impressions, self.clicks, self.bounces, self.conversions = z64(), z64(), z64(), z64()
        self.satisfied, self.sessions, self.slates = z64(), z64(), z64()
        self.active_days, self.returned_days = z64(), z64()
        self.time_spent_s = np.zeros(n_users, dtype=np.float64)
        self.by_category = np.zeros((n_users, len(CATEGORIES)), dtype=np.int64)

    def add_slates(
        self,
        u: np.ndarray,
        slate: np.ndarray,
        click: np.ndarray,
        n_click: np.ndarray,
        n_bounce: np.ndarray,
        n_conv: np.ndarray,
        n_sat: np.ndarray,
        dwell: np.ndarray,
        category: np.ndarray,
    ) -> None:
        """Add one step's slates (``u`` are distinct users, one slate each)."""
        S = slate.shape[1]
        self.impressions[u] += S
        self.slates[u] += 1
        self.clicks[u] += n_click
        self.bounces[u] += n_bounce.astype(np.int64)
        self.conversions[u] += n_conv.astype(np.int64)
        self.satisfied[u] += n_sat.astype(np.int64)
        self.time_spent_s[u] += dwell
        cats = category[slate]
        for c in range(self.by_category.shape[1]):
            self.by_category[u, c] += (cats == c).sum(axis=1)

    def snapshot(self) -> KPIAccumulator:
        """A copy of the counters as they are now (take one at each day's end for per-day KPIs)."""
        out = KPIAccumulator.__new__(KPIAccumulator)
        out.__dict__ = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}
        return out

    def since(self, earlier: KPIAccumulator | None, days: int = 1) -> KPIAccumulator:
        """The counters accumulated after ``earlier`` (a snapshot; None = from the start), as a
        ``days``-day accumulator: e.g. one day of a run from two consecutive end-of-day snapshots."""
        out = self.snapshot()
        out.days = days
        if earlier is not None:
            for k, v in out.__dict__.items():
                if isinstance(v, np.ndarray):
                    v -= earlier.__dict__[k]
        return out

    def frame(self, arms: np.ndarray | None = None, arm_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Per-user KPI table: one row per user (users never active have zeros)."""
        df = pd.DataFrame(
            {
                "user_id": np.arange(len(self.impressions), dtype=np.int64),
                "impressions": self.impressions,
                "clicks": self.clicks,
                "time_spent_s": self.time_spent_s,
                "conversions": self.conversions,
                "bounces": self.bounces,
                "satisfied_reads": self.satisfied,
                "sessions": self.sessions,
                "slates": self.slates,
                "active_days": self.active_days,
                "return_rate": self.returned_days / max(self.days - 1, 1),
            }
        )
        for c, name in enumerate(CATEGORIES):
            df[f"impressions_{name}"] = self.by_category[:, c]
        if arms is not None:
            names = np.asarray(
                arm_names if arm_names is not None else [str(i) for i in range(arms.max() + 1)]
            )
            df.insert(1, "arm", names[arms])
        return df


def summarise(per_user: pd.DataFrame) -> dict[str, float | int]:
    """Summary of a per-user KPI table: users, per-user means and ratio KPIs (Σnum / Σden)."""
    out: dict[str, float | int] = {"users": len(per_user)}
    for name, (num, den) in RATIO_KPIS.items():
        d = per_user[den].sum()
        out[name] = float(per_user[num].sum() / d) if d else float("nan")
    for col in MEAN_KPIS:
        out[f"{col}_per_user"] = float(per_user[col].mean())
    out["total_impressions"] = int(per_user["impressions"].sum())
    return out
