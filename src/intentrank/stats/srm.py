"""Sample-ratio mismatch: did the arms receive the share of users the design asked for?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from intentrank.errors import IntentRankError


@dataclass(frozen=True)
class SRMResult:
    """Chi-square goodness-of-fit of observed arm sizes against the designed split."""

    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    mismatch: bool  # p_value < threshold: the assignment (or logging) is broken, do not trust the test


def srm_check(
    observed: Sequence[int], expected_share: Sequence[float] | None = None, threshold: float = 0.001
) -> SRMResult:
    """Chi-square test of arm sizes ``observed`` against ``expected_share`` (default: equal split).

    The conventional alarm level is p < 0.001 (a mismatch that small chance rarely produces).
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
