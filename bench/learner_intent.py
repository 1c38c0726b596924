"""Does the learner learn intent? Held-out figures of the ranker on the living world, and a short A/B.

1. Log: ``--users`` users x ``--log-days`` days of the living world (items published, live, retired) under
   the uniformly random policy (``--logging random``). While logging, the held-out day's true click
   probabilities are captured at request time (trust as it is then): ``P(click) = examination(position) ·
   P(click | examined)`` of every shown item, the CTR oracle's score on the same events.
2. Train the ranker (default labels: the click task is any click) on days ``0 … L-2`` under each feature
   variant (``--variants``); hold out day ``L-1``. User and item history are computed point in time over
   the whole log before the split (the held-out day sees the past, never itself).
3. Report per variant, on the held-out day: click AUC / log-loss next to the CTR oracle's AUC on the same
   events; per clickbait category of the public score (non / light / heavy), the Pearson and Spearman
   correlation between an item's mean predicted log time-given-click and its hidden true quality
   (items shown on the held-out day, with n); **cold start**: click AUC on the held-out events of items
   published after the training data ends, for each variant (``id_only`` = item id without any content
   feature: no title, topic, source, length, item statistics, user×topic history).
4. A/B (``--ab-days``; 0 = skip): the first variant's model, frozen, serves the next day(s) of the same world
   (same users, split among the arms) by ``p_click`` and by ``ctr·t^0.8`` (each of ``--ab-variants``'
   models), beside ``ctr_oracle`` and
   ``truth_formula``; the policies' user/item history is fed with the log and then after every window.
   Reports CTR of the p_click arm vs the CTR oracle, heavy-clickbait impression share of the ctr·t^0.8 arm
   vs the true-formula arm (per-user delta-method 95 % CIs).

Usage: ``.venv/bin/python bench/learner_intent.py [--users 3000] [--log-days 3] [--ab-days 1]
[--variants default,id_only] [--json out.json]``
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from intentrank.config import IntentRankConfig
from intentrank.ranking import metrics as M
from intentrank.ranking.config import HISTORY_COLUMNS, DenseFeature, RankerConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.heldout import time_quality_correlation, time_split
from intentrank.ranking.history import UserHistory, add_history_columns
from intentrank.ranking.trainer import Trainer
from intentrank.runtime import torch_threads
from intentrank.serving.incremental import IncrementalTrainer, ModelSlot
from intentrank.serving.policy import SlateRequest
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator import behaviour as bh
from intentrank.simulator.catalogue import DAY_S, build_catalogue
from intentrank.simulator.engine import Simulator
from intentrank.simulator.living import living_catalogue
from intentrank.simulator.loop import run_loop
from intentrank.simulator.policies import CallableScorerPolicy
from intentrank.simulator.registry import get_policy
from intentrank.simulator.sinks import StoreSink
from intentrank.simulator.world import World
from intentrank.stats.compare import ratio_estimate
from intentrank.store import EventStore

#: item-side content columns (dropped by ``id_only``): everything but the item id that describes the item
CONTENT_CAT = {"topic", "source"}
ITEM_STAT_COLUMNS = [c for c in HISTORY_COLUMNS if c.startswith("item_")]
USER_TOPIC_COLUMNS = [c for c in HISTORY_COLUMNS if c.startswith("user_topic")]
USER_SOURCE_COLUMNS = [c for c in HISTORY_COLUMNS if c.startswith("user_source")]


#: diagnostic-only dense inputs (hidden truths of the world, never served): name -> (column, scale)
ORACLE_COLUMNS = {
    "oracle_interest": "the true topic interest × freshness I_eff of the (user, item) at the event",
    "oracle_interest_raw": "the true topic interest I (no freshness)",
    "oracle_sc": "the user's true susceptibility × the item's true clickbait",
    "oracle_c": "the item's true clickbait",
    "oracle_s": "the user's true susceptibility",
}
#: bench-derived candidate inputs (from the public history columns): name -> DenseFeature
DERIVED_DENSE = {
    "topic_lift": DenseFeature(name="topic_lift"),
    "age_lin": DenseFeature(name="age_lin"),
    "topic_coec": DenseFeature(name="topic_coec", scale=5.0),
    "topic_coec_lift": DenseFeature(name="topic_coec_lift"),
    "topic_exam": DenseFeature(name="topic_exam", transform="log1p", scale=0.3),
    "item_coec": DenseFeature(name="item_coec", scale=5.0),
    "topic_read_coec": DenseFeature(name="topic_read_coec", scale=10.0),
    **{k: DenseFeature(name=k) for k in ORACLE_COLUMNS},
    # the public clickbait score, as a mitigation's plain_feature adds it (the baseline must not see it)
    "public_c": DenseFeature(name="public_c", column="clickbait_score"),
}


def add_diagnostic_columns(frame: pd.DataFrame, world: World) -> pd.DataFrame:
    """``frame`` with the oracle columns (diagnosis: what the learner would gain if it knew a hidden
    trait) and the bench-derived candidate columns."""
    u = frame["user_id"].to_numpy(np.int64)
    it = frame["item_id"].to_numpy(np.int64)[:, None]
    ts = frame["ts"].to_numpy(np.float64)
    out = frame.copy(deep=False)
    out["oracle_interest"] = world.interest(u, it, ts)[:, 0]
    out["oracle_interest_raw"] = world.interest(u, it)[:, 0]
    out["oracle_c"] = world.catalogue.true_clickbait32[it[:, 0]]
    out["oracle_s"] = world.users.susceptibility[u]
    out["oracle_sc"] = out["oracle_s"].to_numpy() * out["oracle_c"].to_numpy()
    out["topic_lift"] = np.log(frame["user_topic_ctr"].to_numpy() / frame["user_ctr"].to_numpy())
    age = np.clip(ts - frame["publish_ts"].to_numpy(np.float64), 0, None) / 3600.0
    out["age_lin"] = age / 24.0
    return out


def add_coec_columns(log: pd.DataFrame, split_ts: float) -> pd.DataFrame:
    """Position-debiased history (clicks over expected clicks), point in time like ``ranking.history``:
    each impression weighs w(position) = CTR(position) / CTR(0), estimated on the training days."""
    from intentrank.ranking.history import _asof, _pair_codes, _session_start

    pos = log["position"].to_numpy(np.int64)
    tr = log["ts"].to_numpy() < split_ts
    ctr = pd.Series(log["click"].to_numpy(float)[tr]).groupby(pos[tr]).mean()
    w_tab = np.ones(pos.max() + 1)
    w_tab[ctr.index.to_numpy()] = ctr.to_numpy() / ctr.iloc[0]
    w = w_tab[pos]
    click = log["click"].to_numpy(float)
    when = _session_start(log)
    user = log["user_id"].to_numpy(np.int64)
    topic = log["topic"].astype(str).to_numpy(object)
    item = log["item_id"].to_numpy(np.int64)
    read = click * ~log["bounce"].to_numpy(bool) * (log["dwell_s"].to_numpy(float) >= 30.0)
    us = _asof(user, when, np.c_[w, click, read], user, when, "sum")
    ke, _ = _pair_codes(user, topic, user[:0], topic[:0])
    ts_ = _asof(ke, when, np.c_[w, click, read], ke, when, "sum")
    it = _asof(item, when, np.c_[w, click], item, when, "sum")
    c0 = float(ctr.iloc[0])
    u_rate = (us[:, 1] + 10.0 * c0) / (us[:, 0] + 10.0)
    out = log.copy(deep=False)
    out["topic_exam"] = ts_[:, 0]
    out["topic_coec"] = (ts_[:, 1] + 3.0 * u_rate) / (ts_[:, 0] + 3.0)
    out["topic_coec_lift"] = np.log(out["topic_coec"].to_numpy() / u_rate)
    r_rate = (us[:, 2] + 5.0 * c0) / (us[:, 0] + 10.0)
    out["topic_read_coec"] = (ts_[:, 2] + 3.0 * r_rate) / (ts_[:, 0] + 3.0)
    out["item_coec"] = (it[:, 1] + 10.0 * c0) / (it[:, 0] + 10.0)
    return out


#: history columns (and candidates) compared as estimators of the hidden topic interest
INTEREST_ESTIMATORS = ["user_topic_ctr", "user_topic_clicks", "user_topic_reads", "user_topic_read_rate",
                       "topic_coec", "topic_read_coec", "topic_lift"]  # fmt: skip


def interest_estimators(test: pd.DataFrame) -> dict[str, float]:
    """Within-user Pearson correlation, over the held-out impressions, of each history column with the
    hidden topic interest I of the (user, item topic): how much interest the history carries."""
    d = pd.DataFrame({c: test[c].to_numpy(float) for c in ["oracle_interest_raw", *INTEREST_ESTIMATORS]})
    d = d - d.groupby(test["user_id"].to_numpy()).transform("mean")
    i = d["oracle_interest_raw"]
    return {c: round(float(np.corrcoef(d[c], i)[0, 1]), 4) for c in INTEREST_ESTIMATORS}


def clickbait_estimators(test: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Pearson correlation, over the held-out impressions, of each item-side input with the item's hidden
    true clickbait c, split by the item's past impressions (< 20, 20–99, ≥ 100): how much of c the
    item's track record and its public score carry, and how fast."""
    c = test["oracle_c"].to_numpy(float)
    n = test["item_impressions"].to_numpy(float)
    out: dict[str, dict[str, float]] = {}
    for name, m in {"<20": n < 20, "20-99": (n >= 20) & (n < 100), ">=100": n >= 100}.items():
        if m.sum() < 100:
            continue
        row = {"rows": float(m.sum())}
        for col in ("clickbait_score", "item_ctr", "item_bounce_rate", "item_read_rate", "item_coec"):
            row[col] = round(float(np.corrcoef(test[col].to_numpy(float)[m], c[m])[0, 1]), 4)
        out[name] = row
    return out


