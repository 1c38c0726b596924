"""A tiny experiment for the harness tests: a synthetic living world, a small ranker, a few arms."""

from __future__ import annotations

from typing import Any

import pytest

from intentrank.config import IntentRankConfig, load_config
from intentrank.simulator.catalogue import synthetic_catalogue

#: A small ranker (dense features only, narrow layers, one epoch): seconds to train.
SMALL_RANKER: dict[str, Any] = {
    "features": {"dense": [{"name": "length", "transform": "log1p", "scale": 0.3},
                           {"name": "item_age_h", "transform": "log1p", "scale": 0.2}], "text": []},
    "train": {"epochs": 1, "progress": False, "batch_size": 512},
    "model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}},
}  # fmt: skip
SMALL_SIM: dict[str, Any] = {"candidates": 40, "max_slates": 3}


def tiny_config(
    arms: list[dict[str, Any]], simulator: dict[str, Any] | None = None, **abtest: Any
) -> IntentRankConfig:
    """A config with ``arms`` on the small world (abtest and simulator settings overridable)."""
    ab = {"name": "tiny", "users": 600, "days": 2, "window_min": 480, "live_items": 400,
          "calibration_splits": 30, "mde_warn": 10.0, "arms": arms, **abtest}  # fmt: skip
    sim = {**SMALL_SIM, **(simulator or {})}
    return load_config(
        None, overrides={"ranker": SMALL_RANKER, "simulator": sim, "experiment": {"abtest": ab}}
    )


def pool_for(cfg: IntentRankConfig):
    """The synthetic headline pool of ``cfg``'s catalogue settings (quality follows them)."""
    return synthetic_catalogue(3000, seed=1, config=cfg.simulator.catalogue)


@pytest.fixture(scope="session")
def tiny_pool():
    return synthetic_catalogue(3000, seed=1)
