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
