"""Building blocks of the ranker: cross layers, MMoE, batched MLPs, towers and fused embeddings."""

from intentrank.ranking.layers.cross import CrossLayerFull, CrossLayerLowRank, CrossLayerMixture, CrossNetwork
from intentrank.ranking.layers.embedding import FusedEmbedding
from intentrank.ranking.layers.mlp import MLP, BatchedMLP
from intentrank.ranking.layers.mmoe import MMoE
from intentrank.ranking.layers.towers import ShallowTower, TaskTowers

__all__ = [
    "MLP",
    "BatchedMLP",
    "CrossLayerFull",
    "CrossLayerLowRank",
    "CrossLayerMixture",
    "CrossNetwork",
    "FusedEmbedding",
    "MMoE",
    "ShallowTower",
    "TaskTowers",
]
