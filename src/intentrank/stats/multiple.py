"""Multiple-comparison corrections over a family of p-values (metrics × arms), by tea-tasting.

A results table of a dozen metrics and several arms holds dozens of tests: in an A/A experiment about
one in twenty crosses α by chance. ``holm`` controls the family-wise error (the chance of any false
rejection), ``bh`` (Benjamini–Hochberg) the false discovery rate (the expected share of false ones among
the rejections), which keeps more power when many metrics really move.

References:
    S. Holm. "A Simple Sequentially Rejective Multiple Test Procedure". Scandinavian Journal of
    Statistics 6(2), 1979.
    Y. Benjamini, Y. Hochberg. "Controlling the False Discovery Rate: A Practical and Powerful Approach to
    Multiple Testing". Journal of the Royal Statistical Society B 57(1), 1995.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from intentrank.errors import IntentRankError

Correction = Literal["holm", "bh"]
CORRECTIONS: tuple[str, ...] = ("holm", "bh")


def adjust_p_values(
    p_values: Sequence[float] | np.ndarray | pd.Series, method: str = "holm", alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Adjusted p-values and rejections (``p_adj <= alpha``) of one family; NaN stays NaN, unrejected.

    ``holm``: Holm's step-down (tea-tasting's ``adjust_fwer(arbitrary_dependence=True,
    method="bonferroni")``, valid under any dependence between the metrics); ``bh``: Benjamini–Hochberg
    (``adjust_fdr``, valid under positive dependence, which correlated KPIs of the same users have).

    Args:
        p_values: Raw p-values of the family (m,); NaNs are left out of m.
        method: ``holm`` or ``bh``.
        alpha: Family-wise error level (holm) or false discovery rate (bh).

    Returns:
        (adjusted p-values (m,), rejected (m,) bool).

    Raises:
        IntentRankError: An unknown method, or alpha outside (0, 1).

    Example:
        >>> adj, reject = adjust_p_values([0.01, 0.04, 0.03, float("nan")], "bh")
        >>> adj.round(3).tolist(), reject.tolist()
        ([0.03, 0.04, 0.04, nan], [True, True, True, False])
    """
    if method not in CORRECTIONS:
        raise IntentRankError(f"correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
    if not 0 < alpha < 1:
        raise IntentRankError(f"alpha must be in (0, 1), got {alpha}")
    import tea_tasting as tt  # lazy: tea-tasting pulls in ibis (~1 s), which most commands never need
    from tea_tasting.experiment import ExperimentResult

    p = np.asarray(p_values, dtype=np.float64)
    adj = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if ok.size:
        family = ExperimentResult({int(i): {"pvalue": float(p[i])} for i in ok})
        if method == "holm":
            out = tt.adjust_fwer(family, alpha=alpha, arbitrary_dependence=True, method="bonferroni")
        else:
            out = tt.adjust_fdr(family, alpha=alpha)
        (result,) = out.values()
        for i, row in result.items():
            adj[i] = row["pvalue_adj"]
    return adj, np.nan_to_num(adj, nan=1.0) <= alpha


def holm(
    p_values: Sequence[float] | np.ndarray | pd.Series, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Holm step-down adjusted p-values and rejections (``adjust_p_values(p, "holm", alpha)``).

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
    """
    return adjust_p_values(p_values, "holm", alpha)
