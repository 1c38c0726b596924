"""A fast version of bench/stats_calibration.py: on synthetic users with known truth, the A/A
false-positive rate of every metric kind (mean, zero-heavy mean, ratio, CUPED) is near α, the 95 %
interval of the relative change covers a known +10 % effect, and CUPED shrinks the variance."""

from __future__ import annotations

import numpy as np
import pytest

from intentrank.errors import IntentRankError
from intentrank.stats.calibration import CALIBRATION_METRICS, calibrate, synthetic_users, true_effects

FAST = [m for m in CALIBRATION_METRICS if m.name in {"impressions_heavy_cb", "bounce_rate", "ctr (CUPED)"}]


@pytest.mark.slow
def test_fast_calibration_false_positives_coverage_and_cuped() -> None:
    res = calibrate(2000, runs=200, ab_runs=100, seed=11, m_clicks=1.1, m_time=1.1, specs=FAST, aa_arms=2)
    tab = res.table.set_index("metric")
    assert list(tab.index) == [m.name for m in FAST]
    assert tab["fpr"].between(0.01, 0.10).all(), tab["fpr"]
    assert (tab["coverage"] >= 0.88).all(), tab["coverage"]
    # power where the effect is real (+10 % CTR with CUPED at 2,000 users), and none where it is not
    assert tab.loc["ctr (CUPED)", "rejection"] > 0.5 and tab.loc["bounce_rate", "rejection"] < 0.12
    assert tab.loc["ctr (CUPED)", "variance_ratio"] < 0.8
    assert np.isnan(tab.loc["bounce_rate", "variance_ratio"])
    assert res.family["holm"] <= res.family["raw"] and res.family["bh"] <= res.family["raw"]


def test_synthetic_users_carry_the_injected_effect() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    treated = np.arange(n) % 2 == 1
    df = synthetic_users(n, rng, treated, m_clicks=1.2, m_time=1.5)
    t, c = df[treated].mean(), df[~treated].mean()
    assert t["clicks"] / c["clicks"] == pytest.approx(1.2, abs=0.02)
    assert t["time_spent"] / c["time_spent"] == pytest.approx(1.5, abs=0.05)
    assert t["impressions"] / c["impressions"] == pytest.approx(1.0, abs=0.01)
    assert (df["conversions"] == 0).mean() > 0.75 and (df["impressions_heavy_cb"] == 0).mean() > 0.3
    assert np.corrcoef(df["clicks"], df["pre_clicks"])[0, 1] > 0.5
    assert true_effects(1.2, 1.5)["ctr (CUPED)"] == pytest.approx(0.2)
    with pytest.raises(IntentRankError):
        synthetic_users(2, rng)
