"""The service scores titles with the model ``clickbait.model`` selects: the state's default scorer and
``intentrank serve`` (config file → catalogue file scores and /v1/clickbait/score)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import uvicorn
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.clickbait import ClickbaitConfig, load_default_scorer
from intentrank.ranking.checkpoint import save_checkpoint
from intentrank.ranking.trainer import Trainer
from intentrank.service.config import ServiceConfig
from intentrank.service.state import ServiceState
from intentrank.store import EventStore

from .conftest import TOKEN

TITLES = ["You Won't Believe What This Dog Did Next", "Senate passes the annual budget bill"]


def test_state_loads_the_configured_model(tmp_path: Path, tiny: tuple[pd.DataFrame, Trainer]) -> None:
    items, trainer = tiny
    store = EventStore(tmp_path / "events.duckdb")
    cfg = ServiceConfig.model_validate(
        {"candidates": {"total": 200, "fresh": 30, "popular": 20, "topic": 30, "similar": 30}}
    )
    state = ServiceState(
        cfg, items.copy(), trainer.model_, store, TOKEN, clickbait=ClickbaitConfig(model="student")
    )
    try:
        student = load_default_scorer(ClickbaitConfig(model="student"))
        names = [m.name for m in state.scorer.backend.members]
        assert names == [m.name for m in student.backend.members] and "finetuned" not in names
        want = student.score(TITLES)
        np.testing.assert_array_equal(state.score_titles(TITLES)[0], want)
    finally:
        state.close()


def test_serve_uses_the_configured_model(
    tmp_path: Path, tiny: tuple[pd.DataFrame, Trainer], monkeypatch: Any
) -> None:
    items, trainer = tiny
    save_checkpoint(tmp_path / "model", trainer.model_)
    titles = [f"{TITLES[i % 2]} {i}" for i in range(len(items))]
    items.assign(title=titles).drop(columns=["clickbait_score"]).to_csv(tmp_path / "items.csv", index=False)
    (tmp_path / "c.yaml").write_text(
        f"clickbait:\n  model: student\nservice:\n  store_path: {tmp_path / 'events.duckdb'}\n"
        "  worker:\n    enabled: false\n"
    )
    seen: dict[str, Any] = {}

    def fake_run(asgi: Any, **_: Any) -> None:  # instead of listening: ask the app, then return
        client = TestClient(asgi)
        seen["score"] = client.post("/v1/clickbait/score", json={"titles": TITLES}).json()

    monkeypatch.setattr(uvicorn, "run", fake_run)
    args = ["serve", "--config", str(tmp_path / "c.yaml"), "--items", str(tmp_path / "items.csv")]
    args += ["--model", str(tmp_path / "model")]
    res = CliRunner().invoke(app, args, env={"INTENTRANK_TOKEN": TOKEN})
    assert res.exit_code == 0, res.output
    want = load_default_scorer(ClickbaitConfig(model="student")).score(TITLES)
    np.testing.assert_allclose([r["score"] for r in seen["score"]["results"]], want, rtol=0, atol=1e-12)
