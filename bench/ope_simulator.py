"""Off-policy evaluation in the simulator: estimates from an exploring log vs the target's on-policy truth.

Part 1 (one large log): ``--users`` simulated users browse for one day under the default exploring
logger (``explore``: Plackett–Luce over the click oracle's standardised scores, T = 1, ε = 0.1). For each
target policy the estimators give its CTR per impression (IPS, SNIPS, DM, DR, SNDR) and its clicks per
20-item slate (IIPS, RIPS) with bootstrap 95 % CIs (users resampled). The truth is the target served to
the same users (same world), averaged over ``--truth-seeds`` simulation seeds; printed beside it is the
target's expected value *on the logged contexts* (its slates on the logged users/candidates, scored with
the true click model at the users' starting trust): the gap between the two is covariate shift (the
target would change how long sessions last and who scrolls), which no estimator on this log can see.

Part 2 (``--seeds`` small logs of ``--seed-users`` users each, same world, the simulation seed varies):
bias, standard deviation, RMSE and 95 % CI coverage of every estimator against the on-policy truth.

Run: ``.venv/bin/python bench/ope_simulator.py`` (defaults; several minutes on 2 busy cores);
``--workers N`` runs part 2 in a process pool (spawned, seeds from ``SeedSequence.spawn``).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from intentrank.serving.ordering import top_s
from intentrank.serving.policy import Policy, SlateRequest
from intentrank.simulator import behaviour as bh
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import build_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.offpolicy import (
    LoggedSlates,
    estimate_kpis,
    fit_reward_models,
    logged_kpis,
    target_probabilities,
)
from intentrank.simulator.registry import get_policy
from intentrank.simulator.sinks import CollectSink
from intentrank.simulator.world import World

KPIS = ("ctr", "clicks_per_slate")
ESTIMATORS = ("ips", "snips", "dm", "dr", "sndr", "iips", "rips")


def make_policy(spec: str) -> Policy:
    """``name`` or ``explore:BASE`` / ``heuristic:BASE``."""
    name, _, base = spec.partition(":")
    pol = get_policy(name, base=base) if base else get_policy(name)
    pol.name = spec
    return pol


def log_once(world: World, cfg: SimulatorConfig, seed: int, logger: str = "explore") -> LoggedSlates:
    """Simulate the exploring logger on ``world``'s users; the OPE log."""
    sink = CollectSink()
    simulate(make_policy(logger), cfg, seed=seed, sink=sink, world=world)
    return LoggedSlates.from_frames(sink.table().to_pandas(), sink.slate_table().to_pandas())


def on_policy(world: World, cfg: SimulatorConfig, spec: str, seeds: list[int]) -> dict[str, Any]:
    """The target served to the same users: CTR and clicks per slate per seed, their mean and SE."""
    ctr, cps = [], []
    for s in seeds:
        pu = simulate(make_policy(spec), cfg, seed=s, world=world).per_user
        imp = pu["impressions"].sum()
        ctr.append(pu["clicks"].sum() / imp)
        cps.append(pu["clicks"].sum() / (imp / cfg.slate_size))
    se = lambda x: float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")  # noqa: E731
    return {"ctr": float(np.mean(ctr)), "clicks_per_slate": float(np.mean(cps)), "ctr_se": se(ctr),
            "clicks_per_slate_se": se(cps), "runs": len(seeds)}  # fmt: skip


def on_logged_contexts(world: World, log: LoggedSlates, spec: str, cfg: SimulatorConfig) -> dict[str, float]:
    """The target's expected CTR on the logged contexts (true click model, users' starting trust)."""
    world.users.reset()
    pol = make_policy(spec)
    pol.bind(world)
    exam = bh.examination(cfg.slate_size, cfg.behaviour).astype(np.float64)
    req = SlateRequest(log.user_id, log.candidates, log.slate_index, log.ts, int(log.day.min()))
    scores = np.asarray(pol.scores(req, world.catalogue), dtype=np.float64)
    p = world.true_click_prob(log.user_id, log.candidates, log.ts).astype(np.float64)  # (n, K)
    if pol.stochastic:
        mat = pol.marginals(scores, cfg.slate_size, np.random.default_rng(0), 256)  # (n, K, S)
        clicks = np.einsum("nks,nk,s->n", mat, p, exam)
    else:
        clicks = (np.take_along_axis(p, top_s(scores, cfg.slate_size), axis=1) * exam).sum(axis=1)
    return {"ctr": float(clicks.mean() / cfg.slate_size), "clicks_per_slate": float(clicks.mean())}


