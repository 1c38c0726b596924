"""The /v1/feed route: the same JSON as the FeedResponse model serialises; built off the event loop."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient

from intentrank.service.app import _feed_json, create_app
from intentrank.service.schemas import FeedResponse


@pytest.mark.parametrize("explain", [False, True])
def test_feed_body_is_what_the_response_model_serialises(client: TestClient, explain: bool) -> None:
    r = client.post("/v1/feed", json={"user_id": 3, "session_id": f"s{explain}", "explain": explain})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert len(body["items"]) > 0
    model = FeedResponse.model_validate(body)
    assert body == json.loads(model.model_dump_json())  # nothing missing, nothing extra, same values
    assert all((it["explain"] is not None) == explain for it in body["items"])


def test_non_finite_numbers_fall_back_to_the_models_serialiser() -> None:
    body = {"slate_id": 1, "cursor": "c", "model_version": 0, "arm": "a", "items": [
        {"item_id": 1, "title": "t", "score": float("nan"), "clickbait_score": 0.1, "category": "non",
         "propensity": 1.0}]}  # fmt: skip
    out = json.loads(_feed_json(body))
    assert out["items"][0]["score"] is None and out["items"][0]["explain"] is None


def test_slates_are_built_on_the_feed_threads(state, monkeypatch) -> None:
    names: list[str] = []
    real = state.feed

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        names.append(threading.current_thread().name)
        return real(*a, **k)

    monkeypatch.setattr(state, "feed", spy)
    with TestClient(create_app(state)) as c:
        for k in range(3):
            assert c.post("/v1/feed", json={"user_id": k, "session_id": "x"}).status_code == 200
    assert len(names) == 3 and all(n.startswith("feed") for n in names)


def test_feed_route_documents_its_body_and_clock_header(client: TestClient) -> None:
    """The route reads its raw body (no FastAPI body parameter): the schema is still in /openapi.json."""
    op = client.get("/openapi.json").json()["paths"]["/v1/feed"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"user_id", "session_id", "cursor", "arm", "explain"}
    assert body["required"] == ["user_id", "session_id"] and body["additionalProperties"] is False
    assert [p["name"] for p in op["parameters"]] == ["x-intentrank-clock"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("FeedResponse")
    assert "422" in op["responses"]


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"user_id": -1, "session_id": "s"}', "body.user_id"),
        (b'{"user_id": 1}', "body.session_id: Field required"),
        (b'{"user_id": 1, "session_id": "s", "colour": 1}', "body.colour: Extra inputs"),
        (b'{"user_id": 1, "session_id": "s"', "body: Invalid JSON"),
        (b"", "body: Invalid JSON"),
    ],
)
def test_feed_route_refuses_bad_bodies_field_by_field(client: TestClient, raw: bytes, where: str) -> None:
    r = client.post("/v1/feed", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith(where) and r.json()["errors"]


def test_clock_header_must_be_a_number(client: TestClient) -> None:
    r = client.post("/v1/feed", json={"user_id": 1, "session_id": "s"}, headers={"X-Intentrank-Clock": "x"})
    assert r.status_code == 422, r.text
    assert r.json()["detail"].startswith("header.'x-intentrank-clock': Input should be a valid number")
