"""Per-user metric comparison of two arms with confidence intervals.

Every metric is computed per user (the randomisation unit), so observations are independent.

* Mean metrics (clicks per user, time spent per user): the absolute difference uses Welch's t
  interval (unequal variances); the relative change ``mean_t / mean_c - 1`` uses the delta method:
  ``Var(r) ≈ Var(m_t)/m_c² + m_t² Var(m_c)/m_c⁴`` (arms independent).
* Ratio metrics (CTR = Σclicks / Σimpressions over users, bounce rate = Σbounces / Σclicks): the
  ratio of two per-user means, ``R = n̄ / d̄``, with the delta-method variance
  ``Var(R) ≈ (Var(n) - 2R Cov(n, d) + R² Var(d)) / (N d̄²)``; differences and relative changes of
  two such ratios combine the two (independent) variances as above.
Intervals are normal (z) except Welch's, which uses Student's t with Welch-Satterthwaite df.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from intentrank.errors import IntentRankError


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its standard error, confidence interval and two-sided p-value (H0: 0)."""

    value: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float

    @property
    def excludes_zero(self) -> bool:
        """True when the confidence interval lies entirely on one side of zero."""
        return bool(self.ci_low > 0 or self.ci_high < 0)


def _z_estimate(value: float, se: float, alpha: float) -> Estimate:
    z = stats.norm.ppf(1 - alpha / 2)
    if not np.isfinite(se) or se <= 0:
        p = 0.0 if value != 0 and se == 0 else float("nan")
        return Estimate(float(value), float(se), float(value), float(value), p)
    p = float(2 * stats.norm.sf(abs(value / se)))
    return Estimate(float(value), float(se), float(value - z * se), float(value + z * se), p)


def _as_1d(x: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise IntentRankError(f"{name}: expected a 1-D array of per-user values, got shape {arr.shape}")
    if arr.size < 2:
        raise IntentRankError(f"{name}: need at least 2 users, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise IntentRankError(f"{name}: contains NaN or infinite values")
    return arr


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise IntentRankError(f"alpha must be in (0, 1), got {alpha}")


def ratio_estimate(num: np.ndarray, den: np.ndarray, alpha: float = 0.05) -> Estimate:
    """Ratio of sums ``Σnum / Σden`` over users with its delta-method standard error."""
    _check_alpha(alpha)
    n = _as_1d(num, "numerator")
    d = _as_1d(den, "denominator")
    if n.shape != d.shape:
        raise IntentRankError(f"numerator and denominator differ in length: {n.size} vs {d.size}")
    dbar = d.mean()
    if dbar <= 0:
        raise IntentRankError("ratio metric: the denominator sums to zero")
    r = n.mean() / dbar
    cov = np.cov(n, d, ddof=1)
    var = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (n.size * dbar * dbar)
    return _z_estimate(r, float(np.sqrt(max(var, 0.0))), alpha)


@dataclass(frozen=True)
class ArmComparison:
    """Control vs treatment on one metric: both levels, the absolute and the relative difference."""

    metric: str
    control: float
    treatment: float
    diff: Estimate  # treatment - control
    rel: Estimate  # treatment / control - 1

    def as_row(self) -> dict[str, float | str | bool]:
        """Flat dict for a table row."""
        row: dict[str, float | str | bool] = {
            "metric": self.metric,
            "control": self.control,
            "treatment": self.treatment,
        }
        for key, est in (("diff", self.diff), ("rel", self.rel)):
            for field, val in asdict(est).items():
                row[f"{key}_{field}"] = val
            row[f"{key}_significant"] = est.excludes_zero
        return row


def _relative(mt: float, vt: float, mc: float, vc: float, alpha: float) -> Estimate:
    """``mt/mc - 1`` with delta-method SE from the variances of the two (independent) estimates."""
    if mc == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), float("nan"), float("nan"))
    var = vt / mc**2 + mt**2 * vc / mc**4
    return _z_estimate(mt / mc - 1.0, float(np.sqrt(var)), alpha)


