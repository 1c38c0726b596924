"""Event ingestion over HTTP: batches of 1,000 events posted to a real ``intentrank serve`` on loopback.

The server (bench/service_server.py: 47,290 synthetic items, a tiny ranker, slates of 200 items so a
batch refers to 5 slates) first serves the slates; the events of those slates (10% clicks) are
serialised ahead, then ``--clients`` threads post them as fast as they are acknowledged (each
acknowledgement comes after the store's COMMIT; concurrent batches share commits, see
service/group_commit.py). Prints JSON: events/s, ack latency p50/p90/p99 per 1,000-event batch, the
store's row count afterwards (every acknowledged event must be there), and the machine load.

``--in-process``: no server; the same batches through ``parse_events`` + ``ServiceState.ingest_columns``
on one thread, with the CPU per batch split into parsing, the store's append + COMMIT, the user-history
update and the trap detector (CPU time: what a batch costs a core, less inflated by a loaded machine).

Usage: ``PYTHONPATH=src .venv/bin/python bench/service_ingest.py [--batches 200] [--clients 4]
[--in-process]``.
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


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _counter(text: str, name: str) -> float:
    """A counter's value in Prometheus text (0 if absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def in_process(batches: int, n_items: int) -> None:
    """CPU ms per 1,000-event batch of parsing and ingesting in process (see the module docstring)."""
    import torch

    from intentrank.ranking.config import RankerConfig
    from intentrank.ranking.models.multitask import MultiTaskRanker
    from intentrank.service.config import ServiceConfig
    from intentrank.service.schemas import request_models
    from intentrank.service.state import ServiceState
    from intentrank.simulator.catalogue import synthetic_catalogue
    from intentrank.store import EventStore
    from service_server import TINY

    torch.set_num_threads(1)
    items = synthetic_catalogue(n_items, seed=0).items
    model = MultiTaskRanker(RankerConfig.model_validate(TINY))
    random_only = {"total": 1000, "fresh": 0, "popular": 0, "topic": 0, "similar": 0}
    cfg = ServiceConfig.model_validate(
        {"slate_size": SLATE, "limits": {"max_pages_per_session": 1000}, "candidates": random_only}
    )
    with tempfile.TemporaryDirectory() as tmp, EventStore(Path(tmp) / "b.duckdb") as store:
        state = ServiceState(cfg, items, model, store, token="x" * 16)
        parse = request_models(cfg.limits).parse_events
        bodies = []
        for b in range(batches):
            slates = [state.feed(b * 5 + k, f"s{b * 5 + k}") for k in range(1000 // SLATE)]
            events = [
                {"slate_id": s["slate_id"], "item_id": it["item_id"], "click": j % 10 == 0,
                 "dwell_s": 30.0 if j % 10 == 0 else 0.0}
                for s in slates for j, it in enumerate(s["items"])
            ]  # fmt: skip
            bodies.append(json.dumps({"events": events}).encode())
        parts = {"append_commit": 0.0, "history": 0.0, "trap": 0.0}

        def timed(obj: object, name: str, key: str) -> None:
            f = getattr(obj, name)

            def g(*a: object, **k: object) -> object:
                c = time.process_time()
                try:
                    return f(*a, **k)
                finally:
                    parts[key] += time.process_time() - c

            setattr(obj, name, g)

        timed(state.run, "append", "append_commit")
        timed(state.history, "update", "history")
        if state.trap is not None:
            timed(state.trap, "observe", "trap")
        cpu_parse, cpu_ingest, wall = [], [], []
        for body in bodies:
            c0, w0 = time.process_time(), time.perf_counter()
            cols = parse(body)
            c1 = time.process_time()
            state.ingest_columns(cols)
            cpu_parse.append(c1 - c0)
            cpu_ingest.append(time.process_time() - c1)
            wall.append(time.perf_counter() - w0)
        state.close()
    ms = lambda x: round(float(np.mean(x)) * 1e3, 2)  # noqa: E731
    out = {
        "batches": batches,
        "cpu_ms_per_batch": {"parse": ms(cpu_parse), "ingest": ms(cpu_ingest)}
        | {k: round(v * 1e3 / batches, 2) for k, v in parts.items()},
        "wall_ms_per_batch_p50": round(float(np.median(wall)) * 1e3, 2),
        "cpu_events_per_s_one_core": round(1000 / (np.mean(cpu_parse) + np.mean(cpu_ingest))),
        "load_average": os.getloadavg(),
    }
    print(json.dumps(out, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batches", type=int, default=200, help="Batches of 1,000 events to post.")
    ap.add_argument("--clients", type=int, default=4, help="Concurrent posting connections.")
    ap.add_argument("--items", type=int, default=47_290)
    ap.add_argument("--in-process", action="store_true", help="CPU per batch in process, no server.")
    ap.add_argument("--service", default="{}", help="More service settings as JSON (the server's).")
    args = ap.parse_args()
    if args.in_process:
        in_process(args.batches, args.items)
        return
    per_batch = 1000 // SLATE
    with tempfile.TemporaryDirectory() as tmp:
        service = {"slate_size": SLATE, "limits": {"max_pages_per_session": 1000}} | json.loads(args.service)
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

            t0, cpu0 = time.perf_counter(), _cpu_s(proc.pid)
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall, server_cpu = time.perf_counter() - t0, _cpu_s(proc.pid) - cpu0
            metrics = httpx.get(url + "/metrics").text
            commits = _counter(metrics, "intentrank_event_commits_total")
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
        # CPU the server process spent per acknowledged batch (all its threads; a figure the machine's
        # load inflates less than the wall-clock ones) and how many batches shared a commit
        "server_cpu_ms_per_batch": round(server_cpu * 1e3 / max(len(lat), 1), 2),
        "batches_per_commit": round(len(lat) / commits, 2) if commits else None,
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
