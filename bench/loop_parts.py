"""Where a window of the closed loop spends its CPU, part by part, at the issue's scale (20,000 users).

Times, in process CPU seconds (load-robust; single thread), with the default ranker (6.6 M parameters):

- scoring: ``RankerPolicy.scores`` on the blocks a window asks for (``--sessions`` users × 100 candidates,
  ``--slates`` slate steps), the model's weights changed before each window as a learner's publish does
  (so the item side is rebuilt every window), µs per scored row;
- history: ``UserHistory.update`` with one window's events (``--window-rows``) on a history of all users;
- learner: one ``IncrementalTrainer.update`` from a window's rows of one arm (``--arm-rows``; one step of
  ``--online-batch`` rows over new + replayed rows), and its publish.

Runs against any checkout: ``PYTHONPATH=/path/to/src .venv/bin/python bench/loop_parts.py`` (a checkout
without the batched path simply uses its own). Usage: ``.venv/bin/python bench/loop_parts.py``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from intentrank.config import IntentRankConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.history import UserHistory
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.ranking.trainer import Trainer
from intentrank.serving.incremental import EventBatch, IncrementalTrainer
from intentrank.serving.policy import SlateRequest
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.catalogue import build_catalogue
from intentrank.simulator.engine import Simulator
from intentrank.simulator.living import living_catalogue
from intentrank.simulator.registry import get_policy
from intentrank.simulator.sinks import CollectSink
from intentrank.simulator.world import World


def cpu(fn: Any, repeats: int) -> float:
    """Mean process CPU seconds of ``fn()``."""
    t = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - t) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--log-users", type=int, default=4_000, help="Users of the random log the parts read.")
    ap.add_argument("--sessions", type=int, default=25, help="Sessions of one arm in one window.")
    ap.add_argument("--slates", type=int, default=10, help="Slate steps per window (shrinking blocks).")
    ap.add_argument("--window-rows", type=int, default=5_800, help="Events of one window, all arms.")
    ap.add_argument("--arm-rows", type=int, default=1_450, help="Events of one arm in one window.")
    ap.add_argument("--online-batch", type=int, default=2_048)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument(
        "--workers", type=int, default=1,
        help="2: also time two arms' scoring windows and two learners' updates in two threads against "
        "one after the other (wall seconds: needs quiet cores to mean anything).",
    )  # fmt: skip
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = IntentRankConfig()
    living = cfg.simulator.living.model_copy(update={"enabled": True})
    sim_cfg = cfg.simulator.model_copy(update={"users": args.users, "days": 1, "living": living})
    pool = build_catalogue(config=sim_cfg.catalogue, seed=0)
    cat = living_catalogue(pool, living, days=8, seed=0)
    world = World.create(cat, sim_cfg, seed=0)
    sink = CollectSink()
    ids = np.arange(args.log_users, dtype=np.int64)
    Simulator(world, get_policy("random"), seed=0, users=ids).run(sink, days=1)
    imp = sink.table().to_pandas()
    imp["event_id"] = np.arange(len(imp), dtype=np.int64)
    log = load_events(imp.sort_values("ts", kind="stable").reset_index(drop=True), cat.items)
    out: dict[str, Any] = {"args": vars(args), "loadavg_start": os.getloadavg(), "log_rows": len(log)}

    # -- scoring ----------------------------------------------------------------------------------------
    model = MultiTaskRanker(cfg.ranker).eval()
    history = UserHistory(cfg.ranker.labels.long_click_threshold_s).update(log)
    pol = RankerPolicy(model, history=history)
    live = cat.live_at(12 * 3600.0)
    rng = np.random.default_rng(0)
    users = rng.integers(0, args.users, args.sessions)
    rows = [0]

    def window() -> None:
        with torch.no_grad():  # a publish changes the served weights in place
            model.embedding.table.weight[0].add_(1e-6)
        n = args.sessions
        for j in range(args.slates):
            cand = live[rng.integers(0, len(live), (n, 100))]
            req = SlateRequest(users[:n], cand, np.full(n, j, np.int16), np.full(n, 12 * 3600.0), 0)
            pol.scores(req, cat)
            rows[0] += n * 100
            n = max(1, int(n * 0.75))  # sessions end as they scroll

    window()
    rows[0] = 0
    s = cpu(window, args.repeats)
    per_row = s * 1e6 / (rows[0] / args.repeats)
    out["scoring"] = {"cpu_s_per_window": round(s, 4), "us_per_row": round(per_row, 2)}
    print(f"scoring: {out['scoring']}", flush=True)

    # -- user history -----------------------------------------------------------------------------------
    big = UserHistory(cfg.ranker.labels.long_click_threshold_s)
    frame = log.copy()
    frame["user_id"] = rng.integers(0, args.users, len(frame))  # a history of all the world's users
    big.update(frame)
    chunks = [frame.iloc[i : i + args.window_rows] for i in range(0, len(frame), args.window_rows)][:20]
    it = iter(chunks * (1 + args.repeats // len(chunks)))
    out["history_update_cpu_s"] = round(cpu(lambda: big.update(next(it)), args.repeats), 4)
    print(f"history update per window: {out['history_update_cpu_s']} CPU-s", flush=True)

    # -- one learner's update -----------------------------------------------------------------------------
    rc = cfg.ranker.model_copy(
        update={"train": cfg.ranker.train.model_copy(
            update={"epochs": 1, "progress": False, "valid_fraction": 0.0, "batch_size": args.online_batch}
        )}
    )  # fmt: skip
    first = log.iloc[:20_000]
    tr = Trainer(rc).fit(first)
    inc = IncrementalTrainer(
        tr, slot=None, items=cat.items, watermark=int(first["event_id"].max()),
        history=UserHistory(rc.labels.long_click_threshold_s).update(first), max_steps=1,
    )  # fmt: skip
    pos = [20_000]

    def update() -> None:
        lo = pos[0]
        part = log.iloc[lo : lo + args.arm_rows].reset_index(drop=True)
        inc.update(None, EventBatch(part, inc.watermark, int(part["event_id"].max())))
        pos[0] += args.arm_rows

    for _ in range(3):
        update()
    out["learner_update_cpu_s"] = round(cpu(update, args.repeats), 4)
    out["publish_cpu_s"] = round(cpu(inc._publish, args.repeats), 4)
    print(f"learner update: {out['learner_update_cpu_s']} CPU-s (publish {out['publish_cpu_s']})", flush=True)
    if args.workers > 1:
        # two arms (own model each) and two learners, as run_loop(workers=2) runs them after each window
        model_b = MultiTaskRanker(cfg.ranker).eval()
        pol_b = RankerPolicy(model_b, history=history)
        inc_b = IncrementalTrainer(
            copy.deepcopy(inc.trainer), slot=None, items=cat.items, watermark=inc.watermark,
            history=copy.deepcopy(inc.history), max_steps=1,
        )  # fmt: skip

        def window_b() -> None:
            with torch.no_grad():
                model_b.embedding.table.weight[0].add_(1e-6)
            n = args.sessions
            for j in range(args.slates):
                cand = live[rng.integers(0, len(live), (n, 100))]
                pol_b.scores(
                    SlateRequest(users[:n], cand, np.full(n, j, np.int16), np.full(n, 12 * 3600.0), 0), cat
                )
                n = max(1, int(n * 0.75))

        def update_b() -> None:
            lo = pos[0]
            part = log.iloc[lo : lo + args.arm_rows].reset_index(drop=True)
            inc_b.watermark = inc.watermark
            inc_b.update(None, EventBatch(part, inc_b.watermark, int(part["event_id"].max())))

        window_b()
        with ThreadPoolExecutor(args.workers) as pool:
            for name, (fa, fb) in {"scoring": (window, window_b), "learner": (update_b, update)}.items():
                t = time.perf_counter()
                for _ in range(args.repeats):
                    fa(), fb()
                seq = time.perf_counter() - t
                t = time.perf_counter()
                for _ in range(args.repeats):
                    list(pool.map(lambda f: f(), (fa, fb)))
                par = time.perf_counter() - t
                out[f"two_{name}_wall_s"] = {"sequential": round(seq / args.repeats, 4),
                                             "threads": round(par / args.repeats, 4),
                                             "speedup": round(seq / max(par, 1e-9), 2)}  # fmt: skip
                print(f"two {name} (wall s): {out[f'two_{name}_wall_s']}", flush=True)
    out["loadavg_end"] = os.getloadavg()
    print(json.dumps(out, default=float))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2, default=float)


if __name__ == "__main__":
    main()
