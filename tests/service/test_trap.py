"""The trap detector on synthetic per-user traffic: fires on CTR up with conversions flat, silent on an
A/A swap and on a version that raises conversions with CTR; the alert reaches /metrics and /v1/models."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from intentrank.service.app import create_app
from intentrank.service.config import TrapConfig
from intentrank.service.metrics import ServiceMetrics
from intentrank.service.trap import TrapDetector

from .conftest import make_state


def _traffic(det: TrapDetector, version: int, users: np.ndarray, ctr: float, conv: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20
    for u in users:
        click = rng.random(n) < ctr
        c = click & (rng.random(n) < conv)
        det.observe(np.full(n, version), np.full(n, "a", object), np.full(n, u), click, c,
                    np.where(click, 30.0, 0.0), np.zeros(n, bool), ts=0.0)  # fmt: skip


def _det() -> TrapDetector:
    return TrapDetector(TrapConfig(min_users=100), ServiceMetrics(["a"]), clock=lambda: 0.0)


def test_fires_when_ctr_rises_and_conversions_stay_flat(caplog) -> None:
    det = _det()
    users = np.arange(400)
    _traffic(det, 0, users, 0.10, 0.20, 1)
    assert det.evaluate() == []  # one version only
    _traffic(det, 1, users, 0.15, 0.13, 2)  # CTR +50%, conversions per user flat (0.15·0.13 ≈ 0.1·0.2)
    with caplog.at_level("WARNING", logger="intentrank.service.trap"):
        alerts = det.evaluate()
    assert len(alerts) == 1 and alerts[0]["version"] == 1 and alerts[0]["baseline_version"] == 0
    assert alerts[0]["ctr_rel"][1] > 0
    assert any("TRAP ALERT" in r.message for r in caplog.records)
    assert det.evaluate() == []  # raised once per version
    text = det.metrics.render().decode()
    assert 'intentrank_trap_alert{arm="a"} 1.0' in text
    assert det.report()["firing"] == {"a": True}


def test_silent_on_aa_and_on_intent_gains() -> None:
    for ctr1, conv1 in ((0.10, 0.20), (0.12, 0.25)):  # A/A; CTR and conversions per user both up
        det = _det()
        users = np.arange(400)
        _traffic(det, 0, users, 0.10, 0.20, 3)
        _traffic(det, 1, users, ctr1, conv1, 4)
        assert det.evaluate() == []
        assert det.report()["firing"] == {"a": False}


def test_service_feeds_the_detector_and_reports_it(tmp_path, tiny) -> None:
    st = make_state(tmp_path, tiny, trap={"min_users": 2, "evaluate_every_s": 0})
    try:
        client = TestClient(create_app(st))
        body = st.feed(1, "s", arm="unmitigated")
        from .test_worker import _events

        _events(st, body, lambda k, it: k < 3)
        assert st.trap is not None and (0, "unmitigated") in st.trap._users
        models = client.get("/v1/models").json()
        assert set(models["trap"]) >= {"firing", "comparisons", "alerts"}
        assert "intentrank_trap_alert" in client.get("/metrics").text
    finally:
        st.close()
