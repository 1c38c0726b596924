"""Arm comparison statistics: Welch, delta-method ratios and relative changes, SRM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from intentrank.errors import IntentRankError
from intentrank.stats import (
    compare_arms,
    compare_experiment,
    compare_means,
    compare_ratios,
    holm,
    ratio_estimate,
    srm_check,
)


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


def _two_arms(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> pd.DataFrame:
    na, nb = len(next(iter(a.values()))), len(next(iter(b.values())))
    return pd.DataFrame({"arm": ["a"] * na + ["b"] * nb} | {k: np.r_[a[k], b[k]] for k in a})


def test_zero_means_give_a_note_and_no_interval_instead_of_a_zero_width_one() -> None:
    """A treatment with no heavy-clickbait impression at all: the change is -100 % and the delta method
    has nothing to say about its interval; a control mean of 0: no relative change; both 0 (or no
    variation at all): no test. Every such row says why; none prints a zero-width interval."""
    rng = np.random.default_rng(7)
    n = 400
    heavy = rng.poisson(0.5, n).astype(float)
    imp = rng.poisson(30, 2 * n) + 1.0
    df = _two_arms(
        {"heavy": heavy, "zero": np.zeros(n), "const": np.full(n, 2.0), "imp": imp[:n]}
        | {"clicks": np.zeros(n)},
        {"heavy": np.zeros(n), "zero": np.zeros(n), "const": np.full(n, 3.0), "imp": imp[n:]}
        | {"clicks": rng.binomial(imp[n:].astype(int), 0.1).astype(float)},
    )
    tab = compare_arms(
        df, "arm", "a", "b", means=["heavy", "zero", "const"],
        ratios={"ctr": ("clicks", "imp"), "bounce_rate": ("zero", "clicks")},
    ).set_index("metric")  # fmt: skip
    h = tab.loc["heavy"]
    assert h["rel_value"] == pytest.approx(-1.0) and np.isnan(h["rel_ci_low"]) and np.isnan(h["rel_ci_high"])
    assert "b mean of heavy is 0" in h["note"] and h["rel_p_value"] < 1e-6  # the test of equal means stands
    assert h["diff_ci_high"] < 0  # the absolute difference keeps its Welch interval
    assert "no variation" in tab.loc["zero", "note"] and np.isnan(tab.loc["zero", "rel_p_value"])
    assert "no variation" in tab.loc["const", "note"] and np.isnan(tab.loc["const", "diff_ci_low"])
    ctr = tab.loc["ctr"]  # control has no clicks at all: CTR 0 there, the relative change is undefined
    assert "a mean of ctr is 0" in ctr["note"] and np.isnan(ctr["rel_value"]) and ctr["diff_ci_low"] > 0
    br = tab.loc["bounce_rate"]  # bounces / clicks with no clicks in control: undefined in that arm
    assert "clicks is 0 for every user in a" in br["note"] and np.isnan(br["control"])
    widths = (tab["rel_ci_high"] - tab["rel_ci_low"]).dropna()
    assert (widths > 0).all()
    assert not tab["rel_significant"].loc[["zero", "const"]].any()
    # the single-ratio helper: a constant ratio has no sampling variance, so no interval either
    est = ratio_estimate(np.full(50, 2.0), np.full(50, 20.0))
    assert est.value == pytest.approx(0.1) and np.isnan(est.ci_low) and np.isnan(est.p_value)


def test_covariate_and_correction_errors_are_clear() -> None:
    df = pd.DataFrame({"arm": np.repeat(["a", "b"], 50), "x": np.arange(100.0), "pre": np.arange(100.0) % 7})
    with pytest.raises(IntentRankError, match=r"covariates given for metrics not compared: \['y'\]"):
        compare_arms(df, "arm", "a", "b", means=["x"], covariates={"y": "pre"})
    with pytest.raises(IntentRankError, match="needs one column"):
        compare_arms(df, "arm", "a", "b", means=["x"], covariates={"x": ("pre", "x")})
    with pytest.raises(IntentRankError, match="pair"):
        compare_arms(df, "arm", "a", "b", ratios={"r": ("x", "pre")}, covariates={"r": "pre"})
    with pytest.raises(IntentRankError, match="'nope'"):
        compare_arms(df, "arm", "a", "b", means=["x"], covariates={"x": "nope"})
    with pytest.raises(IntentRankError, match="correction must be one of holm, bh"):
        compare_arms(df, "arm", "a", "b", means=["x"], correction="bonferroni")
    with pytest.raises(IntentRankError, match="power"):
        compare_arms(df, "arm", "a", "b", means=["x"], power=1.5)
    df.loc[3, "pre"] = np.nan
    with pytest.raises(IntentRankError, match=r"NaN or infinite values in \['pre'\]"):
        compare_arms(df, "arm", "a", "b", means=["x"], covariates={"x": "pre"})
    with pytest.raises(IntentRankError, match="control arm 'z'"):
        compare_experiment(df, "arm", "z", means=["x"])


def test_mde_line_shrinks_with_the_sample_and_with_cuped() -> None:
    """The MDE scales as 1/sqrt(n) and drops with a correlated covariate (CUPED's point)."""
    rng = np.random.default_rng(8)
    frames = {}
    for n in (1000, 4000):
        pre = rng.gamma(2.0, 5.0, n)
        arm = rng.permutation(np.arange(n) % 2).astype(str)
        frames[n] = pd.DataFrame({"arm": arm, "pre": pre, "y": rng.poisson(pre).astype(float)})
    small = compare_arms(frames[1000], "arm", "0", "1", means=["y"]).iloc[0]
    big = compare_arms(frames[4000], "arm", "0", "1", means=["y"]).iloc[0]
    assert big["mde_rel"] == pytest.approx(small["mde_rel"] / 2, rel=0.15)
    cuped = compare_arms(frames[4000], "arm", "0", "1", means=["y"], covariates={"y": "pre"}).iloc[0]
    assert cuped["mde_rel"] < 0.8 * big["mde_rel"] and cuped["variance_ratio"] < 0.6
    assert cuped["mde_rel"] == pytest.approx(big["mde_rel"] * np.sqrt(cuped["variance_ratio"]), rel=0.05)
