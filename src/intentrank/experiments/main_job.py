"""The main job: log traffic, train the multi-task ranker, A/B-test ranking policies in the simulator.

The world is the living one when ``simulator.living.enabled`` (the default): one publication schedule
over the log's days and the A/B's days (``simulator.living``: items published, live, retired; interest
fades with age); the A/B continues the log's timeline (its days follow the log's) on the same schedule,
so it serves items published after the training data ends.

1. **Log.** ``log_users`` simulated users browse for ``log_days`` days under a stochastic logging policy;
   every impression goes to a new run of the DuckDB event store ``<out_dir>/events.duckdb`` (an
   existing store is kept: the job appends its run and trains on that run's events only).
2. **Train.** The multi-task ranker trains on all logged days but the last (downstream-signal labels);
   the last day is held out for per-task AUCs. When the configured mitigation has training-side
   methods (shallow tower, aux loss, …) a second, mitigated ranker is trained on the same log.
3. **A/B.** ``ab_users`` fresh users are split by a stable hash into four arms: ``control`` (the ranker
   ordering by p_click alone — what a click-optimising system does), ``control_aa`` (the same policy
   again: an A/A check), ``intent`` (the configured formula, default ``p_click · t^0.8``) and
   ``intent_mitigated`` (that formula with the configured mitigation), plus the reference arm
   ``truth_formula`` (the formula on the world's true P(click), E[t|click], P(conv|click): the yardstick a
   learned ranker is measured against). Every arm is compared with control per user, with confidence
   intervals and a sample-ratio-mismatch check; each arm's clickbait-category mix (shares of impressions
   by the scorer's category) is reported. Models are frozen during the A/B (no learner updates them);
   in the living world the users' history (the ranker's user features) is fed after every window of
   ``experiment.ab_window_min`` minutes (:func:`intentrank.simulator.loop.run_loop`, events in
   ``<out_dir>/ab_events.duckdb``).
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from intentrank.clickbait import CATEGORIES, categorize
from intentrank.config import IntentRankConfig
from intentrank.mitigation.pipeline import MitigationPlan
from intentrank.ranking.events import load_events
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.history import UserHistory, add_history_columns
from intentrank.ranking.trainer import Trainer
from intentrank.runtime import torch_threads
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.ab import SimulationResult, format_comparison, simulate
from intentrank.simulator.catalogue import build_catalogue
from intentrank.simulator.kpis import summarise
from intentrank.simulator.living import living_catalogue
from intentrank.simulator.loop import run_loop
from intentrank.simulator.registry import get_policy
from intentrank.simulator.sinks import HistorySink, StoreSink
from intentrank.simulator.world import World
from intentrank.store import EventStore, config_hash

#: The arms of the A/B phase, control first; ``truth_formula`` is the reference arm (true quantities).
ARMS = ("control", "control_aa", "intent", "intent_mitigated", "truth_formula")
#: KPIs shown in the headline table.
HEADLINE = ("ctr", "clicks", "time_spent_s", "bounce_rate", "conversions", "impressions_heavy")


@dataclass
class MainJobResult:
    """Everything the main job measured; ``summary()`` is what ``intentrank run`` prints."""

    out_dir: Path
    catalogue: dict[str, Any]
    log: dict[str, Any]
    training: dict[str, Any]
    per_user: pd.DataFrame
    comparisons: dict[str, pd.DataFrame]
    srm: dict[str, Any]
    seconds: dict[str, float]

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary: catalogue, log, held-out metrics, per-arm KPIs and arm-vs-control changes."""
        changes: dict[str, dict[str, Any]] = {}
        for arm, table in self.comparisons.items():
            rows = table.set_index("metric")
            changes[arm] = {
                m: {
                    "relative_change": _r(rows.at[m, "rel_value"]),
                    "ci95": [_r(rows.at[m, "rel_ci_low"]), _r(rows.at[m, "rel_ci_high"])],
                    "significant": bool(rows.at[m, "rel_significant"]),
                    "p_holm": _r(rows.at[m, "rel_p_holm"]),
                }
                for m in HEADLINE
                if m in rows.index
            }
        arms = {}
        for arm in ARMS:
            f = self.per_user[self.per_user["arm"] == arm]
            arms[arm] = {k: v if isinstance(v, int) else _r(v) for k, v in summarise(f).items()}
            total = max(int(f["impressions"].sum()), 1)
            arms[arm]["category_mix"] = {c: _r(f[f"impressions_{c}"].sum() / total) for c in CATEGORIES}
        return {
            "out_dir": str(self.out_dir),
            "catalogue": self.catalogue,
            "log": self.log,
            "training": self.training,
            "arms": arms,
            "vs_control": changes,
            "srm": self.srm,
            "seconds": self.seconds,
        }


