"""Durability through the real server: every event acknowledged by /v1/events is in the store after the
``intentrank serve`` process is SIGKILLed mid-load (one subprocess test; prints the counts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from intentrank.store import EventStore

from .conftest import TOKEN


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become healthy")


def test_acknowledged_events_survive_sigkill(tmp_path: Path, tiny) -> None:
    items, trainer = tiny
    model_dir = trainer.save(tmp_path / "model")
    items_path = tmp_path / "items.parquet"
    items.to_parquet(items_path)
    store_path = tmp_path / "events.duckdb"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = os.environ | {"INTENTRANK_TOKEN": TOKEN}
    cmd = [
        sys.executable,
        "-m",
        "intentrank.cli.main",
        "serve",
        "--items",
        str(items_path),
        "--model",
        str(model_dir),
        "--store",
        str(store_path),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    acked: list[tuple[int, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    try:
        _wait_healthy(url, proc)

        def load(worker: int) -> None:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=url, timeout=5.0) as client:
                n = 0
                while not stop.is_set():
                    try:
                        slate = client.post(
                            "/v1/feed", json={"user_id": worker, "session_id": f"s{n}"}
                        ).json()
                        ev = [
                            {
                                "slate_id": slate["slate_id"],
                                "item_id": it["item_id"],
                                "click": k == 0,
                                "dwell_s": 20.0 if k == 0 else 0.0,
                            }
                            for k, it in enumerate(slate["items"])
                        ]
                        r = client.post("/v1/events", json={"events": ev}, headers=headers)
                    except (httpx.HTTPError, KeyError, ValueError):
                        return  # the server is gone
                    if r.status_code == 200:
                        with lock:
                            acked.extend((e["slate_id"], e["item_id"]) for e in ev)
                    n += 1

        threads = [threading.Thread(target=load, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30.0
        while len(acked) < 2_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests are in flight
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert len(acked) >= 200, "too little load reached the server"
    with EventStore(store_path) as store:  # reopening replays the write-ahead log
        found = store.read_impressions(runs="all")
        runs = store.runs()
    pairs = set(zip(found["slate_id"].tolist(), found["item_id"].tolist(), strict=True))
    missing = [p for p in acked if p not in pairs]
    print(
        f"\ndurability: acknowledged {len(acked)} events, found {len(found)} in the store, "
        f"missing {len(missing)} (found - acknowledged = {len(found) - len(acked)} committed in flight)"
    )
    assert not missing
    assert runs["status"].tolist() == ["running"]  # killed: the run was never marked complete


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-s"])
