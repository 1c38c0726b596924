"""Quality of a student → ensemble cascade on the held-out split, as a function of the routed share.

    .venv/bin/python scripts/clickbait/cascade.py [--shares 0.02,0.05,...] [--json FILE]

The student scores every title; titles whose student score lies within ``d`` of the decision threshold go
to the ensemble (teacher) instead. ``d`` per share is the quantile of |student − threshold| over the
training 80% (never the held-out titles). Teacher scores come from its score cache (its own values, no
MiniLM run), so this only measures quality; throughput is 1 / (1/S + share/T) with the bench's S and T.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


class Cascade:
    """score = teacher where |student − thr| < d, else student (each title on its own)."""

    def __init__(self, student: object, teacher: object, d: float, thr: float) -> None:
        self.student, self.teacher, self.d, self.thr = student, teacher, d, thr
        self.routed = 0.0

    def score(self, titles: list[str]) -> np.ndarray:
        s = self.student.score(titles)  # type: ignore[attr-defined]
        m = np.abs(s - self.thr) < self.d
        self.routed = float(m.mean())
        if m.any():
            s[m] = self.teacher.score([t for t, k in zip(titles, m, strict=True) if k])  # type: ignore[attr-defined]
        return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shares", default="0,0.02,0.05,0.1,0.2,0.35,0.5", help="routed shares to try")
    ap.add_argument("--student", default="student", help="shipped model name or a model directory")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from intentrank.clickbait import ClickbaitConfig, ClickbaitScorer, load_default_scorer
    from intentrank.clickbait.training import evaluate, load_corpus, training_set

    cfg = ClickbaitConfig()
    corpus = load_corpus(cfg)
    student = (
        load_default_scorer(cfg.model_copy(update={"model": args.student}))
        if args.student in ("student", "ensemble")
        else ClickbaitScorer.load(Path(args.student), cfg)
    )
    teacher = load_default_scorer(cfg.model_copy(update={"model": "ensemble"}))
    train = training_set(corpus, cfg, "train")
    dist = np.abs(student.score(train.titles) - cfg.decision_threshold)
    rows = []
    for share in (float(x) for x in args.shares.split(",")):
        d = float(np.quantile(dist, share)) if share > 0 else 0.0
        cas = Cascade(student, teacher, d, cfg.decision_threshold)
        m = evaluate(cas, cfg, corpus)
        rows.append({"share_train": share, "d": round(d, 4), "routed_stop_heldout": cas.routed, **m})
        print(json.dumps(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
