"""Quick check of the clickbait mitigation methods in the simulator (not the full A/B study).

1. Log: simulate ``--log-users`` users for ``--log-days`` days over the shipped-headline catalogue
   with a uniformly random (stochastic) logging policy.
2. Train the ranker on that same log once per method (unmitigated, shallow tower, adversarial,
   auxiliary loss, down-weighting; RL alignment and the heuristic start from the unmitigated model),
   for each click target in ``--labels``: ``click`` (raw clicks: the paper's setting, where the
   unmitigated baseline is the click-trained model) and/or ``long_click`` (a downstream label: only a
   long, non-bounced click is a positive). The unmitigated model, the shallow tower and the adversarial
   baseline are trained with ``--adv-seeds`` seeds, to show the spread that training noise alone causes.
3. Serve every model in the simulator for the same ``--serve-users`` fresh users (same world seed,
   same simulator seed), one run per method, and report per-user impressions of heavy clickbait,
   CTR, conversions, time spent and bounce rate, with the relative change versus the unmitigated
   model (seed ``--seed``) and its 95% CI (``intentrank.stats.compare_arms``: Welch / delta method,
   per-user values; the runs share users and seeds, so treating them as independent arms is
   conservative). The CIs cover serving noise only, not training noise: that is what the seeds show.

Run: ``.venv/bin/python bench/mitigation_quick_check.py`` (about 5 minutes on 2 busy cores);
``--labels click,long_click --formulas ctr,default`` for both label settings and both formulas
(about 4× as long).
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
from intentrank.ranking.trainer import Trainer
from intentrank.serving.policy import Policy
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.ab import compare_kpis
from intentrank.simulator.catalogue import Catalogue, build_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import Simulator
from intentrank.simulator.kpis import summarise
from intentrank.simulator.policies import RandomPolicy
from intentrank.simulator.world import World

ADVERSARIAL = {"method": "adversarial", "weight": 1.0, "reversal": 1.0}
#: Trained with ``--adv-seeds`` seeds (the baseline's own seed spread, and the two methods whose
#: effect is smallest relative to that spread).
SEEDED = ("unmitigated", "shallow_tower", "adversarial")
#: Methods trained from scratch on the log (name -> mitigation methods).
TRAINED: dict[str, list[Any]] = {
    "unmitigated": [],
    "shallow_tower": ["shallow_tower"],  # the tower's logit on every head (paper, ranker default)
    "shallow_tower[click head]": [{"method": "shallow_tower", "heads": ["click"]}],
    "adversarial": [ADVERSARIAL],
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


def ranker_config(seed: int, click_target: str = "click") -> RankerConfig:
    """A laptop-sized ranker: c is a plain dense input (the unmitigated baseline reads it); the click
    task's positive is ``click_target`` (``click`` = raw clicks, ``long_click`` = successful clicks)."""
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
            "labels": {"click_target": click_target},
        }
    )


#: Ranking formulas served: a pure click ranker (the paper's failure case) and the project default.
FORMULAS = {"ctr": RankingFormula(a=1.0, b=0.0, g=0.0), "default": RankingFormula(a=1.0, b=0.8, g=0.0)}


def ranker_policy(name: str, trainer: Trainer | Any, post: list[Any], formula: RankingFormula) -> Policy:
    """Serve a trained model (a fitted Trainer or the model itself): the formula on its predictions, then
    the post-processors."""
    model = trainer.model_ if isinstance(trainer, Trainer) else trainer
    return RankerPolicy(model, formula=formula, post_processors=post, name=name)


def simulate_log(catalogue: Catalogue, users: int, days: int, seed: int) -> pd.DataFrame:
    world = World.create(catalogue, SimulatorConfig(users=users, days=days), seed=seed)
    tables: list[pa.Table] = []
    Simulator(world, RandomPolicy(), seed=seed).run(sink=tables.append)
    return pa.concat_tables(tables).to_pandas()


def serve(catalogue: Catalogue, policy: Policy, users: int, days: int, seed: int) -> pd.DataFrame:
    """Per-user KPI table of ``policy`` served alone to ``users`` fresh users."""
    world = World.create(catalogue, SimulatorConfig(users=users, days=days), seed=seed)
    return Simulator(world, policy, seed=seed).run().frame()


