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

References:
    B. L. Welch. "The generalization of 'Student's' problem when several different population variances
    are involved". Biometrika 34(1–2), 1947.
    A. Deng, U. Knoblich, J. Lu. "Applying the Delta Method in Metric Analytics: A Practical Guide with
    Novel Ideas". KDD 2018.
    S. Holm. "A Simple Sequentially Rejective Multiple Test Procedure". Scandinavian Journal of
    Statistics 6(2), 1979.
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
    """A point estimate with its standard error, confidence interval and two-sided p-value (H0: 0).

    Attributes:
        value: The estimate.
        se: Its standard error.
        ci_low: Lower end of the (1 - alpha) confidence interval.
        ci_high: Upper end.
        p_value: Two-sided p-value of H0: value = 0.
    """

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
    """Ratio of sums ``R = Σnum / Σden`` over users (e.g. CTR) with its delta-method standard error.

    Users are the independent units, not impressions, so the per-user numerator and denominator
    are paired: ``Var(R) ≈ (Var(n) - 2R Cov(n, d) + R² Var(d)) / (N d̄²)``. Treating impressions as
    independent would understate the variance whenever a user's clicks are correlated.

    Args:
        num: Per-user numerators (N,), e.g. clicks.
        den: Per-user denominators (N,), e.g. impressions; must not sum to zero.
        alpha: 1 - confidence level of the normal interval.

    Returns:
        :class:`Estimate` of R (p-value against R = 0).

    Raises:
        IntentRankError: Arrays not 1-D, of different lengths, shorter than 2, non-finite, a zero
            denominator sum, or alpha outside (0, 1).

    Example:
        >>> ctr = ratio_estimate(np.array([1.0, 0, 2, 1]), np.array([10.0, 5, 10, 5]))
        >>> round(ctr.value, 4), round(ctr.se, 4)
        (0.1333, 0.0406)

    References:
        Deng, Knoblich, Lu, "Applying the Delta Method in Metric Analytics", KDD 2018.
    """
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
    """Control vs treatment on one metric: both levels, the absolute and the relative difference.

    Attributes:
        metric: Metric name.
        control: The control arm's level (mean or ratio).
        treatment: The treatment arm's level.
        diff: ``treatment - control``.
        rel: ``treatment / control - 1``.
    """

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
    """Compare a per-user mean metric: Welch difference (t interval) and delta-method relative change.

    The difference ``t̄ - c̄`` gets Welch's t interval (no equal-variance assumption; the arms' spreads
    differ whenever the treatment works), with Welch–Satterthwaite degrees of freedom. The relative
    change ``t̄ / c̄ - 1`` gets ``Var ≈ Var(t̄)/c̄² + t̄² Var(c̄)/c̄⁴`` (delta method, independent arms)
    and a normal interval.

    Args:
        control: Per-user values of the control arm (N_c,).
        treatment: Per-user values of the treatment arm (N_t,).
        metric: Name for the result.
        alpha: 1 - confidence level.

    Returns:
        :class:`ArmComparison` with both means, ``diff`` and ``rel``.

    Raises:
        IntentRankError: An arm with fewer than 2 users, non-finite values, alpha outside (0, 1).

    Example:
        >>> c = np.array([1.0, 2, 3, 4, 5, 6])
        >>> t = np.array([2.0, 3, 4, 5, 6, 9])
        >>> res = compare_means(c, t, metric="time_spent")
        >>> round(res.diff.value, 3), round(res.diff.p_value, 3), res.diff.excludes_zero
        (1.333, 0.32, False)
        >>> round(res.rel.value, 3)
        0.381

    References:
        Welch, Biometrika 1947; Deng, Knoblich, Lu, KDD 2018 (relative change).
    """
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
    """Compare a ratio metric (Σnum/Σden per arm, e.g. CTR) between two arms by the delta method.

    Each arm's ratio gets its delta-method SE (:func:`ratio_estimate`); the difference and relative
    change combine the two independent variances, with normal intervals.

    Args:
        num_control: Per-user numerators of the control arm (N_c,).
        den_control: Per-user denominators of the control arm (N_c,).
        num_treatment: Per-user numerators of the treatment arm (N_t,).
        den_treatment: Per-user denominators of the treatment arm (N_t,).
        metric: Name for the result.
        alpha: 1 - confidence level.

    Returns:
        :class:`ArmComparison` with both ratios, ``diff`` and ``rel``.

    Example:
        >>> imps = np.array([10.0, 5, 10, 5])
        >>> res = compare_ratios(np.array([1.0, 0, 2, 1]), imps, np.array([2.0, 1, 2, 3]), imps, "ctr")
        >>> round(res.control, 4), round(res.treatment, 4), round(res.rel.value, 2)
        (0.1333, 0.2667, 1.0)

    References:
        Deng, Knoblich, Lu, "Applying the Delta Method in Metric Analytics", KDD 2018.
    """
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

    Args:
        per_user: One row per user (the randomisation unit).
        arm_column: Column naming each user's arm.
        control: Control arm's name.
        treatment: Treatment arm's name.
        means: Columns compared with :func:`compare_means`.
        ratios: Metric name → (numerator column, denominator column), compared with
            :func:`compare_ratios`.
        alpha: 1 - confidence level, also the Holm family-wise level.

    Returns:
        One row per metric (ratios first): ``metric``, ``control``, ``treatment`` and, for ``diff`` and
        ``rel``, ``_value``, ``_se``, ``_ci_low``, ``_ci_high``, ``_p_value``, ``_significant``,
        ``_p_holm``, ``_significant_holm``.

    Raises:
        IntentRankError: A missing column, or an arm with fewer than 2 users.

    Example:
        >>> df = pd.DataFrame({"arm": ["c"] * 4 + ["t"] * 4, "clicks": [1, 0, 2, 1, 2, 1, 2, 3],
        ...                    "imps": [10, 5, 10, 5] * 2, "time": [1, 2, 3, 4, 2, 3, 4, 6.0]})
        >>> tab = compare_arms(df, "arm", "c", "t", means=["time"], ratios={"ctr": ("clicks", "imps")})
        >>> tab[["metric", "rel_value", "rel_p_value", "rel_p_holm"]].round(3)
          metric  rel_value  rel_p_value  rel_p_holm
        0    ctr        1.0        0.227       0.454
        1   time        0.5        0.333       0.454

    References:
        Welch, Biometrika 1947; Deng, Knoblich, Lu, KDD 2018; Holm, Scand. J. Statist. 1979.
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

    With m p-values sorted ascending, ``p_(i)`` adjusted is ``max_{j ≤ i} min(1, (m - j + 1) p_(j))``;
    rejecting adjusted p ≤ alpha keeps the family-wise error rate ≤ alpha under any dependence.

    Args:
        p_values: Raw p-values (m,); NaNs are left out of m.
        alpha: Family-wise error level.

    Returns:
        (adjusted p-values (m,), rejected (m,) bool).

    Example:
        >>> adj, reject = holm([0.01, 0.04, 0.03, float("nan")])
        >>> adj.round(3).tolist(), reject.tolist()
        ([0.03, 0.06, 0.06, nan], [True, False, False, False])

    References:
        S. Holm, "A Simple Sequentially Rejective Multiple Test Procedure", Scandinavian Journal of
        Statistics 6(2), 1979.
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