def compare_means(
    control: np.ndarray, treatment: np.ndarray, metric: str = "metric", alpha: float = 0.05
) -> ArmComparison:
    """Per-user mean metric: Welch difference (t interval) and delta-method relative change."""
    _check_alpha(alpha)
    c = _as_1d(control, f"{metric} (control)")
    t = _as_1d(treatment, f"{metric} (treatment)")
    vc, vt = c.var(ddof=1) / c.size, t.var(ddof=1) / t.size
    diff_val = t.mean() - c.mean()
    se = float(np.sqrt(vc + vt))
    if se > 0:
        res = stats.ttest_ind(t, c, equal_var=False)
        ci = res.confidence_interval(confidence_level=1 - alpha)
        diff = Estimate(float(diff_val), se, float(ci.low), float(ci.high), float(res.pvalue))
    else:
        diff = _z_estimate(diff_val, se, alpha)
    rel = _relative(float(t.mean()), vt, float(c.mean()), vc, alpha)
    return ArmComparison(metric, float(c.mean()), float(t.mean()), diff, rel)


def compare_ratios(
    num_control: np.ndarray,
    den_control: np.ndarray,
    num_treatment: np.ndarray,
    den_treatment: np.ndarray,
    metric: str = "ratio",
    alpha: float = 0.05,
) -> ArmComparison:
    """Ratio metric (Σnum/Σden per arm, e.g. CTR) compared by the delta method."""
    rc = ratio_estimate(num_control, den_control, alpha)
    rt = ratio_estimate(num_treatment, den_treatment, alpha)
    diff = _z_estimate(rt.value - rc.value, float(np.hypot(rt.se, rc.se)), alpha)
    rel = _relative(rt.value, rt.se**2, rc.value, rc.se**2, alpha)
    return ArmComparison(metric, rc.value, rt.value, diff, rel)


def compare_arms(
    per_user: pd.DataFrame,
    arm_column: str,
    control: str,
    treatment: str,
    means: Sequence[str] = (),
    ratios: Mapping[str, tuple[str, str]] | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Table comparing two arms of a per-user metrics frame.

    ``means`` are columns compared as per-user means; ``ratios`` maps a metric name to its
    (numerator column, denominator column), compared as ratios of sums (delta method).

    Besides each metric's own p-value and CI, ``diff_p_holm`` / ``rel_p_holm`` are Holm-adjusted over
    all metrics of the table (family-wise error ≤ ``alpha`` across them), with ``*_significant_holm``:
    with a dozen metrics, about one per A/A comparison crosses α by chance.
    """
    for col in [arm_column, *means, *(c for pair in (ratios or {}).values() for c in pair)]:
        if col not in per_user.columns:
            raise IntentRankError(f"compare_arms: column {col!r} not in the per-user table")
    arms = per_user[arm_column]
    c_df, t_df = per_user[arms == control], per_user[arms == treatment]
    for name, df in ((control, c_df), (treatment, t_df)):
        if len(df) < 2:
            raise IntentRankError(f"compare_arms: arm {name!r} has {len(df)} users (need at least 2)")
    rows = []
    for name, (num, den) in (ratios or {}).items():
        rows.append(
            compare_ratios(
                c_df[num].to_numpy(),
                c_df[den].to_numpy(),
                t_df[num].to_numpy(),
                t_df[den].to_numpy(),
                metric=name,
                alpha=alpha,
            ).as_row()
        )
    for col in means:
        rows.append(
            compare_means(c_df[col].to_numpy(), t_df[col].to_numpy(), metric=col, alpha=alpha).as_row()
        )
    table = pd.DataFrame(rows)
    for key in ("diff", "rel"):
        table[f"{key}_p_holm"], table[f"{key}_significant_holm"] = holm(table[f"{key}_p_value"], alpha)
    return table


def holm(p_values: Sequence[float] | pd.Series, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Holm step-down adjusted p-values and rejections; NaN p-values stay NaN and unrejected.

    Written out (a cumulative max over sorted p-values) rather than calling statsmodels'
    ``multipletests``, which runs ``gc.collect()`` on every call (≈ 60 ms in a process holding torch
    and pandas); tests check it equals ``multipletests(method="holm")``.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adj = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    if m:
        order = ok[np.argsort(p[ok], kind="stable")]
        stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
        adj[order] = np.minimum(stepped, 1.0)
    return adj, np.nan_to_num(adj, nan=1.0) <= alpha
