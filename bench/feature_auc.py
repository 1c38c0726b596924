"""Held-out click AUC of the ranker's feature specs, and whether predicted time tracks hidden quality.

1. Log: ``--users`` users x ``--days`` days under the uniformly random policy on the main job's
   (static) catalogue: the main job's logging phase at small scale. The last day is held out.
2. Train the same ranker (default model and training settings, ``--epochs``) under three feature specs:
   ``new`` (the default: ids, topic, source, position, slate index, hour, item age, length, title
   n-grams, user history; no clickbait score), ``old`` (before: ids, context, length, item age and the
   clickbait score as a plain input), ``old_no_c`` (``old`` without the clickbait score) and two
   ablations of ``new``: ``new_no_history``, ``new_no_text``. ``--specs`` picks some.
3. Report per spec: held-out click AUC and log-loss, and, per clickbait category of the public score,
   the correlation (Pearson and Spearman over items shown on the held-out day) between the item's mean
   predicted log time spent and its hidden true quality (``Catalogue.quality``).

Usage: ``.venv/bin/python bench/feature_auc.py [--users 3000] [--days 2] [--epochs 2] [--out x.json]``
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from intentrank.clickbait import CATEGORIES, categorize
from intentrank.ranking.config import HISTORY_COLUMNS, DenseFeature, FeatureSpecConfig, RankerConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.history import add_history_columns
from intentrank.ranking.trainer import Trainer
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import build_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.sinks import CollectSink


def specs() -> dict[str, FeatureSpecConfig]:
    new = RankerConfig().features
    old_dense = [
        DenseFeature(name="clickbait_score"),
        DenseFeature(name="length", transform="log1p", scale=0.3),
        DenseFeature(name="item_age_h", transform="log1p", scale=0.2),
    ]
    old = FeatureSpecConfig(categorical=new.categorical, dense=old_dense)
    old_no_c = FeatureSpecConfig(categorical=new.categorical, dense=old_dense[1:])
    no_history = new.model_copy(update={"dense": [f for f in new.dense if f.name not in HISTORY_COLUMNS]})
    no_text = new.model_copy(update={"text": []})
    return {
        "new": new, "old": old, "old_no_c": old_no_c, "new_no_history": no_history, "new_no_text": no_text,
    }  # fmt: skip


def quality_correlation(test: pd.DataFrame, pred_time: np.ndarray, quality: np.ndarray) -> dict[str, Any]:
    per_item = pd.DataFrame({"item_id": test["item_id"].to_numpy(), "lt": np.log(pred_time)})
    per_item = per_item.groupby("item_id")["lt"].mean()
    ids = per_item.index.to_numpy()
    score = test.drop_duplicates("item_id").set_index("item_id").loc[ids, "clickbait_score"]
    cat = categorize(score.to_numpy())
    out: dict[str, Any] = {}
    for k, name in enumerate(CATEGORIES):
        m = cat == k
        if m.sum() < 10:
            continue
        x, q = per_item.to_numpy()[m], quality[ids[m]]
        out[name] = {"items": int(m.sum()), "pearson": round(float(np.corrcoef(x, q)[0, 1]), 3),
                     "spearman": round(float(stats.spearmanr(x, q).statistic), 3)}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--specs", default=None, help="comma-separated spec names (default: all)")
    a = ap.parse_args()
    t0 = time.perf_counter()
    cat = build_catalogue(seed=a.seed)
    sink = CollectSink()
    simulate("random", SimulatorConfig(users=a.users, days=a.days), seed=a.seed, catalogue=cat, sink=sink)
    events = load_events(sink.table().to_pandas(), cat.items)
    # history point in time over the whole log, then split: held-out rows see their users' earlier days
    events = add_history_columns(events, RankerConfig().features)
    last = int(events["day"].max())
    train, test = events[events["day"] < last], events[events["day"] == last]
    print(f"log: {len(events):,} events ({len(train):,} train, {len(test):,} held out), "
          f"{time.perf_counter() - t0:.0f}s; held-out rows with any past click: "
          f"{(test['user_clicks'] > 0).mean():.1%}, "
          f"training rows: {(train['user_clicks'] > 0).mean():.1%}")  # fmt: skip
    report: dict[str, Any] = {"users": a.users, "days": a.days, "epochs": a.epochs,
                              "train_events": len(train), "held_out_events": len(test)}  # fmt: skip
    base = RankerConfig()
    chosen = specs()
    if a.specs:
        chosen = {k: chosen[k] for k in a.specs.split(",")}
    for name, spec in chosen.items():
        t1 = time.perf_counter()
        cfg = base.model_copy(update={"features": spec, "train": base.train.model_copy(
            update={"epochs": a.epochs, "progress": False, "seed": a.seed})})  # fmt: skip
        tr = Trainer(cfg).fit(train)
        ev = tr.evaluate(test)
        pred = tr.predict(test)
        report[name] = {
            "click_auc": round(ev["click"]["auc"], 4),
            "click_logloss": round(ev["click"]["logloss"], 4),
            "long_click_auc_given_click": round(ev["dwell"]["auc_long_click"], 4),
            "time_vs_true_quality": quality_correlation(test, pred["time"].to_numpy(), cat.quality),
            "seconds": round(time.perf_counter() - t1, 1),
        }
        print(name, json.dumps(report[name]), flush=True)
    if a.out:
        with open(a.out, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
