"""What the cheaper ways of ranking 1,000 candidates cost in quality, next to what they cost in time.

1. Log: ``--users`` simulated users x ``--days`` days under the uniformly random policy (the shipped
   catalogue).
2. Train the default ranker on every day but the last (``--epochs``), and each smaller architecture of
   ``--small`` on the same events (same settings); the serving history is fed with those days.
3. Held out (the last day), per logged impression: click AUC of ``p_click`` (and NDCG@20 of the formula score
   within each logged slate against click + conversion; ``ndcg20_minus_full``: each variant's mean
   difference to the full model over the same slates, with a 95 % CI) for
   - ``full``: the model on every candidate (the exact fast path, split forward);
   - ``prerank_M``: two-stage scoring (``scoring.prerank = M``): the slate's items among 1,000 candidates
     (the logged slate + random live items), the M best by the cached user-independent score get the
     model's per-user scores, the rest keep the user-independent ones;
   - ``prior``: the user-independent score alone;
   - each small architecture (its own model on every candidate).
4. Agreement with the full model on ``--requests`` requests of 1,000 random candidates (held-out users at
   held-out times): overlap of the top-20 by the formula with the full model's top-20 and the share of the
   full model's top-20 formula value the slate gets (``value``), through the service's own
   ``Scorer`` (two-stage) path.
5. Rank time (thread CPU ms per 1,000 candidates, median and p99, one torch thread) of each variant.

Usage: ``PYTHONPATH=src .venv/bin/python bench/service_rank_quality.py [--users 3000] [--days 2]
[--epochs 1] [--prerank 100,200,300] [--requests 200]``; prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch
from sklearn.metrics import ndcg_score, roc_auc_score

from intentrank.config import IntentRankConfig
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.trainer import Trainer
from intentrank.service.retrieval import ItemSnapshot
from intentrank.serving.config import ScoringConfig
from intentrank.serving.fast import PreparedItems
from intentrank.serving.pipeline import Scorer, ServingHistory, UserSignals
from intentrank.serving.ranker import RankerPolicy
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import DAY_S, build_catalogue
from intentrank.simulator.sinks import CollectSink

#: Smaller architectures (``model`` overrides of the default ranker config).
SMALL = {
    "small": {"mlp_hidden": [64, 32], "tower_hidden": [16], "cross": {"layers": 2, "rank": 16, "experts": 2}},
    "tiny": {"mlp_hidden": [32], "tower_hidden": [8], "cross": {"layers": 1, "rank": 8, "experts": 2}},
}


def _ms(fn, n: int = 60) -> dict[str, float]:  # type: ignore[no-untyped-def]
    for _ in range(10):
        fn()
    t = []
    for _ in range(n):
        c = time.thread_time()
        fn()
        t.append((time.thread_time() - c) * 1e3)
    return {"p50_ms": round(float(np.median(t)), 2), "p99_ms": round(float(np.percentile(t, 99)), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=2, help="Log days: train on all but the last (≥ 2).")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--prerank", default="100,200,300")
    ap.add_argument("--small", default="small,tiny", help=f"Of {sorted(SMALL)} (empty: none).")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.days < 2:
        ap.error("--days must be at least 2 (training days and a held-out day)")
    torch.set_num_threads(1)
    cfg = IntentRankConfig()
    cat = build_catalogue(config=cfg.simulator.catalogue, seed=args.seed)
    items = cat.items
    sink = CollectSink()
    sim = cfg.simulator.model_copy(update={"users": args.users, "days": args.days})
    simulate("random", sim, seed=args.seed, catalogue=cat, sink=sink)
    ev = sink.table().to_pandas()
    day = (ev["ts"] // DAY_S).astype(int)
    train, test = ev[day < day.max()], ev[day == day.max()].reset_index(drop=True)
    ranker_cfg = cfg.ranker.model_copy(
        update={"train": cfg.ranker.train.model_copy(update={"epochs": args.epochs, "progress": False})}
    )
    archs = {"full": ranker_cfg}
    for name in [s for s in args.small.split(",") if s]:
        model_cfg = ranker_cfg.model.model_validate({**ranker_cfg.model.model_dump(), **SMALL[name]})
        archs[name] = ranker_cfg.model_copy(update={"model": model_cfg})
    t0 = time.perf_counter()
    models = {k: Trainer(c).fit(train, items).model_.eval() for k, c in archs.items()}
    train_s = time.perf_counter() - t0
    history = ServingHistory(cfg.ranker.labels.long_click_threshold_s)
    history.update(train.merge(items[["item_id", "topic"]], on="item_id"))
    snap = ItemSnapshot.build(items, np.zeros(len(items), bool))
    preps = {
        k: PreparedItems(m, RankerPolicy(m, history=history).candidate_features(snap, m), history)
        for k, m in models.items()
    }
    formula = RankingFormula.from_config(cfg.ranker.formula)
    ms = [int(m) for m in args.prerank.split(",") if m]
    rng = np.random.default_rng(args.seed + 1)
    n_items = len(items)

    # 3. held-out impressions, slate by slate
    scores: dict[str, list[np.ndarray]] = {k: [] for k in [*models, "prior", *(f"prerank_{m}" for m in ms)]}
    fscores: dict[str, list[np.ndarray]] = {k: [] for k in scores}
    prior = preps["full"].prior()
    prior_f = np.asarray(formula.score(prior["p_click"], prior["time"], prior["p_conv"]))
    ndcg: dict[str, list[float]] = {k: [] for k in scores}
    labels: list[np.ndarray] = []
    for _, g in test.groupby("slate_id", sort=False):
        slate = g["item_id"].to_numpy(np.int64)
        u, ts, si = int(g["user_id"].iloc[0]), float(g["ts"].iloc[0]), int(g["slate_index"].iloc[0])
        d = int(ts // DAY_S)
        labels.append(g["click"].to_numpy())
        rel = g["click"].to_numpy(float) + g["conversion"].to_numpy(float)
        per: dict[str, dict[str, np.ndarray]] = {k: p.predict(u, slate, si, ts, d) for k, p in preps.items()}
        per["prior"] = {k: v[slate] for k, v in prior.items()}
        others = rng.choice(n_items, 1000 - len(slate), replace=False)
        cand = np.r_[slate, others]
        for m in ms:  # Scorer.predict's first stage (no personalised sources): the best m by the prior
            sel = np.zeros(len(cand), bool)
            sel[np.argpartition(-prior_f[cand], m - 1)[:m]] = True
            chosen = sel[: len(slate)]
            per[f"prerank_{m}"] = {k: np.where(chosen, per["full"][k], per["prior"][k]) for k in prior}
        for k, p in per.items():
            f = np.asarray(formula.score(p["p_click"], p["time"], p["p_conv"]))
            scores[k].append(p["p_click"])
            fscores[k].append(f)
            if rel.sum() > 0 and len(slate) > 1:
                ndcg[k].append(float(ndcg_score(rel[None], f[None], k=20)))
    y = np.concatenate(labels)
    # paired by slate (the same slates for every variant): mean NDCG difference to the full model, 95 % CI
    base = np.asarray(ndcg["full"])
    ndcg_diff = {}
    for k, v in ndcg.items():
        if k == "full":
            continue
        d = np.asarray(v) - base
        half = 1.96 * float(d.std(ddof=1)) / np.sqrt(len(d))
        ndcg_diff[k] = {
            "mean": round(float(d.mean()), 4),
            "ci95": [round(float(d.mean()) - half, 4), round(float(d.mean()) + half, 4)],
            "relative": round(float(d.mean() / base.mean()), 4),
        }
    heldout = {
        k: {
            "click_auc": round(float(roc_auc_score(y, np.concatenate(v))), 4),
            "ndcg20_click_conv": round(float(np.mean(ndcg[k])), 4),
        }
        for k, v in scores.items()
    }

    # 4. agreement with the full model on 1,000 random candidates, through the service's Scorer
    pol = RankerPolicy(models["full"], history=history)
    users = test["user_id"].unique()
    reqs = []
    for _ in range(args.requests):
        ts = float(rng.uniform(test["ts"].min(), test["ts"].max()))
        user = UserSignals(int(rng.choice(users)), 0, ts, int(ts // DAY_S), np.empty(0, np.int64))
        reqs.append((user, rng.choice(n_items, 1000, replace=False)))
    exact = Scorer(pol)

    def top(p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        f = np.asarray(formula.score(p["p_click"], p["time"], p["p_conv"]))
        return np.argsort(-f)[:20], f

    full_top = []
    for user, cand in reqs:
        full_top.append(top(exact.predict(snap, models["full"], user, cand, formula=formula)))
    agree: dict[str, dict[str, float]] = {}
    variants: dict[str, tuple[Scorer, str]] = {f"prerank_{m}": (Scorer(pol, ScoringConfig(prerank=m)), "full")
                                                for m in ms}  # fmt: skip
    variants.update({k: (exact, k) for k in models if k != "full"})
    for name, (scorer, mk) in variants.items():
        overlap, value = [], []
        for (user, cand), (t_full, f_full) in zip(reqs, full_top, strict=True):
            t, _ = top(scorer.predict(snap, models[mk], user, cand, formula=formula))
            overlap.append(len(np.intersect1d(t, t_full)) / 20)
            value.append(f_full[t].sum() / f_full[t_full].sum())
        agree[name] = {"top20_overlap": round(float(np.mean(overlap)), 3),
                       "value": round(float(np.mean(value)), 4)}  # fmt: skip

    # 5. rank time per 1,000 candidates
    user, cand = reqs[0]
    timing = {
        name: _ms(lambda s=scorer, k=mk: s.predict(snap, models[k], user, cand, formula=formula))
        for name, (scorer, mk) in {"full": (exact, "full"), **variants}.items()
    }
    plain = PreparedItems(models["full"], preps["full"].rows, history, split=False)
    timing["full_unsplit"] = _ms(lambda: plain.predict(user.user_id, cand, 0, user.ts, user.day))
    out = {
        "users": args.users,
        "days": args.days,
        "epochs": args.epochs,
        "train_impressions": len(train),
        "heldout_impressions": len(test),
        "heldout_click_rate": round(float(y.mean()), 4),
        "train_s": round(train_s, 1),
        "heldout": heldout,
        "ndcg20_minus_full": ndcg_diff,
        "seed": args.seed,
        "agreement_with_full": agree,
        "rank_cpu_per_1000": timing,
        "load": os.getloadavg(),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