def evaluate(
    world: World, log: LoggedSlates, spec: str, n_bootstrap: int, seed: int, n_samples: int
) -> pd.DataFrame:
    """OPE table of target ``spec`` on ``log`` (CTR and clicks per slate)."""
    world.users.reset()
    pol = make_policy(spec)
    pol.bind(world)
    models = fit_reward_models(log)
    probs = target_probabilities(log, pol, world.catalogue, models, n_samples=n_samples, seed=seed)
    return estimate_kpis(log, probs, models, ESTIMATORS, KPIS, n_bootstrap=n_bootstrap, seed=seed)


# -- part 2: one seed of the repeated experiment (a process-pool task) ------------------------------------
_STATE: dict[str, Any] = {}


def _init(cfg_json: str, world_seed: int, users: int) -> None:
    cfg = SimulatorConfig.model_validate_json(cfg_json)
    cat = build_catalogue(config=cfg.catalogue, seed=world_seed)
    _STATE.update(cfg=cfg, world=World.create(cat, cfg, seed=world_seed, n_users=users))


def _one_seed(args: tuple[int, list[str], int, int]) -> list[dict[str, Any]]:
    seed, targets, n_bootstrap, n_samples = args
    cfg, world = _STATE["cfg"], _STATE["world"]
    log = log_once(world, cfg, seed)
    rows = []
    for spec in targets:
        tab = evaluate(world, log, spec, n_bootstrap, seed, n_samples)
        for r in tab.itertuples():
            rows.append({"seed": seed, "target": spec, "kpi": r.kpi, "estimator": r.estimator,
                         "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high})  # fmt: skip
    return rows


def _fmt_table(rows: list[list[Any]], header: list[str]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1800, help="users of the large log (1 day)")
    parser.add_argument("--targets", default="truth_formula,ctr_oracle,explore:truth_formula")
    parser.add_argument("--truth-seeds", type=int, default=4, help="on-policy runs averaged for the truth")
    parser.add_argument("--seeds", type=int, default=50, help="repeated small logs (part 2; 0 skips it)")
    parser.add_argument("--seed-users", type=int, default=300, help="users per small log")
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--seed-bootstrap", type=int, default=200, help="bootstrap resamples in part 2")
    parser.add_argument("--n-samples", type=int, default=256, help="Monte Carlo rankings (target marginals)")
    parser.add_argument("--seed", type=int, default=0, help="world and master seed")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default=None, help="write every figure as JSON here")
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    result: dict[str, Any] = {"args": vars(args)}

    # -- part 1 -----------------------------------------------------------------------------------
    t0 = time.perf_counter()
    cfg = SimulatorConfig(users=args.users, days=1)
    cat = build_catalogue(config=cfg.catalogue, seed=args.seed)
    world = World.create(cat, cfg, seed=args.seed)
    log = log_once(world, cfg, args.seed)
    logged = logged_kpis(log)
    print(f"log: {int(logged['impressions']):,} impressions, {log.n_slates:,} slates, "
          f"{len(np.unique(log.user_id)):,} users; logger CTR {logged['ctr']:.4f}, "
          f"clicks/slate {logged['clicks_per_slate']:.3f} ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    truth_seeds = [10_000 + i for i in range(args.truth_seeds)]
    part1: dict[str, Any] = {"logged": logged, "targets": {}}
    for spec in targets:
        truth = on_policy(world, cfg, spec, truth_seeds)
        ctx = on_logged_contexts(world, log, spec, cfg)
        tab = evaluate(world, log, spec, args.n_bootstrap, args.seed, args.n_samples)
        rows = []
        for r in tab.itertuples():
            t = truth[r.kpi]
            rows.append([r.kpi, r.estimator, f"{r.value:.4f}", f"[{r.ci_low:.4f}, {r.ci_high:.4f}]",
                         f"{t:.4f}", f"{r.value / t - 1:+.1%}", "yes" if r.ci_low <= t <= r.ci_high else "no",
                         f"{ctx[r.kpi]:.4f}"])  # fmt: skip
        print(f"\ntarget {spec}: on-policy CTR {truth['ctr']:.4f} ± {truth['ctr_se']:.4f} (SE over "
              f"{truth['runs']} runs), clicks/slate {truth['clicks_per_slate']:.3f}; on the logged contexts "
              f"{ctx['ctr']:.4f} / {ctx['clicks_per_slate']:.3f}")  # fmt: skip
        print(_fmt_table(rows, ["kpi", "estimator", "estimate", "95% CI", "on-policy", "error",
                                "CI covers", "on logged contexts"]))  # fmt: skip
        part1["targets"][spec] = {"truth": truth, "on_logged_contexts": ctx,
                                  "estimates": tab.to_dict(orient="records")}  # fmt: skip
    result["part1"] = part1
    result["seconds_part1"] = time.perf_counter() - t0

    # -- part 2 -----------------------------------------------------------------------------------
    if args.seeds > 0:
        t0 = time.perf_counter()
        small = SimulatorConfig(users=args.seed_users, days=1)
        spawned = np.random.SeedSequence(args.seed).spawn(args.seeds)
        seeds = [int(s.generate_state(1)[0] % 2**31) for s in spawned]
        world_s = World.create(cat, small, seed=args.seed + 1)
        truths = {spec: on_policy(world_s, small, spec, [20_000 + i for i in range(10)]) for spec in targets}
        tasks = [(s, targets, args.seed_bootstrap, 64) for s in seeds]
        rows: list[dict[str, Any]] = []
        init = (small.model_dump_json(), args.seed + 1, args.seed_users)
        if args.workers > 1:
            ctx_mp = mp.get_context("spawn")
            with ProcessPoolExecutor(args.workers, mp_context=ctx_mp, initializer=_init, initargs=init) as ex:
                for part in tqdm(ex.map(_one_seed, tasks), total=len(tasks), desc="seeds"):
                    rows += part
        else:
            _init(*init)
            for task in tqdm(tasks, desc="seeds"):
                rows += _one_seed(task)
        df = pd.DataFrame(rows)
        table = []
        for (spec, kpi, est), g in df.groupby(["target", "kpi", "estimator"], sort=False):
            t = truths[spec][kpi]
            v = g["value"].to_numpy()
            cover = ((g["ci_low"] <= t) & (t <= g["ci_high"])).mean()
            table.append({"target": spec, "kpi": kpi, "estimator": est, "truth": t, "mean": v.mean(),
                          "bias": v.mean() - t, "rel_bias": v.mean() / t - 1, "sd": v.std(ddof=1),
                          "rmse": float(np.sqrt(np.mean((v - t) ** 2))), "coverage": cover,
                          "n": len(v)})  # fmt: skip
        tab2 = pd.DataFrame(table)
        print(f"\npart 2: {args.seeds} logs of {args.seed_users} users (same world), truth = mean of 10 "
              f"on-policy runs ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
        print(_fmt_table(
            [[r.target, r.kpi, r.estimator, f"{r.truth:.4f}", f"{r.mean:.4f}", f"{r.bias:+.4f}",
              f"{r.rel_bias:+.1%}", f"{r.sd:.4f}", f"{r.rmse:.4f}", f"{r.coverage:.0%}"]
             for r in tab2.itertuples()],
            ["target", "kpi", "estimator", "truth", "mean", "bias", "rel. bias", "sd", "RMSE",
             "95% CI coverage"],
        ))  # fmt: skip
        result["part2"] = {"truths": truths, "table": table, "seconds": time.perf_counter() - t0}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2, default=float)


if __name__ == "__main__":
    main()