def rerank_gain(test: pd.DataFrame, p_examined: np.ndarray, score: np.ndarray, exam: np.ndarray) -> float:
    """Within each held-out slate (shown in random order), the expected clicks when its items are
    re-ordered by ``score`` (Σ examination(rank) · true P(click | examined)), as a share of the way from
    a random order to the CTR oracle's order: 1 = the oracle's order, 0 = random."""
    df = pd.DataFrame({"s": test["slate_id"].to_numpy(), "p": p_examined, "x": score})
    df["r_model"] = df.groupby("s")["x"].rank(ascending=False, method="first").astype(int) - 1
    df["r_oracle"] = df.groupby("s")["p"].rank(ascending=False, method="first").astype(int) - 1
    n = df.groupby("s")["p"].transform("size").to_numpy()
    e_rand = (np.cumsum(exam) / np.arange(1, len(exam) + 1))[n - 1] * df["p"].to_numpy()
    e_model = exam[df["r_model"].to_numpy()] * df["p"].to_numpy()
    e_oracle = exam[df["r_oracle"].to_numpy()] * df["p"].to_numpy()
    return float((e_model.sum() - e_rand.sum()) / (e_oracle.sum() - e_rand.sum()))


def variant(name: str, base: RankerConfig) -> RankerConfig:
    """A named feature variant of ``base`` (``default``, ``id_only``, ``no_<feature group>``; ``a+b`` adds
    the diagnostic/derived inputs ``b`` to variant ``a``)."""
    if "+" in name:
        head, *extra = name.split("+")
        cfg = variant(head, base)
        spec = cfg.features
        dense = [*spec.dense, *(DERIVED_DENSE[e] for e in extra)]
        return cfg.model_copy(update={"features": spec.model_copy(update={"dense": dense})})
    spec = base.features
    drop_dense: set[str] = set()
    drop_cat: set[str] = set()
    text = spec.text
    if name == "default":
        pass
    elif name == "id_only":  # the item as an id: no content, no item statistics, no user×topic history
        drop_cat, text = CONTENT_CAT, []
        drop_dense = {"length", *ITEM_STAT_COLUMNS, *USER_TOPIC_COLUMNS, *USER_SOURCE_COLUMNS}
    elif name == "no_item_stats":
        drop_dense = set(ITEM_STAT_COLUMNS)
    elif name == "source_rates":  # plus the user × source (outlet) counts (opt-in history columns)
        extra = [DenseFeature(name="user_source_impressions", transform="log1p", scale=0.3),
                 DenseFeature(name="user_source_ctr", scale=5.0)]  # fmt: skip
        features = spec.model_copy(update={"dense": [*spec.dense, *extra]})
        return base.model_copy(update={"features": features})
    elif name == "read_rate":  # plus the user's reads per impression of the topic (opt-in history column)
        extra = [DenseFeature(name="user_topic_read_rate", scale=10.0)]
        features = spec.model_copy(update={"dense": [*spec.dense, *extra]})
        return base.model_copy(update={"features": features})
    elif name == "no_topic_rates":
        drop_dense = {"user_topic_impressions", "user_topic_ctr"}
    elif name == "no_history":
        drop_dense = set(HISTORY_COLUMNS)
    elif name == "no_text":
        text = []
    elif name == "no_item_id":
        drop_cat = {"item_id"}
    elif name == "poisson":  # the time head predicts the mean seconds (Poisson deviance), not mean log
        return base.model_copy(update={"labels": base.labels.model_copy(update={"dwell_loss": "poisson"})})
    elif name == "log_mse":
        return base.model_copy(update={"labels": base.labels.model_copy(update={"dwell_loss": "log_mse"})})
    else:
        raise SystemExit(f"unknown variant {name!r}")
    features = spec.model_copy(
        update={
            "categorical": [f for f in spec.categorical if f.name not in drop_cat],
            "dense": [f for f in spec.dense if f.name not in drop_dense],
            "text": text,
        }
    )
    return base.model_copy(update={"features": features})


