"""Calibration of the arm comparison on synthetic per-user data with known truth.

No simulator: users are drawn with the shapes real feed logs have, from latent per-user traits that
persist between a pre-period and the experiment period (which is what CUPED exploits):

* activity ``a ~ Gamma(2, 1/2)``: impressions ``~ Poisson(40 a)`` (negative binomial over users);
* click propensity ``ctr ~ Beta(2, 18)``: clicks ``~ Binomial(impressions, ctr · m_clicks)``;
* bounce propensity ``~ Beta(2, 6)``: bounces ``~ Binomial(clicks, ·)`` (bounce rate = Σbounces/Σclicks);
* time spent ``= m_time · impressions · exp(μ + ε)``, ``μ ~ N(log 3, 0.5)``, ``ε ~ N(0, 0.7)`` (lognormal);
* conversions: zero-inflated, 25 % of users can convert, ``~ Poisson(0.02 · impressions · r)``;
* heavy-clickbait impressions ``~ Binomial(impressions, h)``, ``h ~ Beta(0.3, 10)`` (mostly zeros).

A treatment multiplies the click propensity by ``m_clicks`` and time spent by ``m_time``, so the true
relative effects are exact: clicks, CTR ``m_clicks - 1``; time spent ``m_time - 1``; impressions,
bounce rate, conversions, heavy-clickbait impressions 0 (up to clipping a propensity at 1, which
Beta(2, 18) makes negligible).

:func:`calibrate` runs A/A experiments (a control and two A/A copies: false-positive rate per metric,
and the family-wise rate over metrics × arms raw, with Holm and with BH) and A/B experiments with the
known effect (coverage of the 95 % interval, power, the CUPED variance ratio, the MDE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intentrank.errors import IntentRankError
from intentrank.stats.compare import MetricSpec, aggregates, compare_metric
from intentrank.stats.multiple import adjust_p_values

#: The calibrated metrics: per-user means, ratio metrics, and CUPED versions on the pre-period.
CALIBRATION_METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("impressions", "impressions"),
    MetricSpec("clicks", "clicks"),
    MetricSpec("time_spent", "time_spent"),
    MetricSpec("conversions", "conversions"),
    MetricSpec("impressions_heavy_cb", "impressions_heavy_cb"),
    MetricSpec("ctr", "clicks", "impressions"),
    MetricSpec("bounce_rate", "bounces", "clicks"),
    MetricSpec("clicks (CUPED)", "clicks", None, "pre_clicks"),
    MetricSpec("time_spent (CUPED)", "time_spent", None, "pre_time_spent"),
    MetricSpec("ctr (CUPED)", "clicks", "impressions", "pre_clicks", "pre_impressions"),
)


def synthetic_users(
    n: int,
    rng: np.random.Generator,
    treated: np.ndarray | None = None,
    m_clicks: float = 1.0,
    m_time: float = 1.0,
) -> pd.DataFrame:
    """``n`` users' experiment-period metrics and pre-period covariates (``pre_*``).

    Args:
        n: Users.
        rng: Random generator (the only source of randomness).
        treated: (n,) bool, users who get the treatment (default: none).
        m_clicks: Multiplier of a treated user's click propensity.
        m_time: Multiplier of a treated user's time spent.

    Returns:
        One row per user: ``impressions, clicks, bounces, time_spent, conversions,
        impressions_heavy_cb`` and the same with a ``pre_`` prefix for the pre-period.

    Raises:
        IntentRankError: Fewer than 4 users.

    Example:
        >>> df = synthetic_users(1000, np.random.default_rng(0))
        >>> df.shape, bool((df["clicks"] <= df["impressions"]).all())
        ((1000, 12), True)
    """
    if n < 4:
        raise IntentRankError(f"synthetic_users: need at least 4 users, got {n}")
    activity = rng.gamma(2.0, 0.5, n)
    ctr = rng.beta(2.0, 18.0, n)
    bounce = rng.beta(2.0, 6.0, n)
    mu = rng.normal(np.log(3.0), 0.5, n)
    heavy = rng.beta(0.3, 10.0, n)
    converter = rng.random(n) < 0.25
    conv_rate = rng.gamma(2.0, 0.5, n)
    t = np.zeros(n, bool) if treated is None else np.asarray(treated, bool)

    def period(mc: np.ndarray, mt: np.ndarray) -> dict[str, np.ndarray]:
        imp = rng.poisson(40.0 * activity)
        clicks = rng.binomial(imp, np.minimum(ctr * mc, 1.0))
        return {
            "impressions": imp,
            "clicks": clicks,
            "bounces": rng.binomial(clicks, bounce),
            "time_spent": mt * imp * np.exp(mu + rng.normal(0.0, 0.7, n)),
            "conversions": converter * rng.poisson(0.02 * imp * conv_rate),
            "impressions_heavy_cb": rng.binomial(imp, heavy),
        }

    pre = period(np.ones(n), np.ones(n))
    post = period(np.where(t, m_clicks, 1.0), np.where(t, m_time, 1.0))
    return pd.DataFrame(post | {f"pre_{k}": v for k, v in pre.items()})


def true_effects(m_clicks: float, m_time: float) -> dict[str, float]:
    """The exact relative effect of each calibration metric under the treatment (see the module doc).

    Example:
        >>> eff = true_effects(1.05, 1.1)
        >>> round(eff["ctr (CUPED)"], 3), round(eff["time_spent"], 3), eff["bounce_rate"]
        (0.05, 0.1, 0.0)
    """
    eff = {"clicks": m_clicks - 1, "ctr": m_clicks - 1, "time_spent": m_time - 1}
    return {m.name: eff.get(m.name.split(" ")[0], 0.0) for m in CALIBRATION_METRICS}


@dataclass
class CalibrationResult:
    """Per-metric table and the family-wise false-positive rates of the A/A runs."""

    table: pd.DataFrame
    family: dict[str, float]
    settings: dict[str, float | int]


def _columns(specs: Sequence[MetricSpec]) -> list[str]:
    return list(dict.fromkeys(c for s in specs for c in s.columns))


def calibrate(
    n_users: int = 20_000,
    runs: int = 300,
    seed: int = 0,
    m_clicks: float = 1.05,
    m_time: float = 1.05,
    alpha: float = 0.05,
    specs: Sequence[MetricSpec] = CALIBRATION_METRICS,
    aa_arms: int = 3,
    ab_runs: int | None = None,
) -> CalibrationResult:
    """``runs`` A/A experiments (``aa_arms`` equal arms: a control and ``aa_arms - 1`` copies) and
    ``ab_runs`` (default ``runs``) A/B experiments (two halves, the treatment with the effects) on fresh
    synthetic users.

    Table columns per metric: ``fpr`` (share of A/A comparisons with p < alpha), ``true_effect``,
    ``coverage`` (share of A/B intervals of the relative change covering it), ``rejection`` (share of
    A/B p < alpha: power where the effect is not 0, false-positive rate where it is), ``mean_rel_ci_width``,
    ``variance_ratio`` (mean CUPED variance ratio), ``mde_rel`` (mean relative MDE at 80 % power).

    Args:
        n_users: Users per experiment.
        runs: A/A experiments.
        seed: Seed of the one random generator.
        m_clicks: Treatment multiplier of the click propensity.
        m_time: Treatment multiplier of time spent.
        alpha: Test level.
        specs: Metrics to calibrate.
        aa_arms: Arms of each A/A experiment (a control and ``aa_arms - 1`` copies).
        ab_runs: A/B experiments (default ``runs``).

    Returns:
        :class:`CalibrationResult`: the table, the A/A family-wise rates (``raw``, ``holm``, ``bh``) and
        the settings.

    Raises:
        IntentRankError: ``runs`` or ``ab_runs`` below 1, or ``aa_arms`` below 2.

    Example:
        >>> res = calibrate(2000, runs=3, seed=0, specs=CALIBRATION_METRICS[:2])
        >>> list(res.table["metric"]), sorted(res.family)
        (['impressions', 'clicks'], ['bh', 'holm', 'raw'])
    """
    ab_runs = runs if ab_runs is None else ab_runs
    if runs < 1 or ab_runs < 1 or aa_arms < 2:
        raise IntentRankError(
            f"calibrate: need runs, ab_runs >= 1 and aa_arms >= 2, got {runs}, {ab_runs}, {aa_arms}"
        )
    rng = np.random.default_rng(seed)
    cols = _columns(specs)
    names = [s.name for s in specs]
    aa_reject = np.zeros(len(specs))
    aa_total = 0
    fam = {"raw": 0, "holm": 0, "bh": 0}
    for _ in range(runs):
        df = synthetic_users(n_users, rng)
        arm = rng.permutation(np.arange(n_users) % aa_arms)
        values = df[cols].to_numpy(np.float64)
        aggs = [aggregates(values[arm == k], cols) for k in range(aa_arms)]
        p = np.array(
            [
                [compare_metric(s, aggs[0], aggs[k], alpha).rel.p_value for s in specs]
                for k in range(1, aa_arms)
            ]
        )
        aa_reject += (p < alpha).sum(axis=0)
        aa_total += aa_arms - 1
        fam["raw"] += bool((p < alpha).any())
        for method in ("holm", "bh"):
            fam[method] += bool(adjust_p_values(p.ravel(), method, alpha)[1].any())

    truth = true_effects(m_clicks, m_time)
    cover = np.zeros(len(specs))
    reject = np.zeros(len(specs))
    width = np.zeros(len(specs))
    vratio = np.zeros(len(specs))
    mde = np.zeros(len(specs))
    for _ in range(ab_runs):
        treated = rng.permutation(np.arange(n_users) % 2).astype(bool)
        df = synthetic_users(n_users, rng, treated, m_clicks, m_time)
        values = df[cols].to_numpy(np.float64)
        ac, at = aggregates(values[~treated], cols), aggregates(values[treated], cols)
        for i, s in enumerate(specs):
            res = compare_metric(s, ac, at, alpha)
            cover[i] += res.rel.ci_low <= truth.get(s.name, 0.0) <= res.rel.ci_high
            reject[i] += res.rel.p_value < alpha
            width[i] += res.rel.ci_high - res.rel.ci_low
            vratio[i] += res.variance_ratio
            mde[i] += res.mde_rel
    table = pd.DataFrame(
        {
            "metric": names,
            "fpr": aa_reject / aa_total,
            "true_effect": [truth.get(n, 0.0) for n in names],
            "coverage": cover / ab_runs,
            "rejection": reject / ab_runs,
            "mean_rel_ci_width": width / ab_runs,
            "variance_ratio": vratio / ab_runs,
            "mde_rel": mde / ab_runs,
        }
    )
    settings = {"n_users": n_users, "runs": runs, "ab_runs": ab_runs, "seed": seed, "alpha": alpha}
    settings["aa_arms"] = aa_arms
    return CalibrationResult(table, {k: v / runs for k, v in fam.items()}, settings)
