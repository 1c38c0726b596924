"""The loop through HTTP vs in process: the same simulated users, seed and model, KPIs compared with CIs.

A quick ranker is trained on a random log (``--bootstrap-users`` users, as ``intentrank serve`` does at
first start) and saved; ``intentrank serve`` serves it on the shipped catalogue. Then

* over HTTP: ``simulate_http`` — ``--users`` users for one day, slates from ``/v1/feed`` (the user's
  arm named), outcomes posted to ``/v1/events`` every 5,000 events;
* in process: ``simulate_like_the_service`` with the same arms as policies (``unmitigated`` = the
  ranker, ``heuristic`` = the ranker × the heuristic penalty), the same users, seed and candidates.

What is aligned: the service runs on the simulator's clock (``service.simulated_clock``: each request
carries the session's simulated time, each event its own ``ts``), so item age, hour and "hours since
last click" features are the in-process loop's; retrieval is ``--candidates`` uniformly random live
items (``candidates.fresh = popular = topic = similar = 0``) with no cross-session "recently shown"
filter (``filtering.recent_shown_s = 0``), and the in-process loop draws each page's candidates with the
service's own ``filter_mask`` + ``retrieve`` and the page's own stream (``request_rng``: seed, user,
session, page), so both loops rank the same candidates for every page; no training worker (the
in-process policies never retrain); and the in-process policies share one
:class:`~intentrank.serving.pipeline.ServingHistory` fed with each 5,000-event flush, as the service's
is with each acknowledged post (read-your-writes). So the two loops serve the same slates up to
float rounding of near-ties (the service scores in float64 per request, the policies in float32 per
batch); ``identical_users`` counts users whose KPIs are all equal in both.

The in-process loop runs in a thread beside the HTTP loop (``--sequential``: after it).

Per arm and KPI: each loop's level with its 95% CI (per-user mean, or ratio of sums by the delta
method) and the 95% CI of the difference (Welch / delta method; the two loops treated as independent
samples); they "agree" when the difference's CI holds 0 (a test at the 5% level, stricter than CI
overlap). ``--wall-clock`` serves on wall time instead (the comparison before the simulated clock).

Usage: ``PYTHONPATH=src:bench .venv/bin/python bench/service_http_loop.py [--users 5000] [--candidates 1000]
[--concurrency 4] [--out FILE.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from intentrank.config import load_config
from intentrank.service.bootstrap import quick_model
from intentrank.service.config import ServiceConfig
from intentrank.simulator.ab import SimulationResult
from intentrank.simulator.catalogue import build_catalogue
from intentrank.simulator.http_client import (
    FLUSH_ROWS,
    ServiceClient,
    simulate_http,
    simulate_like_the_service,
)
from intentrank.simulator.kpis import MEAN_KPIS, RATIO_KPIS
from intentrank.stats import compare_arms
from intentrank.stats.compare import ratio_estimate
from service_server import TOKEN, start, stop


def _level_ci(per_user: pd.DataFrame, metric: str) -> list[float]:
    """95% CI of one loop's KPI: a ratio of sums by the delta method, a per-user mean by the normal one."""
    if metric in RATIO_KPIS:
        num, den = RATIO_KPIS[metric]
        e = ratio_estimate(per_user[num].to_numpy(float), per_user[den].to_numpy(float))
        lo, hi = e.ci_low, e.ci_high
    else:
        x = per_user[metric].to_numpy(float)
        half = 1.959964 * x.std(ddof=1) / np.sqrt(len(x))
        lo, hi = x.mean() - half, x.mean() + half
    return [round(float(lo), 5), round(float(hi), 5)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--bootstrap-users", type=int, default=300)
    ap.add_argument("--candidates", type=int, default=1000, help="Candidates per slate (both loops).")
    ap.add_argument("--wall-clock", action="store_true", help="Serve on wall time (no simulated clock).")
    ap.add_argument(
        "--sequential",
        action="store_true",
        help="The in-process loop after the HTTP one "
        "(default: in a thread beside it, while the HTTP loop waits on the server).",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="Also write the JSON here (and per-user KPIs of both loops to <out>.per_user.parquet).",
    )
    args = ap.parse_args()
    cfg = load_config(None, [("service.bootstrap_users", args.bootstrap_users, "--bootstrap-users")])
    sim_cfg = cfg.simulator.model_copy(
        update={"users": args.users, "days": 1, "candidates": args.candidates, "flush_rows": FLUSH_ROWS}
    )
    catalogue = build_catalogue(config=sim_cfg.catalogue, seed=cfg.seed)
    model = quick_model(catalogue, cfg)
    service = {
        "candidates": {"total": args.candidates, "fresh": 0, "popular": 0, "topic": 0, "similar": 0},
        "filtering": {"recent_shown_s": 0},
        "worker": {"enabled": False},
        "simulated_clock": not args.wall_clock,
        "seed": args.seed,
    }
    svc = ServiceConfig.model_validate(service)

    def in_process() -> tuple[SimulationResult, float]:
        # the service's retrieval rules and streams; one history for both arms, fed with each flush
        t = time.perf_counter()
        res, _ = simulate_like_the_service(
            model, sim_cfg, seed=args.seed, catalogue=catalogue, candidates=svc.candidates,
            filtering=svc.filtering, service_seed=svc.seed,
        )  # fmt: skip
        return res, time.perf_counter() - t

    pool = ThreadPoolExecutor(1)
    pending = None if args.sequential else pool.submit(in_process)
    with tempfile.TemporaryDirectory() as tmp:
        url, proc = start(Path(tmp), service, model=model)
        try:
            with ServiceClient(url, TOKEN) as client:  # warm-up: the item features are encoded once
                client.feed(10**9, "warm-up", None, None, ts=None if args.wall_clock else 0.0)
            t0 = time.perf_counter()
            with ServiceClient(url, TOKEN, pool=args.concurrency) as client:
                http, counts = simulate_http(
                    client, sim_cfg, seed=args.seed, catalogue=catalogue, concurrency=args.concurrency
                )
            http_s = time.perf_counter() - t0
        finally:
            stop(proc)
    inproc, inproc_s = (pending or pool.submit(in_process)).result()
    pool.shutdown()
    both = pd.concat([http.per_user.assign(loop="http"), inproc.per_user.assign(loop="inproc")])
    rows = []
    for arm in http.arm_names:
        one = both[both["arm"] == arm]
        tab = compare_arms(one, "loop", "inproc", "http", means=MEAN_KPIS, ratios=RATIO_KPIS)
        for r in tab.itertuples():
            rows.append(
                {
                    "arm": arm,
                    "metric": r.metric,
                    "inproc": round(float(r.control), 5),
                    "inproc_ci": _level_ci(one[one["loop"] == "inproc"], r.metric),
                    "http": round(float(r.treatment), 5),
                    "http_ci": _level_ci(one[one["loop"] == "http"], r.metric),
                    "diff_ci": [round(float(r.diff_ci_low), 5), round(float(r.diff_ci_high), 5)],
                    # a KPI constant in both loops (e.g. sessions on one day) has no CI: equal = agree
                    "agree": bool(r.diff_ci_low <= 0 <= r.diff_ci_high)
                    or (bool(r.control == r.treatment) and r.diff_ci_low != r.diff_ci_low),
                }
            )
    kp_h, kp_i = (r.per_user[list(MEAN_KPIS)].to_numpy() for r in (http, inproc))
    identical = int(np.isclose(kp_h, kp_i, rtol=1e-9, atol=1e-9).all(axis=1).sum())
    out = {
        "users": args.users,
        "days": 1,
        "seed": args.seed,
        "clock": "wall" if args.wall_clock else "simulated",
        "criterion": "agree = the 95% CI of (http - inproc) holds 0 (Welch / delta method)",
        **counts,
        "http_seconds": round(http_s, 1),
        "inproc_seconds": round(inproc_s, 1),
        "agree": f"{sum(r['agree'] for r in rows)}/{len(rows)}",
        # the same pages draw the same candidates in both loops: users whose KPIs are all equal
        "identical_users": f"{identical}/{len(kp_h)}",
        "kpis": rows,
        "load_average": os.getloadavg(),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
        both.to_parquet(args.out.with_suffix(".per_user.parquet"))


if __name__ == "__main__":
    main()
