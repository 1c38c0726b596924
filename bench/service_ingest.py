"""Event ingestion over HTTP: batches of 1,000 events posted to a real ``intentrank serve`` on loopback.

The server (bench/service_server.py: 47,290 synthetic items, a tiny ranker, slates of 200 items so a
batch refers to 5 slates) first serves the slates; the events of those slates (10% clicks) are
serialised ahead, then ``--clients`` threads post them as fast as they are acknowledged (each
acknowledgement comes after the store's COMMIT; concurrent batches share commits, see
service/group_commit.py). Prints JSON: events/s, ack latency p50/p90/p99 per 1,000-event batch, the
store's row count afterwards (every acknowledged event must be there), and the machine load.

Usage: ``PYTHONPATH=src .venv/bin/python bench/service_ingest.py [--batches 200] [--clients 4]``.
Issue 13's target: ≥ 50,000 events/s acknowledged durably in batches of 1,000.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from service_server import TOKEN, start, stop

SLATE = 200


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=200, help="Batches of 1,000 events to post.")
    ap.add_argument("--clients", type=int, default=4, help="Concurrent posting connections.")
    ap.add_argument("--items", type=int, default=47_290)
    args = ap.parse_args()
    per_batch = 1000 // SLATE
    with tempfile.TemporaryDirectory() as tmp:
        service = {"slate_size": SLATE, "limits": {"max_pages_per_session": 1000}}
        url, proc = start(Path(tmp), service, items=args.items, tiny=True)
        try:
            t0 = time.perf_counter()

            def slate(k: int) -> dict:
                with httpx.Client(base_url=url, timeout=60) as c:
                    return c.post("/v1/feed", json={"user_id": k, "session_id": f"i{k}"}).json()

            with ThreadPoolExecutor(4) as pool:
                slates = list(pool.map(slate, range(args.batches * per_batch)))
            seed_s = time.perf_counter() - t0
            bodies = []
            for b in range(args.batches):
                events = [
                    {
                        "slate_id": s["slate_id"],
                        "item_id": it["item_id"],
                        "click": j % 10 == 0,
                        "dwell_s": 30.0 if j % 10 == 0 else 0.0,
                    }
                    for s in slates[b * per_batch : (b + 1) * per_batch]
                    for j, it in enumerate(s["items"])
                ]
                bodies.append(json.dumps({"events": events}).encode())
            lat: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            next_batch = iter(range(args.batches))

            def client() -> None:
                headers = {"Authorization": f"Bearer {TOKEN}", "content-type": "application/json"}
                with httpx.Client(base_url=url, timeout=60, headers=headers) as c:
                    while True:
                        with lock:
                            b = next(next_batch, None)
                        if b is None:
                            return
                        t = time.perf_counter()
                        r = c.post("/v1/events", content=bodies[b])
                        ms = (time.perf_counter() - t) * 1e3
                        with lock:
                            lat.append(ms)
                            if r.status_code != 200 or r.json()["acknowledged"] != 1000:
                                errors.append(f"{r.status_code}: {r.text[:200]}")

            t0 = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
        finally:
            stop(proc)
        from intentrank.store import EventStore

        with EventStore(Path(tmp) / "events.duckdb", read_only=True) as st:
            stored = len(st.read_impressions(runs="all"))
    a = np.asarray(lat)
    acked = 1000 * (len(lat) - len(errors))
    out = {
        "batches": args.batches,
        "events_per_batch": 1000,
        "clients": args.clients,
        "seconds": round(wall, 3),
        "events_per_s": round(acked / wall),
        "ack_ms": {f"p{q}": round(float(np.percentile(a, q)), 2) for q in (50, 90, 99)} | {
            "max": round(float(a.max()), 2)
        },
        "errors": len(errors),
        "first_errors": errors[:3],
        "acknowledged": acked,
        "stored": stored,
        "seeding_feed_s": round(seed_s, 1),
        "load_average": os.getloadavg(),
        "cpus": os.cpu_count(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
