"""intentrank.stats against tea-tasting's own pipeline (its narwhals reader, its Experiment) and
statsmodels on the same per-user data: relative change, its CI and p-value for means, ratio metrics
and CUPED; the standard error and the CUPED variance ratio; the MDE; SRM; Holm and BH."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tea_tasting as tt
from statsmodels.stats.multitest import multipletests

from intentrank.stats import adjust_p_values, compare_arms, compare_experiment, relative_mde, srm_check
from intentrank.stats.calibration import synthetic_users
from intentrank.stats.compare import aggregates

REL = 1e-6


def _users(n: int = 3000, seed: int = 0, effect: float = 1.05) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    treated = rng.permutation(np.arange(n) % 2).astype(bool)
    df = synthetic_users(n, rng, treated, m_clicks=effect, m_time=effect)
    return df.assign(arm=np.where(treated, "b", "a"))


def _tt_metrics(cuped: bool) -> dict[str, tt.RatioOfMeans]:
    if cuped:
        return {
            "ctr": tt.RatioOfMeans("clicks", "impressions", "pre_clicks", "pre_impressions"),
            "clicks": tt.Mean("clicks", "pre_clicks"),
            "time_spent": tt.Mean("time_spent", "pre_time_spent"),
        }
    return {
        "ctr": tt.RatioOfMeans("clicks", "impressions"),
        "bounce_rate": tt.RatioOfMeans("bounces", "clicks"),
        "clicks": tt.Mean("clicks"),
        "time_spent": tt.Mean("time_spent"),
        "conversions": tt.Mean("conversions"),
    }


@pytest.mark.parametrize("cuped", [False, True])
def test_relative_change_ci_and_p_value_equal_tea_tastings(cuped: bool) -> None:
    df = _users()
    covariates = (
        {"ctr": ("pre_clicks", "pre_impressions"), "clicks": "pre_clicks", "time_spent": "pre_time_spent"}
        if cuped
        else None
    )
    means = ["clicks", "time_spent"] if cuped else ["clicks", "time_spent", "conversions"]
    ratios = {"ctr": ("clicks", "impressions")} | ({} if cuped else {"bounce_rate": ("bounces", "clicks")})
    ours = compare_arms(df, "arm", "a", "b", means=means, ratios=ratios, covariates=covariates)
    ours = ours.set_index("metric")
    ref = tt.Experiment(_tt_metrics(cuped), variant="arm").analyze(df, control="a")
    assert set(ref) == set(ours.index)
    for name, r in ref.items():
        row = ours.loc[name]
        assert row["rel_value"] == pytest.approx(r.rel_effect_size, rel=REL)
        assert row["rel_ci_low"] == pytest.approx(r.rel_effect_size_ci_lower, rel=REL)
        assert row["rel_ci_high"] == pytest.approx(r.rel_effect_size_ci_upper, rel=REL)
        assert row["rel_p_value"] == pytest.approx(r.pvalue, rel=REL)
        assert row["diff_value"] == pytest.approx(r.effect_size, rel=REL)
        assert (row["diff_ci_low"], row["diff_ci_high"]) == pytest.approx(
            (r.effect_size_ci_lower, r.effect_size_ci_upper), rel=REL
        )
        # our standard error (which the MDE and the CUPED ratio use) is the scale tea-tasting tests with
        assert row["diff_se"] == pytest.approx(r.effect_size / r.statistic, rel=REL)
        assert row["note"] == ""
    # the levels shown are the observed means, also where the change is CUPED-adjusted
    assert ours.loc["clicks", "control"] == pytest.approx(df.loc[df["arm"] == "a", "clicks"].mean())
    # the data has +5 % clicks: some metric must reach significance, so the comparison is not vacuous
    assert (ours["rel_p_value"] < 0.05).any()


def test_cuped_variance_ratio_is_one_minus_squared_correlation_for_a_mean() -> None:
    """For a per-user mean with θ fitted on the pooled data, Var(y - θx) / Var(y) = 1 - ρ² (the arms
    are exchangeable here, so the per-arm and pooled ρ agree closely)."""
    df = _users(6000, seed=1, effect=1.0)
    cov = {"clicks": "pre_clicks", "time_spent": "pre_time_spent"}
    tab = compare_arms(df, "arm", "a", "b", means=list(cov), covariates=cov).set_index("metric")
    for col in ("clicks", "time_spent"):
        rho = np.corrcoef(df[col], df[f"pre_{col}"])[0, 1]
        assert tab.loc[col, "variance_ratio"] == pytest.approx(1 - rho**2, rel=0.02)
        assert tab.loc[col, "variance_ratio"] < 0.95
        assert tab.loc[col, "covariate"] == f"pre_{col}"
    plain = compare_arms(df, "arm", "a", "b", means=["clicks"])
    assert np.isnan(plain["variance_ratio"]).all() and (plain["covariate"] == "").all()


def test_relative_mde_matches_tea_tasting_power_solver() -> None:
    rng = np.random.default_rng(2)
    for nc, nt in ((2000, 2000), (1500, 4500)):
        x = rng.lognormal(3.0, 1.0, nc)
        agg = aggregates(x[:, None], ["x"])
        se = np.sqrt(agg.var("x") / nc + agg.var("x") / nt)
        ours = relative_mde(se, agg.mean("x"), alpha=0.05, power=0.8)
        solver = tt.Mean("x", n_obs=nc + nt, ratio=nt / nc, alpha=0.05, power=0.8)
        ref = solver.solve_power_from_aggregates(agg, "rel_effect_size")
        assert ours == pytest.approx(ref[0].rel_effect_size, rel=0.01)
    assert np.isnan(relative_mde(0.0, 1.0)) and np.isnan(relative_mde(1.0, 0.0))


def test_srm_two_arms_equals_tea_tasting_sample_ratio() -> None:
    for counts, share in (((5000, 5100), None), ((5000, 5400), None), ((2000, 8100), (0.2, 0.8))):
        df = pd.DataFrame({"arm": np.repeat(["a", "b"], counts)})
        ratio = 1 if share is None else share[1] / share[0]
        ref = tt.SampleRatio(ratio, method="norm", correction=False).analyze(df, "a", "b", variant="arm")
        assert srm_check(counts, share).p_value == pytest.approx(ref.pvalue, rel=1e-9)


def test_holm_and_bh_equal_statsmodels_with_nan_kept() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 20):
        for p in (rng.uniform(size=n), rng.uniform(0, 0.03, size=n), np.round(rng.uniform(size=n), 1)):
            for ours, ref in (("holm", "holm"), ("bh", "fdr_bh")):
                ref_rej, ref_adj, _, _ = multipletests(p, alpha=0.05, method=ref)
                adj, rej = adjust_p_values(p, ours)
                assert adj == pytest.approx(ref_adj) and (rej == ref_rej).all()
    adj, rej = adjust_p_values([0.01, np.nan, 0.04], "bh")
    assert np.isnan(adj[1]) and not rej[1] and adj[0] == pytest.approx(0.02)


def test_compare_experiment_corrects_across_metrics_and_arms() -> None:
    rng = np.random.default_rng(4)
    n = 3000
    arm = rng.permutation(np.array(["ctl", "aa", "b"])[np.arange(n) % 3])
    df = synthetic_users(n, rng, arm == "b", m_clicks=1.3).assign(arm=arm)
    kw = {"means": ["clicks", "time_spent"], "ratios": {"ctr": ("clicks", "impressions")}}
    holm_tab = compare_experiment(df, "arm", "ctl", **kw)
    assert list(holm_tab["arm"].unique()) == ["aa", "b"] and len(holm_tab) == 6
    # one family of 6 tests, not two of 3
    expected, _ = adjust_p_values(holm_tab["rel_p_value"], "holm")
    assert holm_tab["p_adjusted"].to_numpy() == pytest.approx(expected)
    two = compare_arms(df, "arm", "ctl", "b", **kw)
    b_adj = holm_tab.loc[holm_tab["arm"] == "b", "p_adjusted"].to_numpy()
    assert (b_adj >= two["p_adjusted"].to_numpy() - 1e-12).all()
    # the per-arm rows are compare_arms' rows
    b = holm_tab[holm_tab["arm"] == "b"].reset_index(drop=True)
    assert b["rel_ci_low"].to_numpy() == pytest.approx(two["rel_ci_low"].to_numpy())
    bh_tab = compare_experiment(df, "arm", "ctl", correction="bh", **kw)
    assert (bh_tab["p_adjusted"] <= holm_tab["p_adjusted"] + 1e-12).all()
    clicks_b = holm_tab[(holm_tab["arm"] == "b") & (holm_tab["metric"] == "clicks")].iloc[0]
    assert clicks_b["significant_adjusted"]  # +30 % clicks is found after correction
