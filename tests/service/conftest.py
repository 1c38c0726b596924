"""A tiny service: 400 synthetic items, a small ranker trained on synthetic events, a store in tmp."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.ranking.trainer import Trainer
from intentrank.service.app import create_app
from intentrank.service.config import ServiceConfig
from intentrank.service.state import ServiceState
from intentrank.store import EventStore

from ..ranking.conftest import make_events

TOKEN = "test-token-0123456789"
SMALL = {
    "train": {"epochs": 1, "progress": False, "valid_fraction": 0.0, "batch_size": 256},
    "model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}},
}


class StubScorer:
    """Clickbait score = share of '!' and '?' characters × 10, clipped (fast and predictable)."""

    def score(self, titles: list[str]) -> np.ndarray:
        return np.clip([10 * sum(ch in "!?" for ch in t) / max(len(t), 1) for t in titles], 0.0, 1.0)


@pytest.fixture(scope="session")
def tiny() -> tuple[pd.DataFrame, Trainer]:
    imp, items = make_events(n_items=400, n_slates=300, seed=7)
    trainer = Trainer(RankerConfig.model_validate(SMALL)).fit(imp.drop(columns=["event_id"]), items)
    return items, trainer


@pytest.fixture(scope="session")
def tiny_model(tiny: tuple[pd.DataFrame, Trainer]) -> MultiTaskRanker:
    return tiny[1].model_


def make_state(tmp_path: Any, tiny: tuple[pd.DataFrame, Trainer], **overrides: Any) -> ServiceState:
    items, trainer = tiny
    cands = {"total": 200, "fresh": 30, "popular": 20, "topic": 30, "similar": 30}
    base: dict[str, Any] = {"candidates": cands}
    cfg = ServiceConfig.model_validate(base | overrides)
    store = EventStore(tmp_path / "events.duckdb")
    return ServiceState(cfg, items.copy(), trainer.model_, store, TOKEN, scorer=StubScorer())


@pytest.fixture()
def state(tmp_path: Any, tiny: tuple[pd.DataFrame, Trainer]) -> Iterator[ServiceState]:
    st = make_state(tmp_path, tiny)
    yield st
    st.close()


@pytest.fixture()
def client(state: ServiceState) -> TestClient:
    return TestClient(create_app(state))


AUTH = {"Authorization": f"Bearer {TOKEN}"}
