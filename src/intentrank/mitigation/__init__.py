"""Clickbait mitigation: the paper's four methods, the baselines and their combinations.

Every method is selected by name in :class:`intentrank.mitigation.config.MitigationConfig` and
applied by :class:`intentrank.mitigation.pipeline.MitigationPlan`. The names below are imported
lazily, so importing the config section does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MitigationConfig": "intentrank.mitigation.config",
    "MitigationPlan": "intentrank.mitigation.pipeline",
    "TrainerHooks": "intentrank.mitigation.pipeline",
    "parse_mitigation": "intentrank.mitigation.pipeline",
    "HeuristicPenalty": "intentrank.mitigation.heuristic",
    "PenalizedPolicy": "intentrank.mitigation.policies",
    "AuxClickbaitLoss": "intentrank.mitigation.aux_loss",
    "ClickbaitDownweight": "intentrank.mitigation.aux_loss",
    "clickbait_loss": "intentrank.mitigation.aux_loss",
    "AdversarialHead": "intentrank.mitigation.adversarial",
    "AdversarialLoss": "intentrank.mitigation.adversarial",
    "GradientReversal": "intentrank.mitigation.adversarial",
    "grad_reverse": "intentrank.mitigation.adversarial",
    "HeadMaskedRanker": "intentrank.mitigation.shallow_tower",
    "ItemSetSampler": "intentrank.mitigation.rl_alignment",
    "RLAligner": "intentrank.mitigation.rl_alignment",
    "AlignmentReport": "intentrank.mitigation.rl_alignment",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'intentrank.mitigation' has no attribute {name!r}")
