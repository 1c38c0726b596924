"""Statistics for comparing arms of an experiment: per-user metrics with confidence intervals.

Difference of means by Welch's t interval, relative change and ratio metrics (e.g. CTR =
clicks / impressions per user) by the delta method, Holm adjustment across a table's metrics, and a
sample-ratio-mismatch check.
"""

from intentrank.stats.compare import (
    ArmComparison,
    Estimate,
    compare_arms,
    compare_means,
    compare_ratios,
    holm,
    ratio_estimate,
)
from intentrank.stats.srm import SRMResult, srm_check

__all__ = [
    "ArmComparison",
    "Estimate",
    "SRMResult",
    "compare_arms",
    "compare_means",
    "compare_ratios",
    "holm",
    "ratio_estimate",
    "srm_check",
]
