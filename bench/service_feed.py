"""In-process latency of the feed service: ranking 1,000 candidates into a 20-item slate on one thread.

Two measurements on a catalogue of the shipped size (47,290 synthetic items, so no scorer is needed)
and the default ranker architecture (untrained weights: the arithmetic is the same as a trained model's):

* ``rank``: the ranking step alone for a given set of 1,000 candidates — the scoring stage (fast path:
  item-side inputs precomputed per model and catalogue, request-side ones per request, one forward
  pass), formula × the heuristic penalty, top-20 (``ServiceState.score_candidates`` + ``order_slate``);
  ``rank_generic`` the same with ``scoring.fast: false`` (feature rows per candidate, the old path);
  ``*_cpu``: the thread's CPU time per call (on a shared machine, what the call costs one core);
* ``control_forward``: measured interleaved with ``rank`` (one call each in turn): the served model's
  plain forward over one fixed input of as many rows as ``rank`` scores with the model (1,000, or the
  ``--prerank`` count; the same arithmetic every call: no gathers, no history,
  no new allocation pattern), with ``control_corr`` the correlation of the two per-call CPU times. A tail
  in ``rank_cpu`` that ``control_forward`` shares (high correlation, the same p99/p50) comes from the
  machine (other processes' use of the core and caches), not from the rank call's own work;
* ``rank_unsplit``: the same without the split of the first linear maps (``scoring.split: false``);
* ``feed``: a whole ``ServiceState.feed`` call (the /v1/feed work without HTTP): retrieval (fresh +
  popular + random, minus the session's shown items), ranking, ordering, slate and session bookkeeping;
  sessions of 5 pages;
* ``ingest`` (with ``--ingest-batches N``): batches of 1,000 events of served slates, JSON-validated by
  the request model and stored by ``ServiceState.ingest`` (one committed transaction each): events/s
  and the ack latency.

Target of issue 13: p99 ≤ 5 ms for ``rank``. Usage:
``.venv/bin/python bench/service_feed.py [--seconds 10] [--stochastic] [--tiny-model] [--prerank 200]
[--model JSON] [--ingest-batches 0] [--calls N]`` (a quarter of the time per measurement, or N calls
each, ``rank_generic`` a fifth: on a busy machine a count gives each run the same sample); prints
JSON. On a shared machine read the ``*_cpu`` figures (thread CPU time) next to ``load_average``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.service.config import ServiceConfig
from intentrank.service.schemas import request_models
from intentrank.service.state import DAY_S, ServiceState
from intentrank.serving.pipeline import UserSignals, order_slate
from intentrank.simulator.catalogue import synthetic_catalogue
from intentrank.store import EventStore


def _stats(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {
        "n": len(a),
        "mean_ms": round(float(a.mean()), 3),
        **{f"p{q}_ms": round(float(np.percentile(a, q)), 3) for q in (50, 90, 99)},
        "max_ms": round(float(a.max()), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="Total measuring time (split in two).")
    ap.add_argument("--items", type=int, default=47_290)
    ap.add_argument("--stochastic", action="store_true", help="Plackett–Luce ordering instead of top-20.")
    ap.add_argument(
        "--tiny-model",
        action="store_true",
        help="A tiny architecture (MLP [16], one cross layer): shows what is not the model's forward pass.",
    )
    ap.add_argument(
        "--calls", type=int, default=0, help="Calls per measurement instead of a time (rank_generic: N/5)."
    )
    ap.add_argument(
        "--ingest-batches", type=int, default=20, help="Batches of 1,000 events to ingest (0: skip)."
    )
    ap.add_argument(
        "--model",
        default="",
        help="Architecture overrides of the ranker as JSON "
        '(e.g. \'{"model": {"mlp_hidden": [64, 32]}}\'); default: the default architecture.',
    )
    ap.add_argument(
        "--prerank", type=int, default=0,
        help="Two-stage scoring: the model per user on the best N by the cached user-independent score.",
    )  # fmt: skip
    args = ap.parse_args()
    torch.set_num_threads(1)
    cat = synthetic_catalogue(args.items, seed=0)
    arch = {"model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}}}
    model = MultiTaskRanker(
        RankerConfig.model_validate(arch if args.tiny_model else json.loads(args.model or "{}"))
    )
    cfg = ServiceConfig.model_validate({"stochastic": args.stochastic, "scoring": {"prerank": args.prerank}})
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp, EventStore(Path(tmp) / "bench.duckdb") as store:
        state = ServiceState(cfg, cat.items, model, store, token="x" * 16)
        arm = "heuristic"
        snap = state.items.snapshot
        quarter = args.seconds / 4

        def rank_once() -> None:
            cand = rng.choice(len(snap), 1000, replace=False)
            ts = state.now()
            user = UserSignals(int(rng.integers(1 << 30)), 0, ts, int(ts // DAY_S), np.empty(0, np.int64))
            src = np.zeros(len(cand), np.int8)
            parts = state.score_candidates(snap, state.slot.model, user, cand, src, arm)
            order_slate(parts["score"], 20)

        cpu: dict[str, list[float]] = {}
        prep = state.scorer_stage.prepared(snap, state.slot.model)
        scored = args.prerank if 0 < args.prerank < 1000 else 1000  # rows the model scores per rank call
        fixed = prep.x_item[:scored].clone() if prep is not None else None

        def control() -> None:
            """The served model's forward over one fixed input (see ``control_forward``)."""
            with torch.inference_mode():
                prep._forward(fixed)

        def more(start: float, done: int, calls: int) -> bool:
            """Whether a measurement goes on: by count with ``--calls``, else by time."""
            return done < calls if calls else time.perf_counter() < start + quarter

        def measure(fn, name: str, ctrl=None, calls: int = args.calls) -> list[float]:  # type: ignore[no-untyped-def]
            """Wall ms per call; the thread's CPU ms per call go to ``cpu[name]`` (what the call costs
            a core, without the waits of a shared machine); ``ctrl`` runs after each call, its CPU ms to
            ``cpu["control_forward"]``."""
            for _ in range(50):  # warm-up (item-side inputs are prepared once here)
                fn()
            out: list[float] = []
            cpu[name] = []
            if ctrl is not None:
                cpu["control_forward"] = []
            start = time.perf_counter()
            while more(start, len(out), calls):
                t0, c0 = time.perf_counter(), time.thread_time()
                fn()
                out.append((time.perf_counter() - t0) * 1e3)
                cpu[name].append((time.thread_time() - c0) * 1e3)
                if ctrl is not None:
                    c0 = time.thread_time()
                    ctrl()
                    cpu["control_forward"].append((time.thread_time() - c0) * 1e3)
            return out

        rank_ms = measure(rank_once, "rank", control if fixed is not None else None)
        fast = state.scorer_stage.config
        state.scorer_stage.config = fast.model_copy(update={"split": False})
        unsplit_ms = measure(rank_once, "rank_unsplit")
        state.scorer_stage.config = fast.model_copy(update={"fast": False})
        generic_ms = measure(rank_once, "rank_generic", calls=max(args.calls // 5, 20) if args.calls else 0)
        state.scorer_stage.config = fast

        feed_ms: list[float] = []
        cpu["feed"] = []
        for k in range(10):  # warm-up: the served model's item side is prepared again (split on)
            state.feed(10**8 + k, "warm", arm=arm)
        n = 0
        start = time.perf_counter()
        while more(start, n, args.calls):
            user, session = n // 5, f"s{n // 5}"
            t0, c0 = time.perf_counter(), time.thread_time()
            body = state.feed(user, session, arm=arm)
            feed_ms.append((time.perf_counter() - t0) * 1e3)
            cpu["feed"].append((time.thread_time() - c0) * 1e3)
            assert len(body["items"]) == 20
            n += 1
        ingest_ms: list[float] = []
        models = request_models(cfg.limits)
        for b in range(args.ingest_batches):
            events = []
            for k in range(50):
                body = state.feed(1_000_000 + b * 50 + k, "ingest")
                events += [
                    {
                        "slate_id": body["slate_id"],
                        "item_id": it["item_id"],
                        "click": j == 0,
                        "dwell_s": 30.0 if j == 0 else 0.0,
                    }
                    for j, it in enumerate(body["items"])
                ]
            payload = json.dumps({"events": events})
            t0 = time.perf_counter()
            req = models.EventsRequest.model_validate_json(payload)
            n, _, _ = state.ingest(req.events)  # type: ignore[attr-defined]
            ingest_ms.append((time.perf_counter() - t0) * 1e3)
            assert n == 1000
        state.close()
    out = {
        "items": args.items,
        "candidates": 1000,
        "slate": 20,
        "torch_threads": torch.get_num_threads(),
        "stochastic": args.stochastic,
        "model": "tiny" if args.tiny_model else (json.loads(args.model) if args.model else "default"),
        "prerank": args.prerank,
        "rank": _stats(rank_ms),
        "rank_cpu": _stats(cpu["rank"]),
        "control_forward_cpu": _stats(cpu["control_forward"]) if "control_forward" in cpu else None,
        "control_corr": (
            round(float(np.corrcoef(cpu["rank"], cpu["control_forward"])[0, 1]), 3)
            if "control_forward" in cpu
            else None
        ),
        "rank_unsplit": _stats(unsplit_ms),
        "rank_unsplit_cpu": _stats(cpu["rank_unsplit"]),
        "rank_generic": _stats(generic_ms),
        "rank_generic_cpu": _stats(cpu["rank_generic"]),
        "feed": _stats(feed_ms),
        "feed_cpu": _stats(cpu["feed"]),
        "ingest_batch_1000": _stats(ingest_ms) if ingest_ms else None,
        "ingest_events_per_s": round(1e6 / float(np.mean(ingest_ms))) if ingest_ms else None,
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
