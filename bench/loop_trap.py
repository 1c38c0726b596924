"""The feedback loop, measured: click-trained vs intent-trained rankers learning from their own traffic.

A living world (items published, live, retired; ``simulator.living``) is first logged for ``--log-days``
under the uniformly random policy; two rankers are trained on that log — one on raw clicks, one on
downstream signals (successful long clicks as positives, conversions weighted up) — and then each serves
its own arm and learns from that arm's traffic after every ``--window-min`` simulated minutes (warm start,
the window's events plus a bounded replay), for ``--days`` days on the same users. Two reference arms serve
beside them: ``truth_formula`` (true P(click)·E[t|click]^0.8, the yardstick) and ``ctr_oracle``.

Prints, per day and arm, the heavy-clickbait impression share, CTR, time spent, conversions and return
rate (per-user, 95% CIs: ratios by the delta method, means by a normal interval), the comparison
``intent`` vs ``clicks`` per day, and where the seconds went (simulation and scoring vs training).

Each learner's update is a fixed small budget (``--max-steps`` minibatches of ``--online-batch`` rows over the
window's new rows plus as many rows sampled from its replay buffer, ``--replay-ratio``), warm start, Adam
state kept (:class:`~intentrank.serving.incremental.IncrementalTrainer`).

Usage (the issue's scale, the defaults): ``.venv/bin/python bench/loop_trap.py --json loop.json``
(= ``--users 20000 --days 7 --window-min 5 --live-items 3000``). A fraction (``--users 4000 --days 2``)
prints its time extrapolated to the full size.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intentrank.config import IntentRankConfig
from intentrank.ranking.config import RankerConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.history import UserHistory, add_history_columns
from intentrank.ranking.trainer import Trainer
from intentrank.runtime import torch_threads
from intentrank.serving.incremental import IncrementalTrainer, ModelSlot
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.ab import compare_kpis
from intentrank.simulator.catalogue import build_catalogue
from intentrank.simulator.engine import Simulator
from intentrank.simulator.living import living_catalogue
from intentrank.simulator.loop import run_loop
from intentrank.simulator.registry import get_policy
from intentrank.simulator.sinks import StoreSink
from intentrank.simulator.world import World
from intentrank.stats.compare import ratio_estimate
from intentrank.store import EventStore

CLICK_LABELS = {"click_target": "click"}
INTENT_LABELS = {"click_target": "long_click", "conversion_weight": 1.0}


def ranker_config(
    base: RankerConfig, labels: dict[str, Any], formula: tuple[float, float, float]
) -> RankerConfig:
    a, b, g = formula
    return base.model_copy(
        update={
            "labels": base.labels.model_copy(update=labels),
            "formula": base.formula.model_copy(update={"a": a, "b": b, "g": g}),
            "train": base.train.model_copy(update={"progress": False}),
        }
    )


def day_table(frame: pd.DataFrame, arms: list[str]) -> list[dict[str, Any]]:
    """Per arm: heavy share, CTR (ratios, delta method), time, conversions, return rate (means)."""
    rows = []
    for arm in arms:
        f = frame[frame["arm"] == arm]
        row: dict[str, Any] = {"arm": arm, "users": len(f)}
        for name, (num, den) in {
            "heavy_share": ("impressions_heavy", "impressions"),
            "ctr": ("clicks", "impressions"),
        }.items():
            e = ratio_estimate(f[num].to_numpy(float), f[den].to_numpy(float))
            row[name] = (e.value, e.ci_low, e.ci_high)
        for col in ("time_spent_s", "conversions", "return_rate"):
            v = f[col].to_numpy(float)
            se = v.std(ddof=1) / np.sqrt(len(v))
            row[col] = (v.mean(), v.mean() - 1.96 * se, v.mean() + 1.96 * se)
        rows.append(row)
    return rows


def fmt(t: tuple[float, float, float], pct: bool = False) -> str:
    k = 100 if pct else 1
    return f"{t[0] * k:.3g} [{t[1] * k:.3g}, {t[2] * k:.3g}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--log-days", type=int, default=1)
    ap.add_argument("--window-min", type=float, default=5.0)
    ap.add_argument("--live-items", type=int, default=3_000)
    ap.add_argument(
        "--initial-rows", type=int, default=None,
        help="Train the two starting models on a uniform sample of this many log rows (whole slates; "
        "history columns from the whole log). Default: the whole log.",
    )  # fmt: skip
    ap.add_argument("--replay", type=int, default=20_000, help="Rows in each learner's replay buffer.")
    ap.add_argument("--replay-ratio", type=float, default=1.0, help="Replayed rows sampled per new row.")
    ap.add_argument("--online-batch", type=int, default=2048, help="Minibatch rows of an online update.")
    ap.add_argument(
        "--max-steps", type=int, default=1,
        help="Most minibatch steps per update (1: one step of --online-batch rows every window).",
    )  # fmt: skip
    ap.add_argument(
        "--heldout-every", type=int, default=5,
        help="Every this many updates, score the new rows before training on them (held-out click AUC).",
    )  # fmt: skip
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads.")
    ap.add_argument(
        "--workers", type=int, default=2,
        help="Threads for a window's arms and the learners' updates (run_loop(workers=)); the events and "
        "models are those of 1 worker: only the wall time changes.",
    )  # fmt: skip
    ap.add_argument("--store", type=Path, default=None, help="Event store (default: a temporary file).")
    ap.add_argument("--json", type=Path, default=None, help="Write the figures here.")
    args = ap.parse_args()

    cfg = IntentRankConfig()
    living = cfg.simulator.living.model_copy(
        update={"enabled": True, "window_min": args.window_min, "live_items": args.live_items}
    )
    sim_cfg = cfg.simulator.model_copy(update={"users": args.users, "days": args.days, "living": living})
    t_all, c_all = time.perf_counter(), time.process_time()
    pool = build_catalogue(config=sim_cfg.catalogue, seed=args.seed)
    cat = living_catalogue(pool, living, days=args.log_days + args.days, seed=args.seed)
    world = World.create(cat, sim_cfg, seed=args.seed)
    store_path = args.store or Path(tempfile.mkdtemp()) / "loop.duckdb"
    out: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "items_scheduled": len(cat),
                           "loadavg_start": os.getloadavg(), "setup_seconds": {}}  # fmt: skip
    with torch_threads(args.threads), EventStore(store_path) as store:
        store.write_items(cat.items)
        t0 = time.perf_counter()
        with store.begin_run(
            seed=args.seed, policy="random", command="loop_trap log", shared_users=True
        ) as run:
            Simulator(world, get_policy("random"), seed=args.seed).run(StoreSink(run), days=args.log_days)
        log = load_events(store, runs=[run.run_id])
        out["setup_seconds"]["log"] = round(time.perf_counter() - t0, 1)
        print(f"log: {len(log):,} impressions in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        t0 = time.perf_counter()
        trained: dict[str, Trainer] = {}
        fit_log = log
        if args.initial_rows is not None and args.initial_rows < len(log):
            # history columns from the whole log first (point in time), then a uniform sample of slates
            fit_log = add_history_columns(log, cfg.ranker.features, cfg.ranker.labels.long_click_threshold_s)
            slates = fit_log["slate_id"].unique()
            rng = np.random.default_rng(args.seed)
            keep = rng.permutation(slates)[: max(1, round(len(slates) * args.initial_rows / len(log)))]
            fit_log = fit_log[fit_log["slate_id"].isin(keep)].reset_index(drop=True)
        out["initial_rows"] = len(fit_log)
        formulas = {"clicks": (1.0, 0.0, 0.0), "intent": (1.0, 0.8, 0.0)}
        for arm, labels in (("clicks", CLICK_LABELS), ("intent", INTENT_LABELS)):
            rc = ranker_config(cfg.ranker, labels, formulas[arm])
            tr = Trainer(rc).fit(fit_log)
            out[f"initial_{arm}"] = {"click_auc": tr.fit_report_["valid"]["click"]["auc"]}
            online = rc.model_copy(
                update={"train": rc.train.model_copy(
                    update={"epochs": 1, "valid_fraction": 0.0, "batch_size": args.online_batch}
                )}
            )  # fmt: skip
            tr.config = online
            trained[arm] = tr
        out["setup_seconds"]["initial_training"] = round(time.perf_counter() - t0, 1)
        print(f"initial models trained in {time.perf_counter() - t0:.1f}s: {out}", file=sys.stderr)

        policies: dict[str, Any] = {}
        learners: dict[str, IncrementalTrainer] = {}
        # the served user history (all arms' events; each user is in one arm), fed after every window
        served = UserHistory(cfg.ranker.labels.long_click_threshold_s).update(log)
        served.watermark = store.watermark()
        for arm, tr in trained.items():
            slot = ModelSlot(copy.deepcopy(tr.model_))
            policies[arm] = RankerPolicy(
                slot, formula=RankingFormula(*formulas[arm]), name=arm, history=served
            )
            learners[arm] = IncrementalTrainer(
                tr,
                slot=slot,
                items=cat.items,
                arm=arm,
                replay_events=args.replay,
                watermark=store.watermark(),
                history=UserHistory(cfg.ranker.labels.long_click_threshold_s).update(log),
                replay_ratio=args.replay_ratio,
                max_steps=args.max_steps,
                heldout_every=args.heldout_every,
            )
        policies["truth_formula"] = get_policy("truth_formula")
        policies["ctr_oracle"] = get_policy("ctr_oracle")
        n_windows = [0]

        def progress(w: Any) -> None:
            n_windows[0] += 1
            if n_windows[0] % 50 == 0:
                print(f"  day {w.day} window {w.window}: {time.perf_counter() - t_all:.0f}s "
                      f"(CPU {time.process_time() - c_all:.0f}s, load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)  # fmt: skip

        arms = list(policies)
        out["per_day"] = {}

        def report_day(day: Any, res: Any) -> None:
            """Print the day's rows and write the figures so far (a long run reports days as they end)."""
            d = day.day
            frame = res.day_frame(d)
            rows = day_table(frame, arms)
            out["per_day"][d] = rows
            for r in rows:
                print(
                    f"| {d} | {r['arm']} | {fmt(r['heavy_share'], True)} | {fmt(r['ctr'], True)} | "
                    f"{fmt(r['time_spent_s'])} | {fmt(r['conversions'])} | {fmt(r['return_rate'])} |",
                    flush=True,
                )
            cmp = compare_kpis(frame, "clicks", "intent").set_index("metric")
            out["per_day"][f"{d}_intent_vs_clicks"] = {
                m: [cmp.at[m, "rel_value"], cmp.at[m, "rel_ci_low"], cmp.at[m, "rel_ci_high"]]
                for m in ("ctr", "time_spent_s", "conversions", "impressions_heavy", "return_rate")
                if m in cmp.index
            }
            auc = {a: lr.heldout_auc(d) for a, lr in learners.items()}
            out["per_day"][f"{d}_heldout_click_auc"] = auc
            print(f"  day {d}: held-out click AUC (p_click before training on the rows): {auc}", flush=True)
            out["days_done"] = d - args.log_days + 1
            out["seconds_so_far"] = round(time.perf_counter() - t_all, 1)
            out["cpu_seconds_so_far"] = round(time.process_time() - c_all, 1)
            out["loadavg_now"] = os.getloadavg()
            print(f"  day {d} done at {out['seconds_so_far']:.0f}s", file=sys.stderr, flush=True)
            if args.json:
                args.json.write_text(json.dumps(out, indent=2, default=float))

        print("\n| day | arm | heavy share % | CTR % | time s/user | conversions/user | return rate |")
        print("|---|---|---|---|---|---|---|", flush=True)
        res = run_loop(
            world,
            policies,
            store,
            learners,
            seed=args.seed + 1,
            days=args.days,
            first_day=args.log_days,
            on_window=progress,
            on_day=report_day,
            workers=args.workers,
        )

    out["seconds"] = res.seconds | {"all": round(time.perf_counter() - t_all, 1)}
    out["loadavg_end"] = os.getloadavg()
    out["updates"] = {a: len(r) for a, r in res.updates.items()}
    out["heldout_click_auc"] = {a: lr.heldout_auc() for a, lr in learners.items()}
    print(f"held-out click AUC of the learners over the loop: {out['heldout_click_auc']}")
    # does the click-trained arm drift toward clickbait? heavy share of its first vs last day (95% CIs)
    first, last = out["per_day"][args.log_days], out["per_day"][args.log_days + args.days - 1]
    drift = {}
    for i, arm in enumerate(arms):
        (a, alo, ahi), (b, blo, bhi) = first[i]["heavy_share"], last[i]["heavy_share"]
        verdict = "rises" if blo > ahi else "falls" if bhi < alo else "no clear change (CIs overlap)"
        drift[arm] = {"first_day": a, "last_day": b, "verdict": verdict}
        print(f"heavy-clickbait share, {arm}: day {args.log_days} {a:.2%} -> day "
              f"{args.log_days + args.days - 1} {b:.2%}: {verdict}")  # fmt: skip
    out["drift"] = drift
    sec = res.seconds
    loop_s = max(sec["total"], 1e-9)
    parts = ("simulation", "scoring", "training", "history", "reading_events")
    shares = {k: round(sec[k] / loop_s, 3) for k in parts}
    cpu_s = max(sec["cpu_total"], 1e-9)
    out["shares"] = shares
    out["cpu_shares"] = {k: round(sec[f"cpu_{k}"] / cpu_s, 3) for k in parts}
    print(
        f"process CPU seconds of the loop: {cpu_s:,.0f} (wall {loop_s:,.0f}); CPU shares: {out['cpu_shares']}"
    )
    out["extrapolated_cpu_s_20k_7d"] = round(cpu_s * (20_000 / args.users) * (7 / args.days), 1)
    scale = (20_000 / args.users) * (7 / args.days)
    out["extrapolated_loop_s_20k_7d"] = round(loop_s * scale, 1)
    print(f"\nseconds: {out['seconds']}; shares of the loop: {shares}; updates per learner: {out['updates']}")
    print(
        f"loop time x {scale:.2f} = {loop_s * scale:,.0f} s for 20,000 users x 7 days at "
        f"{args.window_min:g}-min windows (linear in users x days: an upper bound, per-window costs "
        "do not grow with users)"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=float))


if __name__ == "__main__":
    main()
