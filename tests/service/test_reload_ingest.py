"""POST /v1/models/reload (the served checkpoint again, as a new version; a broken one keeps the old
model) and group commit (concurrent event batches: each acknowledged once, in committed transactions)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from intentrank.service.app import create_app
from intentrank.service.state import ServiceState

from .conftest import AUTH


def test_reload_publishes_the_checkpoint_and_survives_a_broken_one(state: ServiceState, tiny: Any,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    model_dir = tiny[1].save(tmp_path / "model")
    client = TestClient(create_app(state, model_dir))
    assert client.post("/v1/models/reload").status_code == 401
    v0 = client.get("/v1/models").json()["version"]
    r = client.post("/v1/models/reload", headers=AUTH)
    assert r.status_code == 200 and r.json()["version"] == v0 + 1
    assert "reload of" in r.json()["history"][-1]["source"]
    slate = client.post("/v1/feed", json={"user_id": 1, "session_id": "a"}).json()
    assert slate["model_version"] == v0 + 1
    for f in model_dir.iterdir():  # a corrupt checkpoint: refused, the old model keeps serving
        f.write_bytes(b"garbage")
    r = client.post("/v1/models/reload", headers=AUTH)
    assert r.status_code == 409 and "the old model keeps serving" in r.json()["detail"]
    assert client.get("/v1/models").json()["version"] == v0 + 1
    no_dir = TestClient(create_app(state))
    assert no_dir.post("/v1/models/reload", headers=AUTH).status_code == 409


def test_concurrent_batches_are_each_acknowledged_once(state: ServiceState) -> None:
    client = TestClient(create_app(state))
    slates = [client.post("/v1/feed", json={"user_id": u, "session_id": "g"}).json() for u in range(12)]
    batches = [[{"slate_id": s["slate_id"], "item_id": it["item_id"], "click": False} for it in s["items"]]
               for s in slates]  # fmt: skip
    batches.append(batches[0])  # the same batch twice: one of the two gets 409
    results: list[tuple[int, dict]] = []
    lock = threading.Lock()

    def post(b: list[dict]) -> None:
        r = client.post("/v1/events", json={"events": b}, headers=AUTH)
        with lock:
            results.append((r.status_code, r.json()))

    threads = [threading.Thread(target=post, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(c for c, _ in results)
    assert codes == [200] * 12 + [409], codes
    ranges = sorted((b["first_event_id"], b["last_event_id"]) for c, b in results if c == 200)
    assert all(hi - lo + 1 == 20 for lo, hi in ranges)
    assert all(ranges[k][1] < ranges[k + 1][0] for k in range(len(ranges) - 1))  # disjoint
    stored = state.store.read_impressions(runs="all")
    acked_ids = [i for lo, hi in ranges for i in range(lo, hi + 1)]
    assert len(stored) == 240 and sorted(stored["event_id"]) == acked_ids
    assert state._committer.batches == 13 and state._committer.commits <= 13


def test_group_committer_groups_what_queues_during_a_commit() -> None:
    import time

    from intentrank.service.group_commit import GroupCommitter, Pending

    groups: list[list[int]] = []

    def commit(group: list[Pending]) -> None:
        time.sleep(0.05)  # a slow fsync: the others queue meanwhile
        if any(p.payload == 13 for p in group):
            raise OSError("disk full")
        groups.append([p.payload for p in group])
        for p in group:
            p.result = p.payload * 10

    gc = GroupCommitter(commit)
    out: dict[int, object] = {}

    def submit(k: int) -> None:
        try:
            out[k] = gc.submit(k)
        except OSError as err:
            out[k] = err

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == {k: k * 10 for k in range(12)}  # each got its own result
    assert sorted(k for g in groups for k in g) == list(range(12)) and len(groups) < 12  # shared commits
    submit(13)
    # a failed transaction fails its batches with the store's error, and no result is recorded for them
    assert isinstance(out[13], OSError) and str(out[13]) == "disk full"
    assert all(13 not in g for g in groups)