class TruthRecorder:
    """A uniformly random logging policy that records the true P(click | examined) of every candidate of
    requests at or after ``since`` (trust as it is at the request: exact)."""

    def __init__(self, world: World, since: float) -> None:
        self.world, self.since = world, since
        self.parts: list[pd.DataFrame] = []

    def __call__(self, req: SlateRequest, catalogue: Any) -> np.ndarray:
        if req.ts.max(initial=-np.inf) >= self.since:
            m = req.ts >= self.since
            u, cand = req.user_ids[m], req.candidates[m]
            p = self.world.true_click_prob(u, cand, req.ts[m])
            K = cand.shape[1]
            self.parts.append(pd.DataFrame({
                "user_id": np.repeat(u, K), "item_id": cand.reshape(-1),
                "slate_index": np.repeat(req.slate_index[m].astype(np.int64), K), "p_examined": p.reshape(-1),
            }))  # fmt: skip
        return np.zeros(req.candidates.shape, np.float32)

    def truth(self, events: pd.DataFrame, cfg: Any) -> np.ndarray:
        """True P(click) of each event row (examination at its position × P(click | examined))."""
        t = pd.concat(self.parts, ignore_index=True).drop_duplicates(["user_id", "item_id", "slate_index"])
        key = events[["user_id", "item_id", "slate_index"]].astype(np.int64).reset_index(drop=True)
        j = key.merge(t, on=["user_id", "item_id", "slate_index"], how="left")
        if j["p_examined"].isna().any():
            raise RuntimeError(f"truth missing for {int(j['p_examined'].isna().sum())} events")
        exam = bh.examination(int(events["position"].max()) + 1, cfg)
        return exam[events["position"].to_numpy(np.int64)] * j["p_examined"].to_numpy()


