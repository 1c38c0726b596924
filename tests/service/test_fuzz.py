"""Property-based fuzzing of the API: schemathesis against the OpenAPI spec, and hypothesis with arbitrary
JSON and mutated valid bodies on every endpoint; never a 5xx, and every 4xx carries a one-line detail."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from .conftest import AUTH

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
ENDPOINTS = ["/v1/feed", "/v1/events", "/v1/items", "/v1/clickbait/score", "/v1/models/rollback"]
FIELDS = {
    "/v1/feed": ["user_id", "session_id", "cursor", "arm", "explain"],
    "/v1/events": ["events"],
    "/v1/items": ["items", "retire"],
    "/v1/clickbait/score": ["titles"],
    "/v1/models/rollback": [],
}
EVENT_FIELDS = ["slate_id", "item_id", "click", "dwell_s", "bounce", "conversion"]
_sessions = itertools.count()
SETTINGS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _check(client: TestClient, path: str, body: Any, raw: bytes | None = None) -> None:
    content = raw if raw is not None else json.dumps(body).encode()
    r = client.post(path, content=content, headers=AUTH | {"content-type": "application/json"})
    assert r.status_code < 500, (path, body, r.text)
    if r.status_code >= 400:
        detail = r.json()["detail"]
        assert isinstance(detail, str) and detail and "\n" not in detail


@SETTINGS
@given(path=st.sampled_from(ENDPOINTS), body=json_values)
def test_arbitrary_json_never_5xx(client: TestClient, path: str, body: Any) -> None:
    _check(client, path, body)


@SETTINGS
@given(path=st.sampled_from(ENDPOINTS), raw=st.binary(max_size=200))
def test_arbitrary_bytes_never_5xx(client: TestClient, path: str, raw: bytes) -> None:
    _check(client, path, None, raw=raw)


@SETTINGS
@given(data=st.data())
def test_mutated_valid_bodies_never_5xx(client: TestClient, data: st.DataObject) -> None:
    session = f"fuzz{next(_sessions)}"  # a fresh session each example: pages never run out
    slate = client.post("/v1/feed", json={"user_id": 1, "session_id": session}).json()
    path = data.draw(st.sampled_from(ENDPOINTS[:4]))
    fields = FIELDS[path]
    body: dict[str, Any] = {f: data.draw(json_values) for f in data.draw(st.lists(st.sampled_from(fields)))}
    if path == "/v1/events":  # events that refer to a real slate, with fuzzed fields
        item = slate["items"][0]["item_id"] if slate["items"] else 0  # (a fuzzed update may retire all)
        ev = {"slate_id": slate["slate_id"], "item_id": item, "click": True}
        for f in data.draw(st.lists(st.sampled_from(EVENT_FIELDS), max_size=3)):
            ev[f] = data.draw(json_values)
        body = {"events": [ev] * data.draw(st.integers(1, 3))}
    elif path == "/v1/feed":
        body = {"user_id": 1, "session_id": "fuzz"} | body
    _check(client, path, body)


# -- schemathesis against the OpenAPI spec itself (in-process ASGI app; bounded examples) ---------------
# (its pytest plugin does not run under this pytest, so the operations' strategies are drawn directly)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_operations_never_5xx(client: TestClient, mode: GenerationMode) -> None:
    """Every operation of /openapi.json with bodies schemathesis generates from the spec (valid ones, and
    invalid ones): no 5xx; a 4xx is JSON with a one-line ``detail``. The token is sent, so the write
    endpoints are reached."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in ops} >= {"/v1/feed", "/v1/events", "/v1/items", "/v1/models/rollback"}
    calls: list[int] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        op = data.draw(st.sampled_from(ops))
        case = data.draw(op.as_strategy(generation_mode=mode))
        response = case.call(headers=AUTH)
        calls.append(response.status_code)
        assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])
        if response.status_code >= 400:
            detail = response.json()["detail"]
            assert isinstance(detail, str) and detail and "\n" not in detail

    run()
    assert len(calls) >= 20
    wanted = 200 if mode == GenerationMode.POSITIVE else 422  # it reached the endpoints / was refused
    assert wanted in calls, sorted(set(calls))
