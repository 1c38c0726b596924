"""Read-your-writes through the pipeline, and the incremental training worker (swap, reject, crash
between checkpoint and watermark, corrupt checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from intentrank.service.app import create_app
from intentrank.service.config import WorkerConfig
from intentrank.service.schemas import request_models
from intentrank.service.state import ServiceState
from intentrank.service.worker import STATE_FILE, TrainingWorker
from intentrank.serving.pipeline import SOURCES, filter_mask, retrieve

from .conftest import AUTH, make_state


def _events(state: ServiceState, body: dict, click: Any) -> None:
    """Post an event per item of a served slate; ``click(k, item) -> bool``."""
    evs = []
    for k, it in enumerate(body["items"]):
        c = bool(click(k, it))
        evs.append({"slate_id": body["slate_id"], "item_id": it["item_id"], "click": c,
                    "dwell_s": 40.0 if c else 0.0, "conversion": c and k % 3 == 0})  # fmt: skip
    req = request_models(state.config.limits).EventsRequest.model_validate({"events": evs})
    state.ingest(req.events)  # type: ignore[attr-defined]


def test_clicks_on_a_topic_feed_the_topic_source_and_nothing_repeats(tmp_path, tiny) -> None:
    st = make_state(tmp_path, tiny)
    try:
        client = TestClient(create_app(st))
        body = client.post("/v1/feed", json={"user_id": 5, "session_id": "a", "explain": True}).json()
        assert not any(it["explain"]["source"] == "topic" for it in body["items"])  # no history yet
        snap = st.items.snapshot
        topic = snap.items["topic"].to_numpy()[body["items"][0]["item_id"]]
        evs = [{"slate_id": body["slate_id"], "item_id": it["item_id"],
                "click": snap.items["topic"].to_numpy()[it["item_id"]] == topic,
                "dwell_s": 40.0 if snap.items["topic"].to_numpy()[it["item_id"]] == topic else 0.0}
               for it in body["items"]]  # fmt: skip
        assert client.post("/v1/events", json={"events": evs}, headers=AUTH).status_code == 200
        shown = [it["item_id"] for it in body["items"]]
        nxt = client.post("/v1/feed", json={"user_id": 5, "session_id": "a", "cursor": body["cursor"],
                                            "explain": True}).json()  # fmt: skip
        src = [it["explain"]["source"] for it in nxt["items"]]
        ids = [it["item_id"] for it in nxt["items"]]
        assert not set(ids) & set(shown)
        # the candidates of the topic source are all of the clicked topic (the slate shows some of them)
        snap = st.items.snapshot
        user = st.signals(5, 2, st.now(), np.asarray(shown + ids), snap)
        assert user.topic_clicks is not None and user.topic_clicks.max() >= 1
        assert snap.topic_names[int(np.argmax(user.topic_clicks))] == topic
        mask = filter_mask(snap, user, st.config.filtering)
        cand, codes = retrieve(snap, user, mask, st.config.candidates, np.random.default_rng(0))
        got = cand[codes == SOURCES.index("topic")]
        assert len(got) == st.config.candidates.topic
        assert set(snap.items["topic"].to_numpy()[got]) == {topic}
        assert not np.isin(cand, shown + ids).any()
        assert set(src) <= {"fresh", "popular", "topic", "similar", "random"}
        # recently shown: a new session of the same user does not repeat what was just shown
        other = client.post("/v1/feed", json={"user_id": 5, "session_id": "b"}).json()
        assert not {it["item_id"] for it in other["items"]} & set(shown + ids)
    finally:
        st.close()


def _traffic(st: ServiceState, users: int, pages: int = 2, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for u in range(users):
        for _ in range(pages):
            body = st.feed(1000 + u, f"w{seed}", arm="unmitigated")
            _events(st, body, lambda k, it: rng.random() < 0.3)


def _worker(st: ServiceState, tmp_path: Path, **cfg: Any) -> TrainingWorker:
    base = {"min_new_events": 50, "probe_users": 4, "probe_candidates": 50, "replay_events": 500}
    w = TrainingWorker(st, WorkerConfig.model_validate(base | cfg), tmp_path / "worker")
    st.worker = w
    return w


def test_worker_swaps_when_not_worse_and_persists(tmp_path, tiny) -> None:
    st = make_state(tmp_path, tiny)
    try:
        w = _worker(st, tmp_path, max_auc_drop=1.0, max_heavy_share_rise=1.0)
        assert w.run_once().action == "skipped"  # no new events yet
        _traffic(st, 12)
        v0 = st.slot.version
        d = w.run_once()
        assert d.action == "swapped", d.reason
        assert st.slot.version == d.version > v0 and d.holdout_events > 0 and d.new_events > 0
        saved = json.loads((tmp_path / "worker" / STATE_FILE).read_text())
        assert saved["watermark"] == d.watermark == w.learner.watermark
        assert saved["watermark"] < st.store.watermark()  # the held-out events are not yet learned
        assert (tmp_path / "worker" / saved["checkpoint"]).is_dir()
        models = TestClient(create_app(st)).get("/v1/models").json()
        assert models["worker"]["last_decision"]["action"] == "swapped"
        assert models["previous_version"] == v0
        assert models["history"][-1]["metrics"]["holdout_events"] == d.holdout_events
        # the next feed is served by the new model
        assert st.feed(1, "after")["model_version"] == d.version
    finally:
        st.close()


def test_worker_rejects_a_worse_candidate(tmp_path, tiny, monkeypatch) -> None:
    st = make_state(tmp_path, tiny)
    try:
        w = _worker(st, tmp_path)
        _traffic(st, 8)
        real = w.validate
        calls = iter([0.5, 0.7])  # candidate AUC, then served AUC

        def fake(model: Any, hold: Any) -> dict[str, Any]:
            return real(model, hold) | {"click_auc": next(calls)}

        monkeypatch.setattr(w, "validate", fake)
        v0 = st.slot.version
        d = w.run_once()
        assert d.action == "rejected" and "click AUC" in d.reason
        assert st.slot.version == v0
        assert json.loads((tmp_path / "worker" / STATE_FILE).read_text())["version"] == v0
    finally:
        st.close()


class _CrashError(RuntimeError):
    pass


def test_crash_between_checkpoint_and_watermark_resumes_consistently(tmp_path, tiny) -> None:
    st = make_state(tmp_path, tiny)
    try:
        w = _worker(st, tmp_path, max_auc_drop=1.0, max_heavy_share_rise=1.0)
        before = json.loads((tmp_path / "worker" / STATE_FILE).read_text())
        _traffic(st, 8)

        def crash() -> None:
            raise _CrashError("killed between the checkpoint and worker.json")

        w._between_writes = crash  # type: ignore[method-assign]
        d = w.run_once()
        assert d.action == "failed" and "killed" in d.reason
        after = json.loads((tmp_path / "worker" / STATE_FILE).read_text())
        assert after == before  # the pointer still names the old, complete pair
    finally:
        st.close()
    st2 = make_state(tmp_path / "restart", tiny)
    try:
        w2 = _worker(st2, tmp_path)  # the same worker directory
        assert w2.checkpoint == before["checkpoint"] and w2.learner.watermark == before["watermark"]
        assert w2.last_error is None
        dirs = [p.name for p in (tmp_path / "worker").iterdir() if p.is_dir()]
        assert before["checkpoint"] in dirs
    finally:
        st2.close()


def test_corrupt_checkpoint_keeps_the_served_model(tmp_path, tiny, caplog) -> None:
    st = make_state(tmp_path, tiny)
    wdir = tmp_path / "worker"
    try:
        w = _worker(st, tmp_path)
        name = json.loads((wdir / STATE_FILE).read_text())["checkpoint"]
        for f in (wdir / name).iterdir():
            if f.suffix in (".pt", ".pth", ".bin", ".safetensors") or "weight" in f.name:
                f.write_bytes(b"not a checkpoint")
        v0 = st.slot.version
        assert w.reload() is False
        assert st.slot.version == v0 and "not loaded" in (w.last_error or "")
    finally:
        st.close()
    st2 = make_state(tmp_path / "restart", tiny)
    try:
        with caplog.at_level("ERROR", logger="intentrank.service.worker"):
            _worker(st2, tmp_path)
        assert st2.slot.version == 0  # the initial model still serves
        models = TestClient(create_app(st2)).get("/v1/models").json()
        assert "not loaded" in models["worker"]["last_error"]
        assert any("not loaded" in r.message for r in caplog.records)
        assert len(st2.feed(1, "s")["items"]) == 20
    finally:
        st2.close()


def test_train_and_reload_endpoints(tmp_path, tiny) -> None:
    st = make_state(tmp_path, tiny)
    try:
        client = TestClient(create_app(st))
        assert client.post("/v1/models/train", headers=AUTH).status_code == 409  # no worker yet
        assert client.post("/v1/models/train").status_code == 401
        _worker(st, tmp_path)
        r = client.post("/v1/models/train", headers=AUTH)
        assert r.status_code == 200 and r.json()["worker"]["rounds"] == 1
        assert r.json()["worker"]["last_decision"]["action"] == "skipped"  # nothing new yet
        r = client.post("/v1/models/reload", headers=AUTH)
        assert r.status_code == 200 and r.json()["version"] == 1
    finally:
        st.close()


def test_a_round_reads_at_most_max_new_events(tmp_path, tiny) -> None:
    st = make_state(tmp_path, tiny)
    try:
        w = _worker(st, tmp_path, max_auc_drop=1.0, max_heavy_share_rise=1.0, max_new_events=100)
        start = w.learner.watermark
        _traffic(st, 8)
        last = st.store.watermark()
        assert last - start > 100
        d = w.run_once()
        assert d.action == "swapped" and "skipped: max_new_events" in d.reason
        assert d.new_events + d.holdout_events == 100 and d.watermark >= last - 100
    finally:
        st.close()
