"""The loop through HTTP vs in process: the same simulated users, seed and model, KPIs compared with CIs.

A quick ranker is trained on a random log (``--bootstrap-users`` users, as ``intentrank serve`` does at
first start) and saved; ``intentrank serve`` serves it on the shipped catalogue with retrieval of
1,000 uniformly random live candidates (``candidates.fresh = popular = 0``, the nearest the service
has to the simulator's random candidates). Then

* over HTTP: ``simulate_http`` — ``--users`` users for one day, slates from ``/v1/feed`` (the user's
  arm named), outcomes posted to ``/v1/events``;
* in process: ``simulate`` with the same arms as policies (``unmitigated`` = the ranker,
  ``heuristic`` = the ranker × the heuristic penalty), the same users, seed and 1,000 candidates.

Per arm and KPI: both levels and the 95% CI of the difference (Welch / delta method; the two loops
are treated as independent samples); "agree" when the CI holds 0. Remaining differences by
construction: the service's clock is wall time (hour of day and item age features at serving differ
from the simulated clock), its random candidates come from another random stream.

Usage: ``PYTHONPATH=src .venv/bin/python bench/service_http_loop.py [--users 5000] [--concurrency 4]``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pandas as pd

from intentrank.config import load_config
from intentrank.mitigation.heuristic import HeuristicPenalty
from intentrank.service.bootstrap import quick_model
from intentrank.serving.postprocess import PenalizedPolicy
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import build_catalogue
from intentrank.simulator.http_client import ServiceClient, simulate_http
from intentrank.simulator.kpis import MEAN_KPIS, RATIO_KPIS
from intentrank.stats import compare_arms
from service_server import TOKEN, start, stop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=5_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--bootstrap-users", type=int, default=300)
    args = ap.parse_args()
    cfg = load_config(None, [("service.bootstrap_users", args.bootstrap_users, "--bootstrap-users")])
    sim_cfg = cfg.simulator.model_copy(update={"users": args.users, "days": 1, "candidates": 1000})
    catalogue = build_catalogue(config=sim_cfg.catalogue, seed=cfg.seed)
    model = quick_model(catalogue, cfg)
    service = {"candidates": {"total": 1000, "fresh": 0, "popular": 0}, "seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        url, proc = start(Path(tmp), service, model=model)
        try:
            with ServiceClient(url, TOKEN) as client:  # warm-up: the item features are encoded once
                client.feed(10**9, "warm-up", None, None)
            t0 = time.perf_counter()
            with ServiceClient(url, TOKEN, pool=args.concurrency) as client:
                http, counts = simulate_http(
                    client, sim_cfg, seed=args.seed, catalogue=catalogue, concurrency=args.concurrency
                )
            http_s = time.perf_counter() - t0
        finally:
            stop(proc)
    t0 = time.perf_counter()
    inproc = simulate(
        {
            "unmitigated": RankerPolicy(model),
            "heuristic": PenalizedPolicy(RankerPolicy(model), HeuristicPenalty()),
        },
        sim_cfg,
        seed=args.seed,
        catalogue=catalogue,
    )
    inproc_s = time.perf_counter() - t0
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
                    "http": round(float(r.treatment), 5),
                    "diff_ci": [round(float(r.diff_ci_low), 5), round(float(r.diff_ci_high), 5)],
                    # a KPI constant in both loops (e.g. sessions on one day) has no CI: equal = agree
                    "agree": bool(r.diff_ci_low <= 0 <= r.diff_ci_high)
                    or (bool(r.control == r.treatment) and r.diff_ci_low != r.diff_ci_low),
                }
            )
    out = {
        "users": args.users,
        "days": 1,
        "seed": args.seed,
        **counts,
        "http_seconds": round(http_s, 1),
        "inproc_seconds": round(inproc_s, 1),
        "agree": f"{sum(r['agree'] for r in rows)}/{len(rows)}",
        "kpis": rows,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
