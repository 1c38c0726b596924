"""The trap detector, demonstrated: simulated users drive the feed service (in process) through a model swap.

A world of ``--users`` simulated users over a synthetic catalogue is first logged for one day under the
uniformly random policy; three rankers are trained on that log (small architecture, ``--epochs``): an
intent-trained one (successful long clicks as positives, conversions weighted up; formula p·t^0.8) that the
service serves first, a click-trained one (raw clicks; formula p_click) and a second intent-trained one
(another seed). Then, per scenario, a fresh :class:`~intentrank.service.state.ServiceState` serves a day:
each user has one session starting uniformly in 06:00–23:00, pages through ``ServiceState.feed`` (the whole
pipeline) while the simulator's behaviour model (``intentrank.simulator.behaviour``: examination, clicks,
bounces, dwell, conversions, continuing to scroll) answers each slate, and the session's events are
acknowledged through ``ServiceState.ingest`` (which feeds the trap detector). At ``--swap-h`` the service
publishes the scenario's new version:

* ``click``: the click-trained model (the trap: the detector should fire);
* ``intent``: the other intent-trained model (should stay silent);
* ``aa``: a copy of the served model (A/A swap: should stay silent).

The detector is evaluated every ``--eval-min`` simulated minutes. Prints per scenario whether and when
(simulated hours after the swap) it fired, the last comparison (CTR and conversions-per-user relative
changes with 99 % intervals) and the seconds spent. The simulator is not tuned toward any outcome: what
the models do in this world is what is reported.

Usage: ``.venv/bin/python bench/service_trap.py [--users 2000] [--items 3000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from intentrank.config import IntentRankConfig
from intentrank.ranking.config import RankerConfig
from intentrank.ranking.trainer import Trainer
from intentrank.service.config import ServiceConfig
from intentrank.service.state import ServiceState
from intentrank.simulator import behaviour as bh
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import synthetic_catalogue
from intentrank.simulator.sinks import CollectSink
from intentrank.simulator.world import World
from intentrank.store import EventStore

CLICK = ({"click_target": "click"}, (1.0, 0.0, 0.0))
INTENT = ({"click_target": "long_click", "conversion_weight": 1.0}, (1.0, 0.8, 0.0))


def train(events: Any, items: Any, base: RankerConfig, kind: tuple, epochs: int, seed: int) -> Any:
    labels, (a, b, g) = kind
    cfg = base.model_copy(
        update={
            "labels": base.labels.model_copy(update=labels),
            "formula": base.formula.model_copy(update={"a": a, "b": b, "g": g}),
            "model": base.model.model_copy(  # a small architecture: a fast serving path for the demo
                update={"mlp_hidden": [64], "tower_hidden": [16],
                        "cross": base.model.cross.model_copy(update={"layers": 1, "rank": 8})}
            ),
            "train": base.train.model_copy(update={"epochs": epochs, "progress": False, "seed": seed}),
        }
    )
    return Trainer(cfg).fit(events, items).model_


def run_day(
    scenario: str, world: World, items: Any, served: Any, new: Any, args: argparse.Namespace
) -> dict[str, Any]:
    """One simulated day through a fresh service; the swap at ``args.swap_h``."""
    clock = [0.0]
    svc = ServiceConfig.model_validate(
        {
            "arms": {"unmitigated": {}},
            "candidates": {"total": args.candidates, "fresh": 50, "popular": 50, "topic": 50, "similar": 50},
            "trap": {"evaluate_every_s": 1e12, "min_users": args.min_users},  # evaluated below, sim clock
            "seed": args.seed,
        }
    )
    users, bcfg = world.users, world.config.behaviour
    S = svc.slate_size
    exam = bh.examination(S, bcfg)
    cat = world.catalogue
    rng = np.random.default_rng(args.seed + 1)  # the same users and draws in every scenario
    start = np.sort(rng.uniform(6 * 3600, 23 * 3600, len(users.trust)))
    order = rng.permutation(len(start))  # which user starts when
    swap_at, step = args.swap_h * 3600.0, args.eval_min * 60.0
    fired_at: float | None = None
    swapped = False
    next_eval = 6 * 3600.0 + step
    t0 = time.perf_counter()
    slates = 0
    with tempfile.TemporaryDirectory() as tmp, EventStore(Path(tmp) / "trap.duckdb") as store:
        st = ServiceState(svc, items, served, store, "x" * 16, clock=lambda: clock[0])
        for s_start, u in zip(start, order, strict=True):
            while next_eval <= s_start:
                if st.trap is not None and st.trap.evaluate(now=next_eval) and fired_at is None and swapped:
                    fired_at = next_eval
                next_eval += step
            if not swapped and s_start >= swap_at:
                st.publish(copy.deepcopy(new), scenario)
                swapped = True
            t = float(s_start)
            n_sat = n_bounce = 0.0
            events: list[SimpleNamespace] = []
            for _ in range(args.max_pages):
                clock[0] = t
                body = st.feed(int(u), f"{u}", arm="unmitigated")
                slates += 1
                slate = np.array([it["item_id"] for it in body["items"]], np.int64)
                interest = world.interest(np.array([u]), slate[None, :])[0]
                p = exam[: len(slate)] * bh.click_prob(
                    interest, users.susceptibility[u], cat.true_clickbait32[slate], users.trust[u], bcfg
                )
                click = rng.random(len(slate)) < p
                b = cat.true_clickbait32[slate]
                q = cat.quality32[slate]
                bounce = click & (rng.random(len(slate)) < bh.bounce_prob(b, q, bcfg))
                read = np.exp(
                    bh.dwell_log_mean(interest, q, bcfg) + bcfg.dwell_sd * rng.standard_normal(len(slate))
                )
                dwell = np.where(
                    click, np.where(bounce, rng.uniform(1.0, bcfg.bounce_dwell_max_s, len(slate)), read), 0.0
                )
                conv = (
                    click
                    & ~bounce
                    & (
                        rng.random(len(slate))
                        < bh.conversion_prob(interest, q, users.conversion_offset[u], bcfg)
                    )
                )
                for k, it in enumerate(slate.tolist()):
                    events.append(SimpleNamespace(slate_id=body["slate_id"], item_id=it, click=bool(click[k]),
                                                  dwell_s=float(dwell[k]), bounce=bool(bounce[k]),
                                                  conversion=bool(conv[k])))  # fmt: skip
                n_sat += float((click & ~bounce & (dwell >= bcfg.satisfied_dwell_s)).sum())
                n_bounce += float(bounce.sum())
                t += float(bcfg.scroll_s_per_item * S + dwell.sum())
                if rng.random() >= bh.continue_prob(
                    users.trust[u], np.float32(n_sat), np.float32(n_bounce), bcfg
                ):
                    break
            clock[0] = t
            st.ingest(events)
        end = 23 * 3600.0 + 2 * step
        while next_eval <= end:
            if st.trap is not None and st.trap.evaluate(now=next_eval) and fired_at is None and swapped:
                fired_at = next_eval
            next_eval += step
        rep = st.trap.report() if st.trap is not None else {}
        comp = rep.get("comparisons", {}).get("unmitigated")
        st.close()
    return {
        "scenario": scenario,
        "fired": fired_at is not None,
        "detection_h_after_swap": None if fired_at is None else round((fired_at - swap_at) / 3600.0, 2),
        "alerts": len(rep.get("alerts", [])),
        "slates": slates,
        "last_comparison": None if comp is None else {
            k: comp[k] for k in ("baseline_version", "version", "ctr_rel", "conversions_per_user_rel",
                                 "time_per_user_rel")
        } | {"users": [comp["baseline"]["users"], comp["current"]["users"]]},
        "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--items", type=int, default=3000)
    ap.add_argument(
        "--log-users", type=int, default=3000, help="Users of the random log the models learn from."
    )
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--candidates", type=int, default=300)
    ap.add_argument("--max-pages", type=int, default=5)
    ap.add_argument("--swap-h", type=float, default=12.0, help="Hour of the simulated day of the swap.")
    ap.add_argument("--eval-min", type=float, default=30.0)
    ap.add_argument("--min-users", type=int, default=200, help="trap.min_users (per version and arm).")
    ap.add_argument("--scenarios", default="click,intent,aa")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    cfg = IntentRankConfig()
    cat = synthetic_catalogue(args.items, seed=args.seed)
    sim = cfg.simulator.model_copy(update={"users": args.log_users, "days": 1})
    sink = CollectSink()
    simulate("random", sim, seed=args.seed, catalogue=cat, sink=sink)
    log = sink.table().to_pandas()
    print(f"[trap] random log: {len(log):,} impressions ({time.perf_counter() - t0:.0f} s)", flush=True)
    served = train(log, cat.items, cfg.ranker, INTENT, args.epochs, 0)
    models = {
        "click": train(log, cat.items, cfg.ranker, CLICK, args.epochs, 0),
        "intent": train(log, cat.items, cfg.ranker, INTENT, args.epochs, 1),
        "aa": served,
    }
    print(f"[trap] models trained ({time.perf_counter() - t0:.0f} s)", flush=True)
    world = World.create(cat, cfg.simulator.model_copy(update={"users": args.users}), seed=args.seed + 7)
    out = []
    for name in args.scenarios.split(","):
        res = run_day(name, world, cat.items.copy(), served, models[name], args)
        print(json.dumps(res), flush=True)
        out.append(res)
    summary = {
        "users": args.users, "items": args.items, "swap_h": args.swap_h, "eval_min": args.eval_min,
        "results": out, "seconds": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
