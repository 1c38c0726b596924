"""Calibrate the simulator's memory model (``intentrank.simulator.resources``) with ``tracemalloc``.

Measures the numpy peak of one simulated day on a synthetic catalogue and derives the marginal costs
the estimate uses: bytes per user (two population sizes, small batches), per (batch user × candidate)
(large vs small batches) and per buffered event row (with vs without a sink). Prints them next to the
model's constants.

    .venv/bin/python bench/resource_estimate.py [--users 100000] [--items 47290] [--policy intent_oracle]
"""

from __future__ import annotations

import argparse
import tracemalloc

from intentrank.simulator import resources
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import synthetic_catalogue
from intentrank.simulator.config import SimulatorConfig


def peak(cat, users: int, batch: int, policy: str, sink: bool) -> tuple[int, int]:
    """(numpy peak bytes, events) of one day."""
    rows = [0]

    def count(table) -> None:
        rows[0] += table.num_rows

    cfg = SimulatorConfig(users=users, days=1, batch_users=batch)
    tracemalloc.start()
    try:
        simulate([policy], cfg, seed=0, catalogue=cat, sink=count if sink else None)
        return tracemalloc.get_traced_memory()[1], rows[0]
    finally:
        tracemalloc.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--items", type=int, default=47_290)
    ap.add_argument("--policy", default="intent_oracle")
    args = ap.parse_args()
    cat = synthetic_catalogue(args.items, seed=0)
    n, small, big = args.users, 1_024, 65_536
    base_n, _ = peak(cat, n, small, args.policy, False)
    double_n, _ = peak(cat, 2 * n, small, args.policy, False)
    per_user = (double_n - base_n) / n
    big_batch, _ = peak(cat, n, big, args.policy, False)
    per_candidate = (big_batch - base_n) / ((min(big, n) - small) * 100)
    with_sink, events = peak(cat, n, small, args.policy, True)
    per_row = (with_sink - base_n) / min(events, SimulatorConfig().flush_rows)
    r = resources
    print(f"per user: {per_user:.0f} B (model {r.USER_BYTES})")
    print(f"per batch user x candidate ({args.policy}): {per_candidate:.1f} B (model {r.CANDIDATE_BYTES})")
    print(f"per buffered event row ({events:,} events): {per_row:.0f} B (model {r.BUFFERED_ROW_BYTES})")


if __name__ == "__main__":
    main()