def _r(x: Any, nd: int = 4) -> float:
    return round(float(x), nd)


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_main_job(cfg: IntentRankConfig, out_dir: str | Path | None = None) -> MainJobResult:
    """Run the three phases with ``cfg``; writes events, models and result tables under ``out_dir``."""
    ex = cfg.experiment
    out = Path(out_dir or ex.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with torch_threads(cfg.ranker.train.threads):
        return _run(cfg, out)


def _run(cfg: IntentRankConfig, out: Path) -> MainJobResult:
    ex = cfg.experiment
    seconds: dict[str, float] = {}
    t_all = time.perf_counter()

    # 0. the world: the shipped headlines scored by the default clickbait model (cached)
    t0 = time.perf_counter()
    cat = build_catalogue(config=cfg.simulator.catalogue, seed=cfg.seed, clickbait=cfg.clickbait)
    living = cfg.simulator.living
    if living.enabled:  # one publication schedule over the log's and the A/B's days
        cat = living_catalogue(cat, living, days=ex.log_days + ex.ab_days, seed=cfg.seed)
    codes = np.bincount(categorize(cat.items["clickbait_score"].to_numpy()), minlength=len(CATEGORIES))
    catalogue = {"items": len(cat.items)} | {c: int(n) for c, n in zip(CATEGORIES, codes, strict=True)}
    if living.enabled:
        catalogue |= {"living": True, "live_items": living.live_items, "variants": int(cat.is_variant.sum())}
    seconds["catalogue"] = time.perf_counter() - t0

    # 1. log
    t0 = time.perf_counter()
    store_path = out / "events.duckdb"  # kept across runs: this job adds a new run and trains on it alone
    log_cfg = cfg.simulator.model_copy(update={"users": ex.log_users, "days": ex.log_days})
    _say(f"[1/3] logging {ex.log_users:,} users x {ex.log_days} days under '{ex.logging_policy}'")
    with EventStore(store_path) as store:
        store.write_items(cat.items)
        with store.begin_run(
            config_hash=config_hash(cfg.model_dump(mode="json", exclude={"experiment": {"out_dir"}})),
            seed=cfg.seed,
            policy=str(ex.logging_policy),
            command="run",
            on_existing="append",
        ) as run:
            simulate(ex.logging_policy, log_cfg, seed=cfg.seed, catalogue=cat, sink=StoreSink(run))
        events = load_events(store, runs=[run.run_id])
        n_events = len(events)
    # user-history features point in time over the whole log, before the split: the held-out day's rows
    # see their users' earlier days (computed on the held-out frame alone they would not)
    events = add_history_columns(events, cfg.ranker.features, cfg.ranker.labels.long_click_threshold_s)
    last = int(events["day"].max())
    train_df, test_df = events[events["day"] < last], events[events["day"] == last]
    log = {"events": int(n_events), "train_events": len(train_df), "held_out_events": len(test_df)}
    seconds["log"] = time.perf_counter() - t0

    # 2. train (base ranker, and a mitigated one if the mitigation changes training)
    t0 = time.perf_counter()
    ranker_cfg = cfg.ranker
    _say(f"[2/3] training the ranker on {len(train_df):,} events (held out: day {last})")
    base = Trainer(ranker_cfg).fit(train_df)
    training: dict[str, Any] = {"held_out": _round_metrics(base.evaluate(test_df))}
    base.save(out / "model")
    plan = MitigationPlan(cfg.mitigation)
    mitigated_model = base.model_
    if plan.changes_training:
        _say(f"      training the mitigated ranker ({', '.join(plan.names)})")
        mit = plan.make_trainer(ranker_cfg)
        plan.fit(mit, train_df, cat.items)
        training["mitigated_held_out"] = _round_metrics(mit.evaluate(test_df))
        mitigated_model = mit.model_
        mit.save(out / "model_mitigated")
    training["mitigation"] = plan.names
    seconds["train"] = time.perf_counter() - t0

    # 3. A/B with an A/A arm and the truth-formula reference arm, on fresh users (another seed)
    t0 = time.perf_counter()
    formula = RankingFormula.from_config(cfg.ranker.formula)
    # the A/B's users are fresh: their history starts empty and grows (one for all arms: each user is in
    # one arm)
    history = UserHistory(cfg.ranker.labels.long_click_threshold_s)
    if living.enabled:  # the items' track record carries over from the log (same catalogue, same timeline)
        history.seed_items(events)
    ctr = RankingFormula(1.0, 0.0, 0.0)
    control = RankerPolicy(base.model_, formula=ctr, name="control", history=history)
    arms = {
        "control": control,
        "control_aa": control,
        "intent": RankerPolicy(base.model_, formula=formula, name="intent", history=history),
        "intent_mitigated": RankerPolicy(
            mitigated_model, formula=formula, post_processors=plan.post_processors(), name="intent_mitigated",
            history=history,
        ),
        "truth_formula": get_policy("truth_formula", a=formula.a, b=formula.b, g=formula.g),
    }  # fmt: skip
    ab_cfg = cfg.simulator.model_copy(update={"users": ex.ab_users, "days": ex.ab_days})
    _say(f"[3/3] A/B test: {ex.ab_users:,} fresh users x {ex.ab_days} days over arms {', '.join(ARMS)}")
    if living.enabled:
        ab_store = out / "ab_events.duckdb"
        ab_store.unlink(missing_ok=True)  # an output of this run (the log's store is the one kept)
        ab_living = living.model_copy(update={"window_min": ex.ab_window_min})
        world = World.create(cat, ab_cfg.model_copy(update={"living": ab_living}), seed=cfg.seed + 1)
        with EventStore(ab_store) as store:
            store.write_items(cat.items)
            history.watermark = store.watermark()
            per_day = math.ceil(17 * 60 / ex.ab_window_min)  # sessions start in 06:00-23:00
            with tqdm(total=per_day * ex.ab_days, desc="A/B windows", disable=not cfg.ranker.train.progress,
                      leave=False) as bar:  # fmt: skip
                loop = run_loop(
                    world,
                    arms,
                    store,
                    seed=cfg.seed + 1,
                    first_day=ex.log_days,
                    on_window=lambda w: bar.update(),
                )
        res = SimulationResult(per_user=loop.per_user(), arm_names=loop.arm_names, days=loop.days)
        seconds |= {f"ab_{k}": v for k, v in loop.seconds.items() if k != "total"}
    else:
        feed = HistorySink(history, cat.items)
        res = simulate(arms, ab_cfg, seed=cfg.seed + 1, catalogue=cat, sink=feed, on_day=feed.commit)
    per_user = res.per_user
    comparisons = {arm: res.compare("control", arm, alpha=ex.alpha) for arm in ARMS[1:]}
    srm = res.srm()
    seconds["ab"] = time.perf_counter() - t0
    seconds["total"] = time.perf_counter() - t_all

    result = MainJobResult(
        out_dir=out,
        catalogue=catalogue,
        log=log,
        training=training,
        per_user=per_user,
        comparisons=comparisons,
        srm={"p_value": _r(srm.p_value), "mismatch": bool(srm.mismatch)},
        seconds={k: round(v, 1) for k, v in seconds.items()},
    )
    _write(result)
    for arm, table in comparisons.items():
        _say(f"\n{arm} vs control")
        _say(format_comparison(table, "control", arm))
    return result


def _round_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out[k] = _round_metrics(v)
        elif isinstance(v, float | np.floating):
            out[k] = _r(v)
        else:
            out[k] = v
    return out


def _write(result: MainJobResult) -> None:
    out = result.out_dir
    result.per_user.to_parquet(out / "per_user_kpis.parquet", index=False)
    for arm, table in result.comparisons.items():
        table.to_csv(out / f"compare_{arm}_vs_control.csv", index=False)
    (out / "summary.json").write_text(json.dumps(result.summary(), indent=2), encoding="utf-8")


def clear_run(out_dir: str | Path) -> None:
    """Remove a previous run's outputs (used by tests and ``--fresh``)."""
    shutil.rmtree(out_dir, ignore_errors=True)
