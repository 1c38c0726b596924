"""Quick check of the clickbait mitigation methods in the simulator (not the full A/B study).

1. Log: simulate ``--log-users`` users for ``--log-days`` days over the shipped-headline catalogue
   with a uniformly random (stochastic) logging policy.
2. Train the ranker on that same log once per method (unmitigated, shallow tower, adversarial,
   auxiliary loss, down-weighting; RL alignment and the heuristic start from the unmitigated model).
3. Serve every model in the simulator for the same ``--serve-users`` fresh users (same world seed,
   same simulator seed), one run per method, and report per-user impressions of heavy clickbait,
   CTR, clicks, conversions, time spent and bounce rate, with the change versus the unmitigated model.

Run: ``.venv/bin/python bench/mitigation_quick_check.py`` (about 3–6 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from typing import Any

import pandas as pd
import pyarrow as pa
import torch

from intentrank.mitigation.pipeline import MitigationPlan
from intentrank.ranking.config import RankerConfig
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.policy import RankerPolicy
from intentrank.ranking.trainer import Trainer
from intentrank.simulator.catalogue import Catalogue, build_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import Simulator
from intentrank.simulator.kpis import summarise
from intentrank.simulator.policies import Policy, RandomPolicy
from intentrank.simulator.world import World

#: Methods trained from scratch on the log (name -> mitigation methods).
TRAINED: dict[str, list[Any]] = {
    "unmitigated": [],
    "shallow_tower": ["shallow_tower"],  # the tower's logit on every head (paper, ranker default)
    "shallow_tower[click head]": [{"method": "shallow_tower", "heads": ["click"]}],
    "adversarial": [{"method": "adversarial", "weight": 1.0, "reversal": 1.0}],
    "aux_loss": [{"method": "aux_loss", "weight": 0.3}],
    "downweight": [{"method": "downweight", "strength": 0.7, "threshold": 0.4}],
}
HEURISTIC = {"method": "heuristic", "l": 0.4, "h": 0.7, "d": 0.1, "w": 0.6}
RL = {
    "method": "rl_alignment",
    "steps": 60,
    "set_size": 100,
    "sets_per_step": 16,
    "lr": 3e-3,
    "kl_bound": 0.1,
    "sampling": "clickbait",
    "eval_sets": 64,
}


def ranker_config(seed: int) -> RankerConfig:
    """A laptop-sized ranker: c is a plain dense input (the unmitigated baseline reads it)."""
    return RankerConfig.model_validate(
        {
            "features": {
                "embedding_dim": 8,
                "categorical": [
                    {"name": "user_id", "buckets": 20_011},
                    {"name": "item_id", "buckets": 50_021},
                    {"name": "topic", "buckets": 101},
                    {"name": "source", "buckets": 101},
                    {"name": "position", "buckets": 20, "hashed": False},
                    {"name": "slate_index", "buckets": 16, "hashed": False},
                ],
                "dense": [
                    {"name": "clickbait_score"},
                    {"name": "length", "transform": "log1p", "scale": 0.3},
                    {"name": "item_age_h", "transform": "log1p", "scale": 0.2},
                ],
            },
            "model": {"cross": {"layers": 2, "rank": 8, "experts": 2}, "mlp_hidden": [64, 32]},
            "train": {"epochs": 4, "batch_size": 1024, "lr": 3e-3, "progress": False, "seed": seed},
        }
    )


#: Ranking formulas served: a pure click ranker (the paper's failure case) and the project default.
FORMULAS = {"ctr": RankingFormula(a=1.0, b=0.0, g=0.0), "default": RankingFormula(a=1.0, b=0.8, g=0.0)}


def ranker_policy(name: str, trainer: Trainer, post: list[Any], formula: RankingFormula) -> Policy:
    """Serve a trained model: the formula on its predictions, then the post-processors."""
    return RankerPolicy(trainer.model, formula=formula, post_processors=post, name=name)


def simulate_log(catalogue: Catalogue, users: int, days: int, seed: int) -> pd.DataFrame:
    world = World.create(catalogue, SimulatorConfig(users=users, days=days), seed=seed)
    tables: list[pa.Table] = []
    Simulator(world, RandomPolicy(), seed=seed).run(sink=tables.append)
    return pa.concat_tables(tables).to_pandas()


def serve(catalogue: Catalogue, policy: Policy, users: int, days: int, seed: int) -> dict[str, float]:
    world = World.create(catalogue, SimulatorConfig(users=users, days=days), seed=seed)
    kpis = Simulator(world, policy, seed=seed).run()
    s = summarise(kpis.frame())
    imp = s["impressions_per_user"]
    s["heavy_share"] = s["impressions_heavy_per_user"] / imp if imp else float("nan")
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log-users", type=int, default=4000)
    ap.add_argument("--log-days", type=int, default=2)
    ap.add_argument("--serve-users", type=int, default=3000)
    ap.add_argument("--serve-days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--formulas", default="ctr,default", help="comma list of: " + ", ".join(FORMULAS))
    ap.add_argument("--json", type=str, default=None, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    catalogue = build_catalogue(seed=args.seed)
    log = simulate_log(catalogue, args.log_users, args.log_days, args.seed)
    print(
        f"log: {len(log):,} impressions, CTR {log['click'].mean():.4f}, catalogue {len(catalogue):,} items "
        f"({time.perf_counter() - t0:.1f}s)",
        file=sys.stderr,
    )
    items = catalogue.items
    base = ranker_config(args.seed)
    info: dict[str, Any] = {}
    trainers: dict[str, Trainer] = {}
    for name, methods in TRAINED.items():
        t = time.perf_counter()
        plan = MitigationPlan(methods)
        trainer = plan.make_trainer(base)
        res = plan.fit(trainer, log, items)
        trainers[name] = trainer
        info[name] = {"train_s": round(time.perf_counter() - t, 1), "click_auc": res["valid"]["click"]["auc"]}
        print(f"trained {name}: {info[name]}", file=sys.stderr)
    contexts = log[["user_id", "ts", "slate_index"]].drop_duplicates(["user_id", "slate_index"])
    contexts = contexts.reset_index(drop=True)
    heur = MitigationPlan([HEURISTIC]).post_processors()
    results: dict[str, Any] = {}
    for fname in args.formulas.split(","):
        formula = FORMULAS[fname]
        policies = {name: ranker_policy(name, tr, [], formula) for name, tr in trainers.items()}
        # serving-time and post-training methods on top of the unmitigated model
        policies["heuristic"] = ranker_policy("heuristic", trainers["unmitigated"], heur, formula)
        policies["shallow_tower+heuristic"] = ranker_policy(
            "shallow_tower+heuristic", trainers["shallow_tower"], heur, formula
        )
        t = time.perf_counter()
        model = copy.deepcopy(trainers["unmitigated"].model)
        rl_trainer = Trainer(trainers["unmitigated"].config, model=model)
        rep = MitigationPlan([RL]).align(model, items, contexts, formula, seed=args.seed)
        assert rep is not None
        model.eval()
        key = f"rl_alignment[{fname}]"
        info[key] = {"align_s": round(time.perf_counter() - t, 1), **rep.as_dict()}
        print(f"aligned {key}: {info[key]}", file=sys.stderr)
        policies["rl_alignment"] = ranker_policy("rl_alignment", rl_trainer, [], formula)
        rows = {}
        for name, pol in policies.items():
            t = time.perf_counter()
            rows[name] = serve(catalogue, pol, args.serve_users, args.serve_days, args.seed + 1)
            print(f"served {name} [{fname}] ({time.perf_counter() - t:.1f}s)", file=sys.stderr)
        results[fname] = rows
        print(f"\n### formula {fname}: score = p_click^{formula.a:g} · time^{formula.b:g}\n")
        print_table(rows)
    print(
        f"\n{args.serve_users} serving users × {args.serve_days} days; log {len(log):,} impressions "
        f"({args.log_users} users × {args.log_days} days, random logging); total "
        f"{time.perf_counter() - t0:.0f}s; load {os.getloadavg()[0]:.2f}",
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"kpis": results, "info": info, "args": vars(args)}, f, indent=1, default=float)


COLS = [
    ("impressions_heavy_per_user", "heavy imp/user"),
    ("heavy_share", "heavy share"),
    ("impressions_per_user", "imp/user"),
    ("ctr", "CTR"),
    ("clicks_per_user", "clicks/user"),
    ("conversions_per_user", "conv/user"),
    ("time_spent_s_per_user", "time s/user"),
    ("bounce_rate", "bounce rate"),
]


def print_table(rows: dict[str, dict[str, float]]) -> None:
    """Markdown table: each KPI with its relative change versus the unmitigated model."""
    base = rows["unmitigated"]

    def cell(name: str, key: str) -> str:
        v, b = rows[name][key], base[key]
        return f"{v:.4g} ({100 * (v / b - 1):+.1f}%)" if b else f"{v:.4g}"

    print("| method | " + " | ".join(h for _, h in COLS) + " |")
    print("|---|" + "---|" * len(COLS))
    for name in rows:
        print(f"| {name} | " + " | ".join(cell(name, k) for k, _ in COLS) + " |")


if __name__ == "__main__":
    main()
