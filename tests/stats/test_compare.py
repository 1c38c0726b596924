"""Arm comparison statistics: Welch, delta-method ratios and relative changes, SRM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from intentrank.errors import IntentRankError
from intentrank.stats import compare_arms, compare_means, compare_ratios, holm, ratio_estimate, srm_check


def test_welch_difference_matches_statsmodels() -> None:
    rng = np.random.default_rng(0)
    c, t = rng.normal(1.0, 1.0, 400), rng.normal(1.3, 2.0, 300)
    res = compare_means(c, t, "m")
    cm = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    lo, hi = cm.tconfint_diff(alpha=0.05, usevar="unequal")
    assert res.diff.value == pytest.approx(t.mean() - c.mean())
    assert (res.diff.ci_low, res.diff.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    assert res.diff.excludes_zero


def test_relative_change_delta_method_covers_truth() -> None:
    """Over repeated A/B draws with a true +10% lift, the 95% CI covers 0.10 about 95% of the time."""
    rng = np.random.default_rng(1)
    hits = 0
    for _ in range(300):
        c, t = rng.exponential(2.0, 2000), rng.exponential(2.2, 2000)
        rel = compare_means(c, t).rel
        hits += rel.ci_low <= 0.10 <= rel.ci_high
    assert 0.91 <= hits / 300 <= 0.99


def test_ratio_with_unit_denominator_is_a_mean() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(3.0, 1.0, 500)
    est = ratio_estimate(x, np.ones_like(x))
    assert est.value == pytest.approx(x.mean())
    assert est.se == pytest.approx(x.std(ddof=1) / np.sqrt(x.size))


def test_ratio_metric_aa_and_real_effect() -> None:
    rng = np.random.default_rng(3)
    imp_c, imp_t = rng.poisson(50, 3000) + 1, rng.poisson(50, 3000) + 1
    aa = compare_ratios(rng.binomial(imp_c, 0.1), imp_c, rng.binomial(imp_t, 0.1), imp_t, "ctr")
    assert not aa.rel.excludes_zero
    ab = compare_ratios(rng.binomial(imp_c, 0.1), imp_c, rng.binomial(imp_t, 0.12), imp_t, "ctr")
    assert ab.rel.excludes_zero and 0.15 < ab.rel.value < 0.25


def test_compare_arms_table_and_errors() -> None:
    rng = np.random.default_rng(4)
    df = pd.DataFrame(
        {
            "arm": np.repeat(["a", "b"], 100),
            "clicks": rng.poisson(5, 200),
            "impressions": rng.poisson(50, 200) + 1,
        }
    )
    tab = compare_arms(df, "arm", "a", "b", means=["clicks"], ratios={"ctr": ("clicks", "impressions")})
    assert list(tab["metric"]) == ["ctr", "clicks"]
    assert {"rel_ci_low", "rel_ci_high", "diff_p_value", "rel_significant"} <= set(tab.columns)
    with pytest.raises(IntentRankError, match="nope"):
        compare_arms(df, "arm", "a", "b", means=["nope"])
    with pytest.raises(IntentRankError, match="arm 'c'"):
        compare_arms(df, "arm", "a", "c", means=["clicks"])
    with pytest.raises(IntentRankError, match="NaN"):
        compare_means(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, 3.0]))


def test_holm_adjustment_matches_the_step_down_rule_and_keeps_nan() -> None:
    adj, rej = holm([0.01, 0.04, np.nan, 0.03, 0.2])
    # sorted 0.01, 0.03, 0.04, 0.2 over m = 4: 0.04, 0.09, max(0.09, 0.08), max(0.09, 0.2)
    assert adj[[0, 3, 1, 4]] == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert np.isnan(adj[2]) and list(rej) == [True, False, False, False, False]
    rng = np.random.default_rng(6)
    for n in (1, 2, 7, 13):
        for p in (rng.uniform(size=n), rng.uniform(0, 0.02, size=n), np.round(rng.uniform(size=n), 1)):
            ref_rej, ref_adj, _, _ = multipletests(p, alpha=0.05, method="holm")
            adj, rej = holm(p)
            assert adj == pytest.approx(ref_adj) and (rej == ref_rej).all()


def test_holm_controls_family_wise_error_in_aa_tables() -> None:
    """Families of 12 null p-values: unadjusted, one crosses alpha in about 1 - 0.95^12 = 46% of
    families; Holm keeps that at or below 5%. And compare_arms carries the adjusted columns."""
    rng = np.random.default_rng(5)
    p = rng.uniform(size=(4000, 12))
    raw = (p < 0.05).any(1).mean()
    fwer = np.mean([holm(row)[1].any() for row in p])
    assert 0.42 < raw < 0.50 and fwer <= 0.06
    df = pd.DataFrame(
        {"arm": np.repeat(["a", "b"], 200)} | {f"m{k}": rng.normal(size=400) for k in range(12)}
    )
    tab = compare_arms(df, "arm", "a", "b", means=[f"m{k}" for k in range(12)])
    assert (tab["diff_p_holm"] >= tab["diff_p_value"] - 1e-12).all()
    assert (tab["rel_significant_holm"] <= tab["rel_significant"]).all()


def test_srm_check() -> None:
    assert not srm_check([5000, 5030]).mismatch
    assert srm_check([5000, 5400]).mismatch
    assert not srm_check([2000, 8000], [0.2, 0.8]).mismatch
    with pytest.raises(IntentRankError):
        srm_check([10])
    with pytest.raises(IntentRankError):
        srm_check([10, -1])
    with pytest.raises(IntentRankError):
        srm_check([10, 10], [1.0])
