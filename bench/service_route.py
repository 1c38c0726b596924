"""CPU per request of the HTTP app around the ranking: POST /v1/feed through the ASGI app, no network.

The app (:func:`intentrank.service.app.create_app`: middleware, routing, validation, JSON, metrics) is
called directly as an ASGI callable on one asyncio loop, with the service's ``feed`` replaced by a stub
that returns a copy of one real slate body: what is measured is everything a request costs the server
besides building the slate and besides uvicorn's socket and HTTP parsing (bench/service_load.py measures
those under wrk). Thread CPU time per request, so the figure holds on a shared machine (read it as a
ratio between two runs taken side by side). ``--profile`` prints cProfile's top functions.

Usage: ``PYTHONPATH=src .venv/bin/python bench/service_route.py [--requests 3000] [--profile]``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import json
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any


def build_app(tmp: Path) -> tuple[Any, Any]:
    """(app, state) on 2,000 synthetic items and an untrained tiny ranker; ``state.feed`` stubbed."""
    import torch

    from intentrank.ranking.config import RankerConfig
    from intentrank.ranking.models.multitask import MultiTaskRanker
    from intentrank.service.app import create_app
    from intentrank.service.config import ServiceConfig
    from intentrank.service.state import ServiceState
    from intentrank.simulator.catalogue import synthetic_catalogue
    from intentrank.store import EventStore

    torch.manual_seed(0)
    items = synthetic_catalogue(2_000, seed=0).items
    model = MultiTaskRanker(RankerConfig.model_validate(
        {"model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}}}
    ))  # fmt: skip
    cands = {"total": 200, "fresh": 30, "popular": 20, "topic": 30, "similar": 30}
    cfg = ServiceConfig.model_validate({"candidates": cands})
    state = ServiceState(cfg, items, model, EventStore(tmp / "events.duckdb"), "bench-token-0123456789")
    body = state.feed(0, "s0")
    state.feed = lambda *a, **k: copy.deepcopy(body)  # type: ignore[method-assign]
    return create_app(state), state


async def call(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    """One request through the ASGI app: (status, response body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip
    sent = False
    status, out = 0, bytearray()

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        nonlocal status
        if msg["type"] == "http.response.start":
            status = msg["status"]
        elif msg["type"] == "http.response.body":
            out.extend(msg.get("body", b""))

    await app(scope, receive, send)
    return status, bytes(out)


async def run(app: Any, n: int) -> list[float]:
    """CPU ms (this thread; the feed pool's threads are not counted) per request of ``n`` requests."""
    cpu = []
    for k in range(n):
        body = json.dumps({"user_id": k, "session_id": f"s{k}"}).encode()
        c0 = time.thread_time()
        status, _ = await call(app, "/v1/feed", body)
        cpu.append((time.thread_time() - c0) * 1e3)
        if status != 200:
            raise SystemExit(f"status {status}")
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=3_000)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        app, state = build_app(Path(tmp))

        async def main_async() -> dict[str, Any]:
            async with app.router.lifespan_context(app):
                await run(app, 200)  # warm-up
                if args.profile:
                    prof = cProfile.Profile()
                    prof.enable()
                t0, c0 = time.perf_counter(), time.process_time()
                cpu = await run(app, args.requests)
                wall, proc_cpu = time.perf_counter() - t0, time.process_time() - c0
                if args.profile:
                    prof.disable()
                    pstats.Stats(prof).sort_stats("tottime").print_stats(25)
            cpu.sort()
            return {
                "requests": args.requests,
                "loop_thread_cpu_ms_per_request": {
                    "mean": round(sum(cpu) / len(cpu), 4), "p50": round(cpu[len(cpu) // 2], 4),
                    "p99": round(cpu[int(0.99 * len(cpu))], 4),
                },
                "process_cpu_ms_per_request": round(1e3 * proc_cpu / args.requests, 4),
                "wall_ms_per_request": round(1e3 * wall / args.requests, 4),
            }

        out = asyncio.run(main_async())
        state.close()
    out["load_average"] = os.getloadavg()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
