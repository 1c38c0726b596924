"""The simulated clock (service.simulated_clock): requests carry their time in X-Intentrank-Clock and events
their own ``ts``; honoured only when the config turns it on, refused clearly otherwise, never far back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from intentrank.service.app import create_app
from intentrank.service.state import ServiceState

from .conftest import AUTH, make_state

CLOCK = "X-Intentrank-Clock"


@pytest.fixture()
def sim_state(tmp_path: Any, tiny: Any) -> Iterator[ServiceState]:
    st = make_state(tmp_path, tiny, simulated_clock=True, simulated_clock_tolerance_s=3_600.0)
    yield st
    st.close()


def _feed(client: TestClient, ts: float | str | None, user: int = 1, session: str = "s") -> Any:
    headers = {CLOCK: str(ts)} if ts is not None else {}
    return client.post("/v1/feed", json={"user_id": user, "session_id": session}, headers=headers)


def test_wall_clock_service_refuses_the_clock(client: TestClient) -> None:
    r = _feed(client, 100.0)
    assert r.status_code == 422 and "service.simulated_clock: false" in r.json()["detail"]
    slate = _feed(client, None).json()
    ev = {"slate_id": slate["slate_id"], "item_id": slate["items"][0]["item_id"], "click": False, "ts": 5.0}
    r = client.post("/v1/events", json={"events": [ev]}, headers=AUTH)
    assert r.status_code == 422 and "events.0: ts is accepted only with service.simulated_clock" in r.text
    assert client.get("/healthz").json()["simulated_clock"] is False


def test_simulated_clock_stamps_slates_and_events(sim_state: ServiceState) -> None:
    client = TestClient(create_app(sim_state))
    assert client.get("/healthz").json()["simulated_clock"] is True
    r = _feed(client, None)
    assert r.status_code == 422 and "send the request's time in the X-Intentrank-Clock" in r.json()["detail"]
    for bad in ("nan", "-1", "inf"):
        r = _feed(client, bad)
        assert r.status_code == 422 and "finite number of seconds" in r.json()["detail"], bad
    assert _feed(client, "soon").status_code == 422
    day2 = 86_400.0 + 9 * 3_600.0
    slate = _feed(client, day2).json()
    assert sim_state.slates.get(slate["slate_id"]).ts == day2  # the slate's time: the request's
    items = [it["item_id"] for it in slate["items"][:3]]
    sid = slate["slate_id"]
    events = [
        {"slate_id": sid, "item_id": items[0], "click": True, "dwell_s": 40.0, "ts": day2 + 12.5},
        {"slate_id": sid, "item_id": items[1], "click": False},  # no ts: the slate's
    ]
    r = client.post("/v1/events", json={"events": events}, headers=AUTH | {CLOCK: str(day2 + 13)})
    assert r.status_code == 200, r.text
    early = {"slate_id": slate["slate_id"], "item_id": items[2], "click": False, "ts": day2 - 1}
    r = client.post("/v1/events", json={"events": [early]}, headers=AUTH | {CLOCK: str(day2)})
    assert r.status_code == 422 and "events.0: ts" in r.text and "is before slate" in r.text
    stored = sim_state.store.read_impressions(runs="all").sort_values("position")
    assert stored["ts"].tolist() == [day2 + 12.5, day2] and stored["day"].tolist() == [1, 1]
    # read-your-writes on the simulated clock: the click is 12.5 s old at the next slate's time
    h = sim_state.history.last_click_ts([1])
    assert h.tolist() == [day2 + 12.5]
    # back within the tolerance (interleaved sessions) is fine; further back is refused
    assert _feed(client, day2 - 3_000, session="t").status_code == 200
    r = _feed(client, day2 - 3_700, session="u")
    assert r.status_code == 409 and "goes back more than 3600 s" in r.json()["detail"]
    assert sim_state.now() == day2 + 13  # outside a request: the latest time seen