def ab_table(frame: pd.DataFrame, arms: list[str]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for arm in arms:
        f = frame[frame["arm"] == arm]
        row: dict[str, list[float]] = {"users": [float(len(f))]}
        for name, (num, den) in {"ctr": ("clicks", "impressions"),
                                 "heavy_share": ("impressions_heavy", "impressions"),
                                 "non_share": ("impressions_non", "impressions")}.items():  # fmt: skip
            e = ratio_estimate(f[num].to_numpy(float), f[den].to_numpy(float))
            row[name] = [round(e.value, 5), round(e.ci_low, 5), round(e.ci_high, 5)]
        out[arm] = row
    return out


def within_user_auc(users: np.ndarray, y: np.ndarray, p: np.ndarray) -> float:
    """Mean per-user click AUC over users with both a click and a non-click (how well a score orders
    one user's candidates: the part of AUC that personalisation, not item popularity, has to earn)."""
    df = pd.DataFrame({"u": users, "y": y, "p": p})
    g = df.groupby("u")["y"].agg(["sum", "count"])
    ok = g.index[(g["sum"] > 0) & (g["sum"] < g["count"])]
    sub = df[df["u"].isin(ok)]
    return float(np.mean([M.auc(f["y"].to_numpy(), f["p"].to_numpy()) for _, f in sub.groupby("u")]))


def ctr_ratio_ci(
    frame: pd.DataFrame, arm: str, ref: str, reps: int = 2000, seed: int = 0, mask: np.ndarray | None = None
) -> list[float]:
    """CTR of ``arm`` over CTR of ``ref`` (pooled clicks / impressions of each arm's users) and its 95 %
    percentile bootstrap CI (users resampled within each arm, independently)."""
    rng = np.random.default_rng(seed)
    out = []
    if mask is not None:
        frame = frame[mask]
    sums = []
    for a in (arm, ref):
        f = frame[(frame["arm"] == a) & (frame["impressions"] > 0)]
        c, n = f["clicks"].to_numpy(float), f["impressions"].to_numpy(float)
        idx = rng.integers(0, len(f), (reps, len(f)))
        sums.append((c.sum() / n.sum(), c[idx].sum(1) / n[idx].sum(1)))
    point = sums[0][0] / sums[1][0]
    boot = sums[0][1] / sums[1][1]
    out = [
        round(point, 4),
        round(float(np.quantile(boot, 0.025)), 4),
        round(float(np.quantile(boot, 0.975)), 4),
    ]
    return out


def by_susceptibility(
    frame: pd.DataFrame, world: World, arm: str, ref: str, buckets: int = 3
) -> dict[str, Any]:
    """CTR of ``arm`` over ``ref`` per susceptibility tercile of the users (hidden trait; diagnosis only)."""
    s = world.users.susceptibility[frame["user_id"].to_numpy()]
    edges = np.quantile(world.users.susceptibility, np.linspace(0, 1, buckets + 1))
    b = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, buckets - 1)
    out: dict[str, Any] = {}
    for k in range(buckets):
        m = b == k
        heavy = {a: float(frame.loc[m & (frame["arm"] == a), "impressions_heavy"].sum()
                          / max(frame.loc[m & (frame["arm"] == a), "impressions"].sum(), 1))
                 for a in (arm, ref)}  # fmt: skip
        out[f"s[{edges[k]:.2f},{edges[k + 1]:.2f}]"] = {
            "ctr_ratio": ctr_ratio_ci(frame, arm, ref, mask=m, reps=500),
            f"heavy_share_{arm}": round(heavy[arm], 4),
            f"heavy_share_{ref}": round(heavy[ref], 4),
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--log-days", type=int, default=3)
    ap.add_argument("--ab-days", type=int, default=1)
    ap.add_argument("--window-min", type=float, default=60.0, help="A/B: history fed every this many minutes")
    ap.add_argument("--live-items", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--variants", default="default,id_only")
    ap.add_argument("--ab-variants", default=None, help="variants served in the A/B (default: the first)")
    ap.add_argument(
        "--loop-days",
        type=int,
        default=0,
        help="In the loop: each served model learns from its own arm's traffic after every window for "
        "this many days (0 = the frozen A/B of --ab-days instead)",
    )
    ap.add_argument("--replay", type=int, default=20_000, help="loop: rows in each learner's replay buffer")
    ap.add_argument("--online-batch", type=int, default=2048, help="loop: minibatch rows of an online update")
    ap.add_argument("--max-steps", type=int, default=2, help="loop: most minibatch steps per update")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    if a.log_days < 2:
        raise SystemExit("--log-days must be at least 2 (train on all but the last, hold out the last)")

    cfg = IntentRankConfig()
    living = cfg.simulator.living.model_copy(
        update={"enabled": True, "window_min": a.window_min, "live_items": a.live_items}
    )
    sim_cfg = cfg.simulator.model_copy(update={"users": a.users, "days": a.log_days, "living": living})
    t_all = time.perf_counter()
    pool = build_catalogue(config=sim_cfg.catalogue, seed=a.seed)
    # scheduled for at least one day past the log, so that --ab-days 0 logs the same world as --ab-days 1
    cat = living_catalogue(pool, living, days=a.log_days + max(a.ab_days, a.loop_days, 1), seed=a.seed)
    world = World.create(cat, sim_cfg, seed=a.seed)
    split_ts = (a.log_days - 1) * DAY_S
    report: dict[str, Any] = {"args": {k: str(v) for k, v in vars(a).items()}}
    store_path = Path(tempfile.mkdtemp()) / "learner.duckdb"
    with torch_threads(a.threads), EventStore(store_path) as store:
        store.write_items(cat.items)
        rec = TruthRecorder(world, split_ts)
        logger = CallableScorerPolicy(rec, name="random", stochastic=True)
        t0 = time.perf_counter()
        with store.begin_run(
            seed=a.seed, policy="random", command="learner_intent log", shared_users=True
        ) as run:
            Simulator(world, {"random": logger}, seed=a.seed).run(StoreSink(run), days=a.log_days)
        log = load_events(store, runs=[run.run_id])
        base = RankerConfig()
        base = base.model_copy(update={"train": base.train.model_copy(
            update={"epochs": a.epochs, "progress": False, "seed": a.seed})})  # fmt: skip
        log = add_history_columns(log, base.features, base.labels.long_click_threshold_s)
        log = add_coec_columns(log, split_ts)
        split = time_split(log, split_ts)
        train, test, cold = split.train, split.held_out, split.cold
        train, test = add_diagnostic_columns(train, world), add_diagnostic_columns(test, world)
        p_true = rec.truth(test, sim_cfg.behaviour)
        exam = bh.examination(int(test["position"].max()) + 1, sim_cfg.behaviour)
        p_ex = p_true / exam[test["position"].to_numpy(np.int64)]
        test0 = test.assign(position=0)
        y = test["click"].to_numpy(float)
        users = test["user_id"].to_numpy()
        thr = base.labels.long_click_threshold_s
        long = (test["dwell_s"].to_numpy() >= thr) & ~test["bounce"].to_numpy(bool)
        report["log"] = {"events": len(log), "train": len(train), "held_out": len(test),
                         "held_out_cold_events": int(cold.sum()),
                         "cold_items": int(test.loc[cold, "item_id"].nunique()),
                         "items_scheduled": len(cat),
                         "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
        report["oracle"] = {"click_auc": round(M.auc(y, p_true), 4),
                            "within_user_auc": round(within_user_auc(users, y, p_true), 4),
                            "logloss": round(M.logloss(y, p_true), 4),
                            "cold_click_auc": round(M.auc(y[cold], p_true[cold]), 4),
                            "clicks_per_user_before": round(
                                float(test.groupby("user_id")["user_clicks"].min().mean()), 1),
                            "interest_r_within_user": interest_estimators(test),
                            "clickbait_r_by_item_impressions": clickbait_estimators(test)}  # fmt: skip
        print("log", json.dumps(report["log"]), "\noracle", json.dumps(report["oracle"]), flush=True)

        models: dict[str, Trainer] = {}
        for name in [v for v in a.variants.split(",") if v]:  # "" = the log and oracle figures only
            t1 = time.perf_counter()
            tr = Trainer(variant(name, base)).fit(train)
            pred = tr.predict(test)
            p = pred["p_click"].to_numpy()
            p0 = tr.predict(test0)["p_click"].to_numpy()
            clicked = y > 0
            report[name] = {
                "click_auc": round(M.auc(y, p), 4),
                "within_user_auc": round(within_user_auc(users, y, p), 4),
                "rerank_gain": round(rerank_gain(test, p_ex, p0, exam), 4),
                "click_logloss": round(M.logloss(y, p), 4),
                "cold_click_auc": round(M.auc(y[cold], p[cold]), 4),
                "long_click_auc_given_click": round(
                    M.auc(long[clicked], pred["time"].to_numpy()[clicked]), 4
                ),
                "time_vs_true_quality": time_quality_correlation(test, pred["time"].to_numpy(), cat.quality),
                "seconds": round(time.perf_counter() - t1, 1),
            }
            models[name] = tr
            print(name, json.dumps(report[name]), flush=True)

        if a.loop_days > 0:
            report["loop"] = run_in_loop(a, world, store, cat, models, base, thr)
        elif a.ab_days > 0:
            t1 = time.perf_counter()
            served = (a.ab_variants or a.variants.split(",")[0]).split(",")
            policies: dict[str, Any] = {}
            for v in served:
                for arm, formula in (("p_click", (1.0, 0.0, 0.0)), ("ctr_t08", (1.0, 0.8, 0.0))):
                    h = UserHistory(thr)
                    h.catch_up(store, cat.items)  # the log: users' and items' past
                    name = arm if len(served) == 1 else f"{v}:{arm}"
                    policies[name] = RankerPolicy(
                        models[v].model_, formula=RankingFormula(*formula), name=name, history=h
                    )
            policies["ctr_oracle"] = get_policy("ctr_oracle")
            policies["truth_formula"] = get_policy("truth_formula")
            res = run_loop(
                world, policies, store, None, seed=a.seed + 1, days=a.ab_days, first_day=a.log_days
            )
            frame = res.per_user()
            report["ab"] = ab_table(frame, list(policies))
            ab = report["ab"]
            report["ab_summary"] = {"seconds": round(time.perf_counter() - t1, 1)}
            for v in served:
                pre = "" if len(served) == 1 else f"{v}:"
                oracle_ctr = ab["ctr_oracle"]["ctr"][0]
                report["ab_summary"][v] = {
                    "ctr_p_click_over_oracle": round(ab[pre + "p_click"]["ctr"][0] / oracle_ctr, 3),
                    "heavy_share_ctr_t08": ab[pre + "ctr_t08"]["heavy_share"][0],
                    "heavy_share_truth_formula": ab["truth_formula"]["heavy_share"][0],
                }
            for arm, row in ab.items():
                print("ab", arm, json.dumps(row), flush=True)
            print("ab_summary", json.dumps(report["ab_summary"]), flush=True)
    report["seconds"] = round(time.perf_counter() - t_all, 1)
    print(f"total {report['seconds']}s", file=sys.stderr)
    if a.json:
        a.json.write_text(json.dumps(report, indent=2, default=float))


def run_in_loop(
    a: argparse.Namespace, world: World, store: EventStore, cat: Any, models: dict[str, Trainer],
    base: RankerConfig, thr: float,
) -> dict[str, Any]:  # fmt: skip
    """The served models learn in the loop (own-arm traffic, warm start after every window) for
    ``--loop-days``; per day: each arm's CTR / heavy share, the p_click arm's CTR over the CTR oracle's
    (bootstrap CI), the ctr·t^0.8 arm's heavy share over the true formula's."""
    t1 = time.perf_counter()
    served = (a.ab_variants or a.variants.split(",")[0]).split(",")
    # the served history: the log, then every window (each user is in one arm)
    shared = UserHistory(thr)
    shared.catch_up(store, cat.items)
    policies: dict[str, Any] = {}
    learners: dict[str, IncrementalTrainer] = {}
    for v in served:
        for arm, formula in (("p_click", (1.0, 0.0, 0.0)), ("ctr_t08", (1.0, 0.8, 0.0))):
            name = arm if len(served) == 1 else f"{v}:{arm}"
            tr = copy.deepcopy(models[v])
            tr.config = tr.config.model_copy(update={"train": tr.config.train.model_copy(
                update={"epochs": 1, "valid_fraction": 0.0, "batch_size": a.online_batch})})  # fmt: skip
            slot = ModelSlot(copy.deepcopy(tr.model_))
            policies[name] = RankerPolicy(slot, formula=RankingFormula(*formula), name=name, history=shared)
            own = UserHistory(thr)
            own.catch_up(store, cat.items)
            learners[name] = IncrementalTrainer(
                tr, slot=slot, items=cat.items, arm=name, replay_events=a.replay, watermark=store.watermark(),
                history=own, max_steps=a.max_steps,
            )  # fmt: skip
    policies["ctr_oracle"] = get_policy("ctr_oracle")
    policies["truth_formula"] = get_policy("truth_formula")
    n_windows = [0]

    def progress(w: Any) -> None:
        n_windows[0] += 1
        if n_windows[0] % 24 == 0:
            print(f"  loop day {w.day} window {w.window}: {time.perf_counter() - t1:.0f}s", file=sys.stderr)

    res = run_loop(world, policies, store, learners, seed=a.seed + 1, days=a.loop_days,
                   first_day=a.log_days, on_window=progress)  # fmt: skip
    out: dict[str, Any] = {"seconds": res.seconds | {"all": round(time.perf_counter() - t1, 1)},
                           "updates": {k: len(r) for k, r in res.updates.items()}, "per_day": {}}  # fmt: skip
    for d in range(a.log_days, a.log_days + a.loop_days):
        frame = res.day_frame(d)
        row: dict[str, Any] = {"arms": ab_table(frame, list(policies))}
        for v in served:
            pre = "" if len(served) == 1 else f"{v}:"
            row[v] = {
                "ctr_p_click_over_oracle": ctr_ratio_ci(frame, pre + "p_click", "ctr_oracle", seed=d),
                "heavy_share_ctr_t08": row["arms"][pre + "ctr_t08"]["heavy_share"],
                "heavy_share_truth_formula": row["arms"]["truth_formula"]["heavy_share"],
            }
        out["per_day"][d] = row
        print("loop day", d, json.dumps({v: row[v] for v in served}), flush=True)
    last = res.day_frame(a.log_days + a.loop_days - 1)
    whole = res.per_user()
    for v in served:
        pre = "" if len(served) == 1 else f"{v}:"
        out[f"{v}_last_day_by_susceptibility"] = by_susceptibility(last, world, pre + "p_click", "ctr_oracle")
        out[f"{v}_all_days"] = {
            "ctr_p_click_over_oracle": ctr_ratio_ci(whole, pre + "p_click", "ctr_oracle"),
            "arms": ab_table(whole, list(policies)),
        }
        print("loop", v, "last day by susceptibility", json.dumps(out[f"{v}_last_day_by_susceptibility"]))
        print("loop", v, "all days", json.dumps(out[f"{v}_all_days"]), flush=True)
    print("loop seconds", json.dumps(out["seconds"]), flush=True)
    return out


if __name__ == "__main__":
    main()