def summary(per_user: pd.DataFrame) -> dict[str, float]:
    s: dict[str, float] = dict(summarise(per_user))
    imp = s["impressions_per_user"]
    s["heavy_share"] = s["impressions_heavy_per_user"] / imp if imp else float("nan")
    return s


#: (metric in compare_arms, summary key, header): the KPIs reported with a 95% CI of the change.
CI_KPIS = [
    ("impressions_heavy", "impressions_heavy_per_user", "heavy imp/user"),
    ("ctr", "ctr", "CTR"),
    ("conversions", "conversions_per_user", "conv/user"),
]
PLAIN_KPIS = [
    ("heavy_share", "heavy share"),
    ("time_spent_s_per_user", "time s/user"),
    ("bounce_rate", "bounce rate"),
]


def versus(control: pd.DataFrame, treatment: pd.DataFrame) -> dict[str, tuple[float, float, float]]:
    """Relative change (value, 95% CI low, high) of each CI_KPIS metric, treatment vs control."""
    both = pd.concat([control.assign(arm="c"), treatment.assign(arm="t")], ignore_index=True)
    table = compare_kpis(both, "c", "t").set_index("metric")
    return {
        m: tuple(float(table.loc[m, k]) for k in ("rel_value", "rel_ci_low", "rel_ci_high"))
        for m, _, _ in CI_KPIS
    }


def train_all(
    base: RankerConfig,
    log: pd.DataFrame,
    items: pd.DataFrame,
    seeds: list[int],
    info: dict[str, Any],
    tag: str,
) -> dict[str, Trainer]:
    """Every TRAINED method on the log (SEEDED ones once per seed, named ``name[seed s]``)."""
    trainers: dict[str, Trainer] = {}
    for name, methods in TRAINED.items():
        for s in seeds if name in SEEDED else seeds[:1]:
            key = name if s == seeds[0] else f"{name}[seed {s}]"
            t = time.perf_counter()
            cfg = base.model_copy(update={"train": base.train.model_copy(update={"seed": s})})
            plan = MitigationPlan(methods)
            trainer = plan.make_trainer(cfg)
            res = plan.fit(trainer, log, items)
            trainers[key] = trainer
            rec: dict[str, Any] = {
                "train_s": round(time.perf_counter() - t, 1),
                "best_epoch": res["best_epoch"],
            }
            rec["click_auc"] = res["valid"]["click"]["auc"]
            shallow = getattr(trainer.model_, "shallow", None)
            if shallow is not None:  # the tower's logit at c = 0 and c = 1 (its learned bias on c)
                shallow.eval()
                with torch.no_grad():
                    v = shallow(torch.tensor([[0.0], [1.0]]))
                rec["tower_c0"], rec["tower_c1"] = round(float(v[0]), 3), round(float(v[1]), 3)
            info[f"{tag}/{key}"] = rec
            print(f"trained {tag}/{key}: {rec}", file=sys.stderr)
    return trainers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--log-users", type=int, default=4000)
    ap.add_argument("--log-days", type=int, default=2)
    ap.add_argument("--serve-users", type=int, default=3000)
    ap.add_argument("--serve-days", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument(
        "--labels", default="click",
        help="comma list of click targets to train on: click (raw clicks, the paper's setting), long_click",
    )  # fmt: skip
    ap.add_argument(
        "--adv-seeds", type=int, default=3, help="seeds of the unmitigated and adversarial models"
    )
    ap.add_argument("--formulas", default="ctr", help="comma list of: " + ", ".join(FORMULAS))
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
    seeds = [args.seed + k for k in range(max(1, args.adv_seeds))]
    contexts = log[["user_id", "ts", "slate_index"]].drop_duplicates(["user_id", "slate_index"])
    contexts = contexts.reset_index(drop=True)
    heur = MitigationPlan([HEURISTIC]).post_processors()
    info: dict[str, Any] = {}
    results: dict[str, Any] = {}
    for target in args.labels.split(","):
        trainers = train_all(ranker_config(args.seed, target), log, items, seeds, info, target)
        for fname in args.formulas.split(","):
            formula = FORMULAS[fname]
            policies = {name: ranker_policy(name, tr, [], formula) for name, tr in trainers.items()}
            # serving-time and post-training methods on top of the unmitigated model
            policies["heuristic"] = ranker_policy("heuristic", trainers["unmitigated"], heur, formula)
            policies["shallow_tower+heuristic"] = ranker_policy(
                "shallow_tower+heuristic", trainers["shallow_tower"], heur, formula
            )
            t = time.perf_counter()
            model = copy.deepcopy(trainers["unmitigated"].model_)
            rep = MitigationPlan([RL]).align(model, items, contexts, formula, seed=args.seed)
            assert rep is not None
            model.eval()
            key = f"{target}/rl_alignment[{fname}]"
            info[key] = {"align_s": round(time.perf_counter() - t, 1), **rep.as_dict()}
            print(f"aligned {key}: {info[key]}", file=sys.stderr)
            policies["rl_alignment"] = ranker_policy("rl_alignment", model, [], formula)
            frames = {}
            for name, pol in policies.items():
                t = time.perf_counter()
                frames[name] = serve(catalogue, pol, args.serve_users, args.serve_days, args.seed + 1)
                print(f"served {name} [{target}, {fname}] ({time.perf_counter() - t:.1f}s)", file=sys.stderr)
            rows = {name: summary(f) for name, f in frames.items()}
            changes = {
                name: versus(frames["unmitigated"], f) for name, f in frames.items() if name != "unmitigated"
            }
            results[f"{target}/{fname}"] = {"kpis": rows, "vs_unmitigated": changes}
            print(
                f"\n### click target {target}, formula {fname}: "
                f"score = p_click^{formula.a:g} · time^{formula.b:g}\n"
            )
            print_table(rows, changes)
            print_seed_spread(rows, seeds)
    print(
        f"\n{args.serve_users} serving users × {args.serve_days} days; log {len(log):,} impressions "
        f"({args.log_users} users × {args.log_days} days, random logging); total "
        f"{time.perf_counter() - t0:.0f}s; load {os.getloadavg()[0]:.2f}",
    )
    print("tower logit at c = 0 / c = 1: " + ", ".join(
        f"{k}: {v['tower_c0']} / {v['tower_c1']}" for k, v in info.items() if "tower_c0" in v
    ))  # fmt: skip
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "info": info, "args": vars(args)}, f, indent=1, default=float)


