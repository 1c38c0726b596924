"""Simulator throughput: impressions per second with a precomputed-score policy.

100,000 users x 50,000 items (the shipped headlines padded with synthetic items), one process.
Prints impressions/s for: the engine alone (KPIs only, no event rows), and with every event
materialised as Arrow batches (discarded), and for the two oracle policies (scores computed per
user x candidate from the hidden truth). Not a test: figures depend on the machine and its load.

    .venv/bin/python bench/simulator_speed.py [--users 100000] [--items 50000] [--days 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from intentrank.simulator.catalogue import build_catalogue, extend_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import Simulator
from intentrank.simulator.policies import StaticScorePolicy
from intentrank.simulator.registry import get_policy
from intentrank.simulator.world import World


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    catalogue = extend_catalogue(build_catalogue(seed=0), args.items, seed=1)
    cfg = SimulatorConfig(users=args.users, days=args.days)
    world = World.create(catalogue, cfg, seed=0)
    rng = np.random.default_rng(0)
    static = StaticScorePolicy(rng.random(len(catalogue)).astype(np.float32), name="precomputed")
    print(f"load average at start: {os.getloadavg()}")
    print(
        f"users={args.users:,} items={len(catalogue):,} days={args.days} slate={cfg.slate_size} "
        f"candidates={cfg.candidates} batch_users={cfg.batch_users:,}"
    )
    runs = [
        ("precomputed, KPIs only", static, None),
        ("precomputed, events to Arrow", static, lambda table: None),
        ("ctr_oracle, events to Arrow", get_policy("ctr_oracle"), lambda table: None),
        ("intent_oracle, events to Arrow", get_policy("intent_oracle"), lambda table: None),
    ]
    for label, policy, sink in runs:
        best = 0.0
        for _ in range(args.repeats):
            sim = Simulator(world, policy, seed=0)
            t0 = time.perf_counter()
            kpis = sim.run(sink)
            dt = time.perf_counter() - t0
            n = int(kpis.impressions.sum())
            best = max(best, n / dt)
        print(f"{label:<34} {n:>12,} impressions  best {best:>12,.0f} impressions/s")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss:,.0f} MiB; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
