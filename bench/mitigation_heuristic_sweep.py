"""Strength of the heuristic: heavy-clickbait impressions, CTR and conversions as w grows.

Trains the quick check's unmitigated ranker once on a random-logging simulator log, then serves it
as a click ranker (score = p_click) with f(c; l=0.4, h=0.7, d=0.1, w) for several w, each to the
same fresh users. Run: ``.venv/bin/python bench/mitigation_heuristic_sweep.py`` (about 1–2 minutes).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from intentrank.mitigation.heuristic import HeuristicPenalty
from intentrank.mitigation.pipeline import MitigationPlan
from intentrank.simulator.catalogue import build_catalogue
from mitigation_quick_check import FORMULAS, ranker_config, ranker_policy, serve, simulate_log

KEYS = [
    "impressions_heavy_per_user",
    "impressions_light_per_user",
    "ctr",
    "clicks_per_user",
    "conversions_per_user",
    "time_spent_s_per_user",
]


def cell(s: dict[str, float], base: dict[str, float], k: str) -> str:
    """Value and relative change versus w = 0."""
    return f"{s[k]:.4g} ({100 * (s[k] / base[k] - 1):+.1f}%)" if base[k] else f"{s[k]:.4g}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log-users", type=int, default=2000)
    ap.add_argument("--serve-users", type=int, default=2000)
    ap.add_argument("--weights", default="0,0.1,0.2,0.3,0.45,0.6,0.8")
    ap.add_argument("--formula", default="ctr", choices=sorted(FORMULAS))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    catalogue = build_catalogue(seed=args.seed)
    log = simulate_log(catalogue, args.log_users, 2, args.seed)
    plan = MitigationPlan([])
    trainer = plan.make_trainer(ranker_config(args.seed))
    plan.fit(trainer, log, catalogue.items)
    base = None
    print("| w | heavy imp/user | light imp/user | CTR | clicks/user | conv/user | time s/user |")
    print("|---|---|---|---|---|---|---|")
    for w in (float(x) for x in args.weights.split(",")):
        post = [HeuristicPenalty(l=0.4, h=0.7, d=0.1, w=w)]
        pol = ranker_policy(f"heuristic(w={w:g})", trainer, post, FORMULAS[args.formula])
        s = serve(catalogue, pol, args.serve_users, 2, args.seed + 1)
        base = base or s
        print(f"| {w:g} | " + " | ".join(cell(s, base, k) for k in KEYS) + " |")
    print(
        f"\nformula {args.formula}; log {args.log_users} users × 2 days; serving {args.serve_users} users"
        f" × 2 days; {time.perf_counter() - t0:.0f}s; load {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
