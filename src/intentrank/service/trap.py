"""The trap detector: CTR at an all-time high while conversions don't move, caught in production.

Per model version and arm the detector keeps each user's impressions, clicks, conversions, time spent
(Σ dwell) and bounces under that version (rolling: users idle longer than ``window_s`` drop out, at most
``max_users`` per version and arm, least recently active dropped). After each acknowledged batch it
compares, per arm, the newest version with the version served before it (each with at least
``min_users`` users), users being the independent units (:mod:`intentrank.stats`):

- CTR = Σclicks / Σimpressions, its relative change with a delta-method interval (``compare_ratios``);
- conversions per user, time spent per user (Welch intervals, ``compare_means``) and the bounce rate.

**Alert** when the new version raises CTR significantly (the relative change's interval at level
``1 - alpha`` lies above 0 and the change is at least ``min_ctr_lift``) while conversions per user fall
or stay flat (their relative change ≤ ``flat_conversion_lift``). It is a log line (WARNING on
``intentrank.service.trap``), the ``intentrank_trap_alert{arm}`` gauge at 1 (and
``intentrank_trap_ctr_lift`` / ``intentrank_trap_conversion_lift``) and the ``trap`` field of
``/v1/models``. The gauge follows each evaluation; the log line and the alert record are raised once
per (arm, version).

The two versions' users are not independent samples in general (the same users are served by both,
before and after a swap) and their traffic differs in time of day; the intervals treat them as
independent, which is approximate — ``alpha`` is strict (0.01) for that reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.stats import norm

from intentrank.errors import IntentRankError
from intentrank.service.config import TrapConfig
from intentrank.stats.compare import compare_means, compare_ratios, ratio_estimate

log = logging.getLogger("intentrank.service.trap")

#: Per-user columns kept: impressions, clicks, conversions, dwell seconds, bounces, last event time.
IMP, CLK, CONV, DWELL, BOUNCE, LAST = range(6)


class TrapDetector:
    """See the module docstring.

    Args:
        config: thresholds and bounds.
        metrics: the service's metrics (gauges set per arm), or None.
        clock: seconds, the time base of ``window_s`` (the service's run clock).
    """

    def __init__(
        self, config: TrapConfig, metrics: Any = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config, self.metrics, self.clock = config, metrics, clock
        self._lock = threading.Lock()
        #: (version, arm) -> user -> [imp, clk, conv, dwell, bounce, last_ts]
        self._users: dict[tuple[int, str], OrderedDict[int, np.ndarray]] = {}
        self._order: list[int] = []  # versions in the order they were first seen
        self.alerts: list[dict[str, Any]] = []
        self.comparisons: dict[str, dict[str, Any]] = {}
        self.firing: dict[str, bool] = {}
        self._alerted: set[tuple[str, int]] = set()  # one alert per (arm, version), however it flaps

    # -- input ------------------------------------------------------------------------------------------
    def observe(
        self,
        version: np.ndarray,
        arm: np.ndarray,
        user: np.ndarray,
        click: np.ndarray,
        conversion: np.ndarray,
        dwell_s: np.ndarray,
        bounce: np.ndarray,
        ts: float | None = None,
    ) -> None:
        """Add acknowledged events (one per impression; arrays of equal length)."""
        now = self.clock() if ts is None else ts
        cols = np.column_stack([np.ones(len(user)), click, conversion, dwell_s, bounce]).astype(np.float64)
        version, arm, user = np.asarray(version), np.asarray(arm, object), np.asarray(user, np.int64)
        pairs = set(zip(version.tolist(), arm.tolist(), strict=True))
        with self._lock:
            for key in sorted(pairs, key=str):
                m = (version == key[0]) & (arm == key[1])
                users, inv = np.unique(user[m], return_inverse=True)
                sums = np.zeros((len(users), 5))
                np.add.at(sums, inv, cols[m])  # one row per distinct user of the batch
                table = self._users.get(key)
                if table is None:
                    table = self._users[key] = OrderedDict()
                    if key[0] not in self._order:
                        self._order.append(key[0])
                        self._drop_old_versions()
                for u, add in zip(users.tolist(), sums, strict=True):
                    row = table.get(u)
                    if row is None:
                        row = table[u] = np.zeros(6)
                        if len(table) > self.config.max_users:
                            table.popitem(last=False)
                    else:
                        table.move_to_end(u)
                    row[:5] += add
                    row[LAST] = now

    def _drop_old_versions(self) -> None:
        keep = set(self._order[-self.config.keep_versions :])
        self._order = [v for v in self._order if v in keep]
        for key in [k for k in self._users if k[0] not in keep]:
            del self._users[key]

    # -- evaluation -------------------------------------------------------------------------------------
    def _frame(self, version: int, arm: str, now: float) -> np.ndarray:
        table = self._users.get((version, arm))
        if not table:
            return np.zeros((0, 6))
        a = np.array(list(table.values()))
        return a[a[:, LAST] >= now - self.config.window_s]

    def summary(self, a: np.ndarray) -> dict[str, Any]:
        """Per-user KPIs of one (version, arm) with (1 - alpha) intervals."""
        alpha = self.config.alpha
        out: dict[str, Any] = {"users": len(a), "impressions": int(a[:, IMP].sum()) if len(a) else 0}
        if len(a) < 2 or a[:, IMP].sum() == 0:
            return out
        ctr = ratio_estimate(a[:, CLK], a[:, IMP], alpha)
        out["ctr"] = [ctr.value, ctr.ci_low, ctr.ci_high]
        for name, col in (("conversions_per_user", CONV), ("time_per_user_s", DWELL)):
            v = a[:, col]
            se = float(v.std(ddof=1) / np.sqrt(len(v)))
            z = float(norm.ppf(1 - alpha / 2))
            out[name] = [float(v.mean()), float(v.mean() - z * se), float(v.mean() + z * se)]
        if a[:, CLK].sum() > 0:
            br = ratio_estimate(a[:, BOUNCE], a[:, CLK], alpha)
            out["bounce_rate"] = [br.value, br.ci_low, br.ci_high]
        return out

    def evaluate(self, now: float | None = None) -> list[dict[str, Any]]:
        """Compare, per arm, the newest version with enough users against the one before; returns the
        alerts raised by this call (also logged, gauged and kept)."""
        now = self.clock() if now is None else now
        cfg = self.config
        raised: list[dict[str, Any]] = []
        with self._lock:
            arms = sorted({a for _, a in self._users})
            for arm in arms:
                versions = [v for v in self._order if (v, arm) in self._users]
                frames = {v: self._frame(v, arm, now) for v in versions}
                ready = [v for v in versions if len(frames[v]) >= cfg.min_users]
                if len(ready) < 2:
                    continue
                new, old = ready[-1], ready[-2]
                a, b = frames[old], frames[new]
                try:
                    ctr = compare_ratios(a[:, CLK], a[:, IMP], b[:, CLK], b[:, IMP], "ctr", cfg.alpha)
                    conv = compare_means(a[:, CONV], b[:, CONV], "conversions_per_user", cfg.alpha)
                    tim = compare_means(a[:, DWELL], b[:, DWELL], "time_per_user_s", cfg.alpha)
                except IntentRankError:
                    continue
                fire = bool(
                    ctr.rel.ci_low > 0
                    and ctr.rel.value >= cfg.min_ctr_lift
                    and conv.rel.value <= cfg.flat_conversion_lift
                )
                comp = {
                    "arm": arm, "baseline_version": old, "version": new,
                    "ctr_rel": [ctr.rel.value, ctr.rel.ci_low, ctr.rel.ci_high],
                    "conversions_per_user_rel": [conv.rel.value, conv.rel.ci_low, conv.rel.ci_high],
                    "time_per_user_rel": [tim.rel.value, tim.rel.ci_low, tim.rel.ci_high],
                    "baseline": self.summary(a), "current": self.summary(b), "alert": fire, "at": now,
                }  # fmt: skip
                already = (arm, new) in self._alerted
                self.comparisons[arm] = comp
                self.firing[arm] = fire
                if self.metrics is not None:
                    self.metrics.trap(arm, fire, ctr.rel.value, conv.rel.value)
                if fire and not already:
                    self._alerted.add((arm, new))
                    alert = {k: comp[k] for k in ("arm", "baseline_version", "version", "ctr_rel",
                                                  "conversions_per_user_rel", "at")}  # fmt: skip
                    self.alerts.append(alert)
                    del self.alerts[: -cfg.keep_alerts]
                    raised.append(alert)
                    log.warning(
                        "TRAP ALERT arm=%s: model v%d raised CTR by %+.1f%% [%+.1f%%, %+.1f%%] vs v%d while "
                        "conversions per user changed %+.1f%% [%+.1f%%, %+.1f%%]",
                        arm, new, 100 * ctr.rel.value, 100 * ctr.rel.ci_low, 100 * ctr.rel.ci_high, old,
                        100 * conv.rel.value, 100 * conv.rel.ci_low, 100 * conv.rel.ci_high,
                    )  # fmt: skip
        return raised

    def report(self) -> dict[str, Any]:
        """For ``/v1/models``: per arm the last comparison, whether the alert is raised, past alerts."""
        with self._lock:
            return {
                "firing": dict(self.firing),
                "comparisons": dict(self.comparisons),
                "alerts": list(self.alerts),
                "config": self.config.model_dump(),
            }
