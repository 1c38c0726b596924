"""Multi-task ranking models: DCN-V2 (stacked / parallel) and MMoE backbones, task heads, ESMM."""

from intentrank.ranking.models.backbones import Backbone, build_backbone
from intentrank.ranking.models.esmm import ctcvr_logit
from intentrank.ranking.models.multitask import RANKER_TASKS, MultiTaskNet, MultiTaskRanker

__all__ = ["RANKER_TASKS", "Backbone", "MultiTaskNet", "MultiTaskRanker", "build_backbone", "ctcvr_logit"]