def print_table(
    rows: dict[str, dict[str, float]], changes: dict[str, dict[str, tuple[float, float, float]]]
) -> None:
    """Markdown table: KPIs, and the relative change versus the unmitigated model with its 95% CI."""

    def ci(name: str, metric: str) -> str:
        if name not in changes:
            return ""
        v, lo, hi = changes[name][metric]
        return f" ({100 * v:+.1f}% [{100 * lo:+.1f}, {100 * hi:+.1f}])"

    heads = [h for _, _, h in CI_KPIS] + [h for _, h in PLAIN_KPIS]
    print("| method | " + " | ".join(heads) + " |")
    print("|---|" + "---|" * len(heads))
    for name, r in rows.items():
        cells = [f"{r[key]:.4g}{ci(name, m)}" for m, key, _ in CI_KPIS] + [
            f"{r[k]:.4g}" for k, _ in PLAIN_KPIS
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")


def print_seed_spread(rows: dict[str, dict[str, float]], seeds: list[int]) -> None:
    """Mean and spread (min–max, SD) over training seeds of the SEEDED models' heavy imp/user, and
    the mean change versus the unmitigated model trained with the same seed."""
    if len(seeds) < 2:
        return
    heavy = {}
    for name in SEEDED:
        keys = [name] + [f"{name}[seed {s}]" for s in seeds[1:]]
        heavy[name] = v = pd.Series([rows[k]["impressions_heavy_per_user"] for k in keys])
        paired = ""
        if name != "unmitigated":
            same_seed = ", ".join(f"{x:+.1%}" for x in v / heavy["unmitigated"] - 1)
            mean = v.mean() / heavy["unmitigated"].mean() - 1
            paired = f"; vs unmitigated of the same seed {same_seed} (means: {mean:+.1%})"
        print(
            f"\n{name} over {len(v)} training seeds: heavy imp/user mean {v.mean():.2f}, SD {v.std():.2f}, "
            f"range {v.min():.2f}–{v.max():.2f}{paired}"
        )


if __name__ == "__main__":
    main()
