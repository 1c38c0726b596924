"""Sample-ratio mismatch: did the arms receive the share of users the design asked for?

References:
    A. Fabijan, J. Gupchup, S. Gupta, J. Omhover, W. Qin, L. Vermeer, P. Dmitriev. "Diagnosing Sample
    Ratio Mismatch in Online Controlled Experiments: A Taxonomy and Rules of Thumb for Practitioners".
    KDD 2019.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from intentrank.errors import IntentRankError


@dataclass(frozen=True)
class SRMResult:
    """Chi-square goodness-of-fit of observed arm sizes against the designed split.

    Attributes:
        observed: Users per arm.
        expected: Users per arm the design implies for the same total.
        chi2: Pearson's chi-square statistic (k - 1 degrees of freedom).
        p_value: Its p-value.
        mismatch: ``p_value < threshold``.
    """

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    mismatch: bool  # p_value < threshold: the assignment (or logging) is broken, do not trust the test


def srm_check(
    observed: Sequence[int], expected_share: Sequence[float] | None = None, threshold: float = 0.001
) -> SRMResult:
    """Chi-square test of arm sizes ``observed`` against ``expected_share`` (default: equal split).

    Kept beside tea-tasting's ``SampleRatio`` because it takes any number of arms at once; with two
    arms it equals ``SampleRatio(method="norm", correction=False)`` (tests/stats/test_crosscheck.py).
    The conventional alarm level is p < 0.001 (a mismatch that small chance rarely produces). A
    mismatch means the assignment or the logging is broken, and the comparison's figures cannot be
    trusted whatever their confidence intervals say.

    Args:
        observed: Users per arm (k ≥ 2 non-negative counts).
        expected_share: Designed share of each arm (k positive numbers, normalised); None = equal.
        threshold: p-value below which ``mismatch`` is set.

    Returns:
        :class:`SRMResult`.

    Raises:
        IntentRankError: Fewer than 2 arms, negative or non-finite counts, no users, or a share of
            the wrong length or not positive.

    Example:
        >>> srm_check([5000, 5100]).mismatch
        False
        >>> res = srm_check([5000, 5600])
        >>> res.mismatch, res.expected
        (True, (5300.0, 5300.0))

    References:
        Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD 2019.
    """
    obs = np.asarray(observed, dtype=np.float64)
    if obs.ndim != 1 or obs.size < 2:
        raise IntentRankError(f"srm_check needs the user counts of at least two arms, got {list(observed)!r}")
    if np.any(obs < 0) or not np.all(np.isfinite(obs)):
        raise IntentRankError(f"srm_check: arm counts must be non-negative, got {list(observed)!r}")
    share = np.full(obs.size, 1.0 / obs.size) if expected_share is None else np.asarray(expected_share, float)
    if share.shape != obs.shape or np.any(share <= 0):
        raise IntentRankError(
            f"srm_check: expected_share must be {obs.size} positive numbers, got {expected_share!r}"
        )
    share = share / share.sum()
    total = obs.sum()
    if total == 0:
        raise IntentRankError("srm_check: no users in any arm")
    exp = share * total
    chi2, p = stats.chisquare(obs, exp)
    return SRMResult(
        observed=tuple(int(x) for x in obs),
        expected=tuple(float(x) for x in exp),
        chi2=float(chi2),
        p_value=float(p),
        mismatch=bool(p < threshold),
    )
