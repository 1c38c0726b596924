"""The simulator as a client: the loop through a real uvicorn server gives the same KPIs as the in-process
loop (same users, seed, model, arms) within their 95% CIs, and every event it posted is acknowledged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from intentrank.service.app import create_app
from intentrank.service.config import ServiceConfig
from intentrank.service.state import ServiceState
from intentrank.simulator.catalogue import synthetic_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.http_client import (
    ServiceClient,
    simulate_http,
    simulate_like_the_service,
)
from intentrank.simulator.kpis import MEAN_KPIS, RATIO_KPIS
from intentrank.stats import compare_arms
from intentrank.store import EventStore

from .conftest import TOKEN, StubScorer
from .live import live_server

USERS, K = 160, 100


@pytest.mark.slow
def test_loop_over_http_agrees_with_in_process(tmp_path: Path, tiny: Any) -> None:
    model = tiny[1].model_
    cat = synthetic_catalogue(1_500, seed=4)
    sources = {"total": K, "fresh": 0, "popular": 0, "topic": 0, "similar": 0}  # random retrieval only
    # aligned as bench/service_http_loop.py: the simulator's clock, no cross-session filter
    cfg = ServiceConfig.model_validate(
        {"candidates": sources, "filtering": {"recent_shown_s": 0}, "simulated_clock": True}
    )
    sim_cfg = SimulatorConfig(users=USERS, days=1, candidates=K)
    store_path = tmp_path / "events.duckdb"
    state = ServiceState(cfg, cat.items.copy(), model, EventStore(store_path), TOKEN, scorer=StubScorer())
    try:
        with live_server(create_app(state)) as url, ServiceClient(url, TOKEN) as client:
            # each page draws from its own stream: deterministic with requests in flight at once
            http, counts = simulate_http(client, sim_cfg, seed=5, catalogue=cat, concurrency=4)
    finally:
        state.close()
    # the in-process arms share one serving history fed with each flush, as the service's is with each post
    inproc, history = simulate_like_the_service(
        model, sim_cfg, seed=5, catalogue=cat, candidates=cfg.candidates, filtering=cfg.filtering,
        service_seed=cfg.seed,
    )  # fmt: skip
    assert history.events == int(inproc.per_user["impressions"].sum())
    assert http.arm_names == ["unmitigated", "heuristic"]
    # same users in the same arms
    assert (http.per_user["arm"].to_numpy() == inproc.per_user["arm"].to_numpy()).all()
    impressions = int(http.per_user["impressions"].sum())
    assert impressions > 0 and counts["events_acknowledged"] == impressions
    assert counts["feed_requests"] == int(http.per_user["slates"].sum())
    both = pd.concat([http.per_user.assign(loop="http"), inproc.per_user.assign(loop="inproc")])
    # 8 KPIs x 2 arms: no difference significant at a family-wise 5% (Holm within an arm, Bonferroni
    # over the two arms), i.e. every KPI's simultaneous 95% CI of the difference holds 0
    for arm in http.arm_names:
        one = both[both["arm"] == arm]
        table = compare_arms(
            one, "loop", "inproc", "http", means=MEAN_KPIS[:5], ratios=RATIO_KPIS, alpha=0.025
        )
        shown = table[["metric", "control", "treatment", "diff_p_holm"]]
        assert not table["diff_significant_holm"].any(), shown.to_string()
    with EventStore(store_path) as st:
        stored = st.read_impressions(runs="all")
    assert len(stored) == impressions and stored["click"].sum() == http.per_user["clicks"].sum()
    # stamped with the simulator's clock: sessions of day 0 between 06:00 and the end of the day
    assert stored["ts"].min() >= 6 * 3_600 and (stored["day"] == 0).mean() > 0.95
    assert np.isin(stored["policy"].unique(), ["unmitigated", "heuristic"]).all()


def test_in_process_counterpart_draws_the_services_candidates(tmp_path: Path, tiny: Any) -> None:
    """Same seed, same pages: the in-process counterpart draws each page's candidates by the service's
    retrieval and filter rules and streams, so both loops serve the same slates and every user's KPIs
    are equal (the HTTP loop with 4 requests in flight: the page's stream does not depend on their order).
    Before, the simulator drew its own candidates (another stream, no repeat of any earlier candidate)
    and the service one shared stream in request order: not one user in ten matched."""
    model = tiny[1].model_
    cat = synthetic_catalogue(600, seed=4)
    sources = {"total": 60, "fresh": 0, "popular": 0, "topic": 0, "similar": 0}
    cfg = ServiceConfig.model_validate(
        {"candidates": sources, "filtering": {"recent_shown_s": 0}, "simulated_clock": True, "seed": 3}
    )
    sim_cfg = SimulatorConfig(users=60, days=2, candidates=60)
    state = ServiceState(cfg, cat.items.copy(), model, EventStore(tmp_path / "e.duckdb"), TOKEN,
                         scorer=StubScorer())  # fmt: skip
    try:
        with live_server(create_app(state)) as url, ServiceClient(url, TOKEN) as client:
            http, _ = simulate_http(client, sim_cfg, seed=5, catalogue=cat, concurrency=4)
    finally:
        state.close()
    inproc, _ = simulate_like_the_service(
        model, sim_cfg, seed=5, catalogue=cat, candidates=cfg.candidates, filtering=cfg.filtering,
        service_seed=3,
    )  # fmt: skip
    cols = ["arm", "impressions", "clicks", "impressions_light", "impressions_heavy", "conversions"]
    a, b = http.per_user[cols], inproc.per_user[cols]
    assert int(a["impressions"].sum()) > 60 * 20 and int(a["clicks"].sum()) > 0
    same = (a.to_numpy() == b.to_numpy()).all(axis=1)
    assert same.mean() == 1.0, pd.concat([a, b], axis=1)[~same].head().to_string()


def test_in_process_counterpart_refuses_what_it_cannot_draw(tiny: Any) -> None:
    from intentrank.errors import ConfigError
    from intentrank.serving.config import CandidatesConfig, FilteringConfig

    cat = synthetic_catalogue(200, seed=4)
    sim_cfg = SimulatorConfig(users=4, days=1, candidates=50)
    with pytest.raises(ConfigError, match="popular = topic = similar = 0"):
        cands = CandidatesConfig(total=50, fresh=0, popular=10, topic=0, similar=0)
        simulate_like_the_service(tiny[1].model_, sim_cfg, catalogue=cat, candidates=cands)
    with pytest.raises(ConfigError, match=r"candidates.total \(40\) must equal simulator.candidates \(50\)"):
        cands = CandidatesConfig(total=40, fresh=0, popular=0, topic=0, similar=0)
        simulate_like_the_service(tiny[1].model_, sim_cfg, catalogue=cat, candidates=cands)
    with pytest.raises(ConfigError, match="recent_shown_s = 0"):
        simulate_like_the_service(tiny[1].model_, sim_cfg, catalogue=cat, filtering=FilteringConfig())


def test_simulate_target_refuses_clearly(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = os.environ | {"INTENTRANK_TOKEN": TOKEN}
        cmd = [sys.executable, "-m", "intentrank.cli.main", "simulate", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)

    r = run("--target", "http://127.0.0.1:9", "--users", "10", "--days", "1")  # nothing listens
    assert r.returncode == 2 and "error: GET http://127.0.0.1:9/healthz" in r.stderr
    r = run("--target", "http://127.0.0.1:9", "--out", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2 and "drop --out" in r.stderr


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s"])


def test_simulate_target_checks_the_catalogue(state: ServiceState) -> None:
    """The CLI path against a live server whose catalogue is not the simulator's: refused, one line."""
    from typer.testing import CliRunner

    from intentrank.cli.main import app

    with live_server(create_app(state)) as url:
        res = CliRunner().invoke(
            app, ["simulate", "--target", url, "--users", "5", "--days", "1", "--token", TOKEN]
        )
    assert res.exit_code == 2, res.output
    assert "the service holds 400 items, the simulator's catalogue" in res.stderr
