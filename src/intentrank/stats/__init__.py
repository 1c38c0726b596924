"""Statistics for comparing arms of an experiment: per-user metrics with confidence intervals.

An adapter over tea-tasting (Welch t for differences, the delta method for ratio metrics and relative
changes, CUPED) that adds per-metric notes where the delta method breaks down, the CUPED variance
ratio, a minimum-detectable-effect line, Holm / Benjamini–Hochberg corrections across metrics and
arms, a k-arm sample-ratio-mismatch check, and a synthetic calibration of all of it
(:mod:`intentrank.stats.calibration`).
"""

from intentrank.stats.compare import (
    ArmComparison,
    Estimate,
    MetricSpec,
    compare_arms,
    compare_experiment,
    compare_means,
    compare_metric,
    compare_ratios,
    ratio_estimate,
    relative_mde,
)
from intentrank.stats.multiple import CORRECTIONS, adjust_p_values, holm
from intentrank.stats.srm import SRMResult, srm_check

__all__ = [
    "CORRECTIONS",
    "ArmComparison",
    "Estimate",
    "MetricSpec",
    "SRMResult",
    "adjust_p_values",
    "compare_arms",
    "compare_experiment",
    "compare_means",
    "compare_metric",
    "compare_ratios",
    "holm",
    "ratio_estimate",
    "relative_mde",
    "srm_check",
]
