"""Simulated check of the multi-task ranker: train on simulator logs, then A/B its ranking formulas.

1. Log: ``--users`` users for ``--days`` days under the uniformly random (stochastic) policy, so the
   log covers the catalogue; events go to a DuckDB event store (``--store``).
2. Train the multi-task ranker (DCN-V2 + ESMM by default) on all days but the last; report per-task
   AUCs etc. on the held-out last day (``Trainer.evaluate``).
3. A/B in the simulator on fresh users (another seed), the same model in both arms: ranking by
   ``ctr · t^0.8`` (formula a=1, b=0.8) vs by p_click alone (a=1, b=0). Users are split between the
   arms by the simulator's stable hash (disjoint user sets); the comparison table (per-user means by
   Welch, ratios by the delta method, 95% CIs) comes from the simulator's ``compare``.
4. With ``--paired``: also run each formula on *all* A/B users with the same seed — the same users with
   the same traits and the same random streams (common random numbers; the draws still diverge once the
   slates differ) — and report the paired per-user conversion difference with a t interval.

Usage: ``.venv/bin/python bench/ranker_formula_ab.py [--users 20000] [--days 3] [--ab-users 20000]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.trainer import Trainer
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.ab import format_comparison, simulate
from intentrank.simulator.catalogue import build_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.sinks import StoreSink
from intentrank.store import EventStore


def ranker_config(epochs: int, threads: int) -> RankerConfig:
    """DCN-V2 (parallel, mixture cross) + ESMM, sized to serve 100 candidates per slate quickly."""
    return RankerConfig.model_validate(
        {
            "model": {"mlp_hidden": [128, 64], "tower_hidden": [32], "cross": {"layers": 2, "rank": 16}},
            "train": {"epochs": epochs, "batch_size": 4096, "lr": 2e-3, "threads": threads, "patience": 1},
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20_000, help="users in the logging run")
    ap.add_argument("--days", type=int, default=3)
    ap.add_argument("--ab-users", type=int, default=20_000, help="users in the A/B run (split in two arms)")
    ap.add_argument("--ab-days", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--store", type=Path, default=None, help="DuckDB store for the log (default: temp)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    ap.add_argument("--paired", action="store_true", help="also run the common-random-numbers paired A/B")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_all = time.perf_counter()
    print(f"load at start: {os.getloadavg()[0]:.2f}", flush=True)
    sim_cfg = SimulatorConfig(users=args.users, days=args.days)
    cat = build_catalogue(config=sim_cfg.catalogue, seed=args.seed)

    # 1. logging run under the random policy
    tmp = tempfile.TemporaryDirectory()
    store_path = args.store or Path(tmp.name) / "log.duckdb"
    t0 = time.perf_counter()
    with EventStore(store_path) as store:
        store.write_items(cat.items)
        with store.begin_run(seed=args.seed, policy="random", command="bench") as run:
            simulate("random", sim_cfg, seed=args.seed, catalogue=cat, sink=StoreSink(run))
        n_events = store.count()
    t_log = time.perf_counter() - t0
    print(f"logged {n_events:,} events from {args.users:,} users in {t_log:.1f}s", flush=True)

    # 2. train on days 0..D-2, evaluate on day D-1
    t0 = time.perf_counter()
    with EventStore(store_path, read_only=True) as store:
        from intentrank.ranking.events import load_events

        events = load_events(store)
    last = events["day"].max()
    train_df, test_df = events[events["day"] < last], events[events["day"] == last]
    trainer = Trainer(ranker_config(args.epochs, args.threads))
    fit = trainer.fit(train_df).fit_report_
    held_out = trainer.evaluate(test_df)
    t_train = time.perf_counter() - t0
    print(
        f"trained on {len(train_df):,} events ({fit['epochs']} epochs, {fit['train_seconds']}s); "
        f"held-out day {last}: {len(test_df):,} events",
        flush=True,
    )
    print(json.dumps(held_out, indent=2, default=float), flush=True)

    # 3. A/B: same model, ctr·t^0.8 vs p_click alone
    t0 = time.perf_counter()
    arms = {
        "ctr_only": RankerPolicy(trainer.model_, formula=RankingFormula(1.0, 0.0, 0.0), name="ctr_only"),
        "ctr_t08": RankerPolicy(trainer.model_, formula=RankingFormula(1.0, 0.8, 0.0), name="ctr_t08"),
    }
    ab_cfg = SimulatorConfig(users=args.ab_users, days=args.ab_days)
    res = simulate(arms, ab_cfg, seed=args.seed + 1, catalogue=cat)
    t_ab = time.perf_counter() - t0
    table = res.compare("ctr_only", "ctr_t08")
    print(format_comparison(table, "ctr_only", "ctr_t08"), flush=True)
    conv = table[table["metric"] == "conversions"].iloc[0].to_dict()
    print(f"SRM: {res.srm()}")
    print(
        f"conversions per user: ctr_only {conv['control']:.4f} vs ctr_t08 {conv['treatment']:.4f}; "
        f"diff {conv.get('diff_value', float('nan')):+.4f} "
        f"[{conv.get('diff_ci_low', float('nan')):+.4f}, {conv.get('diff_ci_high', float('nan')):+.4f}], "
        f"rel {conv['rel_value']:+.1%} [{conv['rel_ci_low']:+.1%}, {conv['rel_ci_high']:+.1%}]"
    )
    print(
        f"times: log {t_log:.0f}s, train+eval {t_train:.0f}s, A/B {t_ab:.0f}s, total "
        f"{time.perf_counter() - t_all:.0f}s; load at end {os.getloadavg()[0]:.2f}"
    )
    paired = None
    if args.paired:
        import numpy as np
        from scipy import stats

        t0 = time.perf_counter()
        per = {
            k: simulate({k: p}, ab_cfg, seed=args.seed + 1, catalogue=cat).per_user for k, p in arms.items()
        }
        a = per["ctr_only"].sort_values("user_id")["conversions"].to_numpy(np.float64)
        b = per["ctr_t08"].sort_values("user_id")["conversions"].to_numpy(np.float64)
        test = stats.ttest_rel(b, a)
        ci = test.confidence_interval(0.95)
        d = b - a
        paired = {
            "users": len(d),
            "control": a.mean(),
            "treatment": b.mean(),
            "diff": d.mean(),
            "ci": [ci.low, ci.high],
            "p": test.pvalue,
            "rel": d.mean() / a.mean(),
            "rel_ci": [ci.low / a.mean(), ci.high / a.mean()],
        }
        print(
            f"paired (CRN, {len(d):,} users in both arms): conversions/user {a.mean():.4f} -> "
            f"{b.mean():.4f}, diff {d.mean():+.4f} [{ci.low:+.4f}, {ci.high:+.4f}] (p = {test.pvalue:.2g}; "
            f"relative to control, ignoring its sampling error: {d.mean() / a.mean():+.1%}); "
            f"{time.perf_counter() - t0:.0f}s"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "held_out": held_out,
                    "fit": fit,
                    "n_events": n_events,
                    "ab": table.to_dict(orient="records"),
                    "paired": paired,
                },
                indent=2,
                default=float,
            )
        )


if __name__ == "__main__":
    main()
