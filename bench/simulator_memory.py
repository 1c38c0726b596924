"""Simulator memory: peak RSS for 1,000,000 users (no dense user x item matrices anywhere).

Simulates ``--days`` days of 1,000,000 users over 50,000 items with a precomputed-score policy;
every event is materialised as Arrow batches of ``flush_rows`` rows and handed to a sink
(discarded here, or ``--parquet PATH`` to stream them to a Parquet file). Prints peak RSS.

    .venv/bin/python bench/simulator_memory.py [--users 1000000] [--days 1] [--parquet /tmp/ev.parquet]
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
from intentrank.simulator.sinks import ParquetSink
from intentrank.simulator.world import World


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=50_000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--parquet", default=None)
    args = ap.parse_args()

    catalogue = extend_catalogue(build_catalogue(seed=0), args.items, seed=1)
    print(f"after catalogue: peak RSS {rss_mib():,.0f} MiB")
    cfg = SimulatorConfig(users=args.users, days=args.days)
    world = World.create(catalogue, cfg, seed=0)
    print(f"after {args.users:,} users: peak RSS {rss_mib():,.0f} MiB")
    policy = StaticScorePolicy(np.random.default_rng(0).random(len(catalogue)), name="precomputed")
    sink = ParquetSink(args.parquet) if args.parquet else (lambda table: None)
    print(f"load average at start: {os.getloadavg()}")
    t0 = time.perf_counter()
    kpis = Simulator(world, policy, seed=0).run(sink)
    dt = time.perf_counter() - t0
    if isinstance(sink, ParquetSink):
        sink.close()
    n = int(kpis.impressions.sum())
    print(
        f"{n:,} impressions in {dt:.1f} s ({n / dt:,.0f}/s); peak RSS {rss_mib():,.0f} MiB; "
        f"load average at end: {os.getloadavg()}"
    )


if __name__ == "__main__":
    main()
