"""Shared fixtures: a small simulated log (real simulator, random logging policy) and a tiny ranker config."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest
import torch

from intentrank.ranking.config import RankerConfig


@pytest.fixture(scope="session")
def sim_log() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(impressions, catalogue items) of 1 simulated day of 400 users over 600 synthetic items."""
    from intentrank.simulator.catalogue import synthetic_catalogue
    from intentrank.simulator.config import SimulatorConfig
    from intentrank.simulator.engine import Simulator
    from intentrank.simulator.policies import RandomPolicy
    from intentrank.simulator.world import World

    cat = synthetic_catalogue(600, seed=0)
    world = World.create(cat, SimulatorConfig(users=400, days=1), seed=0)
    tables: list[pa.Table] = []
    Simulator(world, RandomPolicy(), seed=0).run(sink=tables.append)
    return pa.concat_tables(tables).to_pandas(), cat.items


def tiny_ranker_config(**train: object) -> RankerConfig:
    """A ranker small enough to train in about a second."""
    torch.set_num_threads(1)
    return RankerConfig.model_validate(
        {
            "features": {
                "embedding_dim": 4,
                "categorical": [
                    {"name": "user_id", "buckets": 997},
                    {"name": "item_id", "buckets": 1009},
                    {"name": "topic", "buckets": 31},
                    {"name": "position", "buckets": 20, "hashed": False},
                ],
                "dense": [
                    {"name": "clickbait_score"},
                    {"name": "length", "transform": "log1p", "scale": 0.3},
                ],
            },
            "model": {
                "cross": {"layers": 1, "rank": 4, "experts": 1},
                "mlp_hidden": [16],
                "tower_hidden": [8],
            },
            "train": {"epochs": 3, "batch_size": 512, "progress": False, "lr": 5e-3, **train},
        }
    )
