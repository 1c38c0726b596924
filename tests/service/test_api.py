"""Events into the store, auth, limits and clear 4xx errors, models and rollback, metrics, health."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from intentrank.service.sessions import Sessions

from .conftest import AUTH, TOKEN


def _slate(client: TestClient, user: int = 1, session: str = "s") -> dict:
    r = client.post("/v1/feed", json={"user_id": user, "session_id": session})
    assert r.status_code == 200, r.text
    return r.json()


def _events(slate: dict, n: int = 20, click_every: int = 4) -> list[dict]:
    out = []
    for k, it in enumerate(slate["items"][:n]):
        click = k % click_every == 0
        out.append(
            {
                "slate_id": slate["slate_id"],
                "item_id": it["item_id"],
                "click": click,
                "dwell_s": 30.0 if click else 0.0,
                "conversion": click and k % 8 == 0,
            }
        )
    return out


def test_acknowledged_events_are_in_the_store(client: TestClient, state) -> None:
    acked = []
    for s in range(3):
        slate = _slate(client, user=100 + s, session=f"e{s}")
        ev = _events(slate)
        r = client.post("/v1/events", json={"events": ev}, headers=AUTH)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["acknowledged"] == 20 and body["last_event_id"] - body["first_event_id"] == 19
        acked.append((slate, ev))
    stored = state.store.read_impressions(runs="all")
    assert len(stored) == 60
    assert set(stored["run_id"]) == {state.run.run_id}
    for slate, ev in acked:
        rows = stored[stored["slate_id"] == slate["slate_id"]].sort_values("position")
        assert rows["item_id"].tolist() == [it["item_id"] for it in slate["items"]]
        assert rows["user_id"].unique().tolist() == [slate["items"] and rows["user_id"].iloc[0]]
        assert rows["policy"].unique().tolist() == [slate["arm"]]
        assert rows["click"].tolist() == [e["click"] for e in ev]
        assert np.allclose(rows["propensity"], 1.0)
    assert sorted(stored["user_id"].unique()) == [100, 101, 102]  # user ids kept as they are


def test_auth_missing_401_wrong_403(client: TestClient) -> None:
    slate = _slate(client)
    body = {"events": _events(slate, 1)}
    r = client.post("/v1/events", json=body)
    assert r.status_code == 401 and "missing bearer token" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = client.post("/v1/events", json=body, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"})
    assert r.status_code == 403 and r.json()["detail"] == "wrong bearer token"
    r = client.post("/v1/events", json=body, headers={"Authorization": f"Basic {TOKEN}"})
    assert r.status_code == 401
    assert client.post("/v1/models/rollback").status_code == 401
    assert client.post("/v1/items", json={"retire": [0]}).status_code == 401
    assert client.post("/v1/events", json=body, headers=AUTH).status_code == 200


def test_bad_events_get_clear_4xx(client: TestClient, state) -> None:
    slate = _slate(client)
    sid, item = slate["slate_id"], slate["items"][0]["item_id"]

    def post(events: object, **kw: object):
        return client.post("/v1/events", json={"events": events}, headers=AUTH, **kw)

    r = post([{"slate_id": 99_999, "item_id": item, "click": False}])
    assert r.status_code == 404 and "unknown slate_id 99999" in r.json()["detail"]
    shown = {it["item_id"] for it in slate["items"]}
    other = next(i for i in range(400) if i not in shown)
    r = post([{"slate_id": sid, "item_id": other, "click": False}])
    assert r.status_code == 422 and f"item_id {other} was not shown in slate {sid}" in r.json()["detail"]
    r = post([{"slate_id": sid, "item_id": item, "click": False, "bounce": True}])
    assert r.status_code == 422 and "bounce and conversion need click" in r.json()["detail"]
    r = post([{"slate_id": sid, "item_id": item, "click": True, "dwell_s": -1}])
    assert r.status_code == 422 and "events.0.dwell_s" in r.json()["detail"]
    r = post([{"slate_id": sid, "item_id": item, "click": True, "colour": "red"}])
    assert r.status_code == 422 and "colour" in r.json()["detail"]
    r = post([{"slate_id": sid, "item_id": item, "click": False}] * 2)
    assert r.status_code == 409 and "duplicate event in the batch" in r.json()["detail"]
    assert post([]).status_code == 422
    r = client.post("/v1/events", content=b"{not json", headers=AUTH | {"content-type": "application/json"})
    assert r.status_code == 422 and "JSON" in r.json()["detail"]
    # nothing of the refused batches was stored; a good one is, and only once
    assert state.store.watermark() == -1
    assert post([{"slate_id": sid, "item_id": item, "click": False}]).status_code == 200
    r = post([{"slate_id": sid, "item_id": item, "click": False}])
    assert r.status_code == 409 and "already acknowledged" in r.json()["detail"]
    assert len(state.store.read_impressions(runs="all")) == 1


def test_limits(tmp_path, tiny) -> None:
    from fastapi.testclient import TestClient

    from intentrank.service.app import create_app

    from .conftest import make_state

    st = make_state(
        tmp_path,
        tiny,
        limits={
            "max_body_bytes": 4096,
            "max_events_per_batch": 3,
            "max_id_chars": 8,
            "max_pages_per_session": 2,
        },
    )
    try:
        client = TestClient(create_app(st))
        slate = _slate(client)
        _slate(client)
        r = client.post("/v1/feed", json={"user_id": 1, "session_id": "s"})
        assert r.status_code == 409 and "reached 2 pages (limits.max_pages_per_session)" in r.json()["detail"]
        r = client.post("/v1/events", json={"events": _events(slate, 4)}, headers=AUTH)
        assert r.status_code == 422 and "at most 3 items" in r.json()["detail"]
        r = client.post("/v1/feed", json={"user_id": 1, "session_id": "x" * 9})
        assert (
            r.status_code == 422 and "session_id" in r.json()["detail"] and "at most 8" in r.json()["detail"]
        )
        r = client.post("/v1/feed", json={"user_id": -1, "session_id": "s"})
        assert r.status_code == 422 and "user_id" in r.json()["detail"]
        big = b'{"titles": ["' + b"a" * 5000 + b'"]}'
        r = client.post("/v1/clickbait/score", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "larger than 4,096 bytes" in r.json()["detail"]

        def chunks():  # no Content-Length: the limit applies while the body streams in
            yield b'{"titles": ["'
            for _ in range(10):
                yield b"a" * 1000
            yield b'"]}'

        r = client.post("/v1/clickbait/score", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
    finally:
        st.close()


def test_rollback_changes_the_model_version(client: TestClient, state, tiny_model) -> None:
    assert client.get("/v1/models").json()["version"] == 0
    r = client.post("/v1/models/rollback", headers=AUTH)
    assert r.status_code == 409 and "no previous model" in r.json()["detail"]
    import copy

    v1 = state.publish(copy.deepcopy(tiny_model), "test")
    assert v1 == 1 and _slate(client, session="m1")["model_version"] == 1
    r = client.post("/v1/models/rollback", headers=AUTH)
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["version"] == 2 and m["previous_version"] == 1 and m["swaps"] == 2
    assert m["history"][-1]["source"] == "rollback to v0"
    assert state.slot.model is tiny_model  # the v0 weights serve again
    assert _slate(client, session="m2")["model_version"] == 2


def test_metrics_and_health(client: TestClient) -> None:
    slate = _slate(client, session="h")
    client.post("/v1/events", json={"events": _events(slate, 5)}, headers=AUTH)
    text = client.get("/metrics").text
    assert (
        'intentrank_request_seconds_bucket{endpoint="/v1/feed",le="0.001",method="POST",status="200"}' in text
    )
    assert "intentrank_events_acknowledged_total 5.0" in text
    assert "intentrank_model_version 0.0" in text and "intentrank_model_swaps 0.0" in text
    arm = slate["arm"]
    heavy = sum(it["category"] == "heavy" for it in slate["items"])
    assert f'intentrank_items_served_total{{arm="{arm}"}} 20.0' in text
    assert f'intentrank_heavy_clickbait_share{{arm="{arm}"}} {heavy / 20}' in text
    h = client.get("/healthz").json()
    assert h["status"] == "ok" and h["items"] == 400 and h["sessions"] == 1
    assert "/v1/feed" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


def test_sessions_are_bounded_by_count_and_ttl() -> None:
    now = [0.0]
    s = Sessions(max_sessions=3, ttl_s=10.0, clock=lambda: now[0])
    first = s.get(1, "a")
    for k in "bcd":
        s.get(1, k)
    assert len(s) == 3 and s.get(1, "a") is not first  # "a" was the least recently used: evicted
    now[0] = 100.0
    s.get(2, "z")
    assert len(s) == 1  # the idle ones expired
