"""Shared pieces of the off-policy estimators: the result type, input validation and the bootstrap.

Every estimator here (single-item and slate) reduces to the same statistic of per-unit terms
(a unit is a logged round, or a logged slate):

.. math::

    \\hat{V} = \\frac{1}{n} \\sum_{i=1}^{n} a_i + \\frac{\\sum_{i=1}^{n} u_i}{\\sum_{i=1}^{n} d_i},

with ``a`` a direct (model) term, ``u`` a weighted-reward term and ``d`` its normaliser (``d = 1``
for the plain estimators, ``d = w`` for the self-normalised ones). Writing them this way lets one
vectorised bootstrap (``scipy.stats.bootstrap``, paired resampling of the logged units) serve all of
them, with no Python loop per resample.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
from scipy import stats

from intentrank.errors import DataError, IntentRankError

#: Cap on the number of elements of one batch of bootstrap index arrays (bounds memory).
_BOOTSTRAP_BATCH_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class OPEEstimate:
    """An off-policy estimate of a policy value with its bootstrap CI and standard error.

    ``n`` is the number of independent logged units resampled by the bootstrap (rounds, or slates).
    """

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    se: float
    n: int

    def covers(self, x: float) -> bool:
        """True when ``x`` lies inside the confidence interval (inclusive)."""
        return bool(self.ci_low <= x <= self.ci_high)


def as_array(x: object, name: str, n: int | None = None) -> np.ndarray:
    """A finite 1-D float array named ``name`` (of length ``n`` when given), or a DataError."""
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: not numeric ({exc})") from None
    if arr.ndim != 1:
        raise DataError(f"{name}: expected a 1-D array, got shape {arr.shape}")
    if n is not None and arr.size != n:
        raise DataError(f"{name}: expected {n} values (one per logged row), got {arr.size}")
    if arr.size == 0:
        raise DataError(f"{name}: empty")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{name}: {int(bad.sum())} NaN or infinite value(s), first at row {i}: {arr[i]}")
    return arr


def check_probability(arr: np.ndarray, name: str, allow_zero: bool) -> None:
    """Raise a DataError unless every value is a probability: in (0, 1], or [0, 1] if ``allow_zero``."""
    low_ok = arr >= 0 if allow_zero else arr > 0
    bad = ~(low_ok & (arr <= 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise DataError(
            f"{name}: {int(bad.sum())} value(s) outside {interval}, first at row {i}: {arr[i]}"
            + ("" if allow_zero else " (a logging propensity of 0 means the action could not be logged)")
        )


def _statistic(
    a: np.ndarray, u: np.ndarray, d: np.ndarray, m: np.ndarray | None = None, axis: int = -1
) -> np.ndarray:
    """``sum(a) / sum(m) + sum(u) / sum(d)`` along ``axis`` (``m`` = 1 per unit: ``mean(a)``), vectorised
    over bootstrap resamples. ``m`` counts the rounds in a unit when units are clusters of rounds."""
    if m is None:
        return np.mean(a, axis=axis) + np.sum(u, axis=axis) / np.sum(d, axis=axis)
    return np.sum(a, axis=axis) / np.sum(m, axis=axis) + np.sum(u, axis=axis) / np.sum(d, axis=axis)


def bootstrap_estimate(
    name: str,
    a: np.ndarray,
    u: np.ndarray,
    d: np.ndarray,
    n_bootstrap: int,
    alpha: float,
    seed: int | None,
    m: np.ndarray | None = None,
) -> OPEEstimate:
    """Point value of the shared statistic and its percentile bootstrap CI over the logged units.

    The units are resampled with replacement (paired: ``a``, ``u``, ``d`` of one unit stay together) by
    ``scipy.stats.bootstrap``; resamples where the statistic is undefined (a self-normalised estimator
    whose resampled weights are all 0) are dropped. The standard error is the standard deviation of the
    bootstrap distribution. ``m`` (optional): rounds per unit, when a unit is a cluster of rounds.
    """
    n = a.size
    arrays = (a, u, d) if m is None else (a, u, d, m)
    value = float(_statistic(*arrays))
    if n < 2 or n_bootstrap < 1:
        return OPEEstimate(name, value, float("nan"), float("nan"), float("nan"), n)
    batch = max(1, min(n_bootstrap, _BOOTSTRAP_BATCH_ELEMENTS // n))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        # A resample may be undefined (self-normalised estimators: every weight 0); scipy warns about
        # the NaN, and we drop such resamples below.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        res = stats.bootstrap(
            arrays,
            _statistic,
            n_resamples=n_bootstrap,
            batch=batch,
            vectorized=True,
            paired=True,
            confidence_level=1 - alpha,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    dist = res.bootstrap_distribution
    dist = dist[np.isfinite(dist)]
    if dist.size < 2:
        return OPEEstimate(name, value, float("nan"), float("nan"), float("nan"), n)
    low, high = np.quantile(dist, [alpha / 2, 1 - alpha / 2])
    return OPEEstimate(name, value, float(low), float(high), float(np.std(dist, ddof=1)), n)


DataT = TypeVar("DataT")


@dataclass(frozen=True)
class OffPolicyEstimator(ABC, Generic[DataT]):
    """Common interface: ``estimate(data) -> OPEEstimate`` with a seeded percentile bootstrap CI.

    Parameters: ``n_bootstrap`` resamples of the logged units, ``alpha`` (0.05 gives a 95 % CI),
    ``seed`` of ``np.random.default_rng``.
    """

    n_bootstrap: int = 1000
    alpha: float = 0.05
    seed: int | None = 0

    name: str = "estimator"

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise IntentRankError(f"{type(self).__name__}: alpha must be in (0, 1), got {self.alpha}")
        if self.n_bootstrap < 0:
            raise IntentRankError(f"{type(self).__name__}: n_bootstrap must be >= 0, got {self.n_bootstrap}")

    @abstractmethod
    def terms(self, data: DataT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-unit terms ``(a, u, d)`` of the statistic ``mean(a) + sum(u) / sum(d)``."""

    def estimate_value(self, data: DataT) -> float:
        """The point estimate alone (no bootstrap)."""
        return float(_statistic(*self.terms(data)))

    def estimate(self, data: DataT) -> OPEEstimate:
        """Point estimate with its bootstrap confidence interval and standard error."""
        a, u, d = self.terms(data)
        return bootstrap_estimate(self.name, a, u, d, self.n_bootstrap, self.alpha, self.seed)

    def estimate_clustered(self, data: DataT, groups: np.ndarray) -> OPEEstimate:
        """As :meth:`estimate`, resampling whole groups of units (e.g. all the slates of a user, who
        brings the same tastes to each) instead of single units: the same point value, a cluster
        bootstrap CI; ``n`` is the number of groups.

        With group sums :math:`A_g, U_g, D_g` and sizes :math:`m_g` the statistic is
        :math:`\\sum_g A_g / \\sum_g m_g + \\sum_g U_g / \\sum_g D_g`, equal to the unclustered one.
        """
        a, u, d = self.terms(data)
        groups = np.asarray(groups)
        if groups.shape != a.shape:
            raise DataError(f"groups: expected {a.size} values (one per unit), got shape {groups.shape}")
        idx, _ = _factorize(groups)
        size = np.bincount(idx).astype(np.float64)
        sums = [np.bincount(idx, weights=x) for x in (a, u, d)]
        return bootstrap_estimate(
            self.name, sums[0], sums[1], sums[2], self.n_bootstrap, self.alpha, self.seed, m=size
        )


def _factorize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each value among the unique values, the unique values)."""
    uniq, idx = np.unique(values, return_inverse=True)
    return idx.reshape(-1), uniq
