"""Off-policy evaluation: estimate a policy's value (CTR, clicks per slate) from another policy's log.

Single-item estimators (:mod:`intentrank.ope.estimators`): IPS, SNIPS, DM, DR, SNDR on :class:`OPEData`.
Slate estimators (:mod:`intentrank.ope.slate`): IIPS, RIPS, PI on :class:`SlateData`. Every estimator
has ``estimate(data) -> OPEEstimate`` with a seeded percentile bootstrap CI over the logged units.
See docs/ope.md for the formulas and when to use which.
"""

from intentrank.ope.base import OffPolicyEstimator, OPEEstimate
from intentrank.ope.estimators import DM, DR, IPS, SNDR, SNIPS, OPEData
from intentrank.ope.slate import IIPS, PI, RIPS, SlateData, pseudo_inverse_weights

__all__ = [
    "DM",
    "DR",
    "IIPS",
    "IPS",
    "PI",
    "RIPS",
    "SNDR",
    "SNIPS",
    "OPEData",
    "OPEEstimate",
    "OffPolicyEstimator",
    "SlateData",
    "pseudo_inverse_weights",
]
