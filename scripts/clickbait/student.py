"""Train the distilled ``student`` clickbait model from the shipped data and write it into the package.

    .venv/bin/python scripts/clickbait/student.py [--out DIR] [--teacher-weight A] [--epochs N]

Targets: ``A * teacher + (1 - A) * human`` on the training 80% of Webis-17 and Stop Clickbait (the teacher
is the shipped ensemble, its scores read from its cache); the held-out 20% is never trained on and is where
the printed metrics come from (student and teacher side by side, plus their agreement). CPU only, no
download: about 5 minutes on 1 thread of this machine. See docs/clickbait.md ("The student").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--out",
        type=Path,
        default=REPO / "src" / "intentrank" / "clickbait" / "model_student",
        help="model directory to write (default: the package's shipped student)",
    )
    ap.add_argument("--teacher-weight", type=float, default=None, help="share of the teacher in the target")
    ap.add_argument("--epochs", type=int, default=None, help="token-bag/conv epochs (default: config)")
    ap.add_argument("--hidden", type=int, default=None, help="token-bag hidden width (default: config)")
    ap.add_argument("--pooling", choices=["mean", "meanmax"], default=None, help="token-bag pooling")
    ap.add_argument("--members", default=None, help="student members: lexical,tokenconv")
    ap.add_argument("--conv-hidden", type=int, default=None, help="token-conv channels (default: config)")
    ap.add_argument("--conv-width", type=int, default=None, help="token-conv window (default: config)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the splits and the training")
    ap.add_argument("--json", type=Path, default=None, help="also write the metrics to this file")
    args = ap.parse_args()

    import numpy as np

    from intentrank.clickbait import ClickbaitConfig, load_default_scorer
    from intentrank.clickbait.student import train_student
    from intentrank.clickbait.training import evaluate, load_corpus

    update: dict[str, object] = {"seed": args.seed}
    for key, value in (
        ("student_teacher_weight", args.teacher_weight),
        ("tokenbag_epochs", args.epochs),
        ("tokenbag_hidden", args.hidden),
        ("tokenbag_pooling", args.pooling),
        ("student_members", args.members.split(",") if args.members else None),
        ("tokenconv_hidden", args.conv_hidden),
        ("tokenconv_width", args.conv_width),
        ("tokenconv_epochs", args.epochs),
    ):
        if value is not None:
            update[key] = value
    cfg = ClickbaitConfig(**update)
    corpus = load_corpus(cfg)
    teacher = load_default_scorer(cfg.model_copy(update={"model": "ensemble"}))
    t = time.time()
    student = train_student(cfg, corpus, teacher)
    train_s = time.time() - t
    student.save(args.out)

    teacher.use_cache = True  # the cache holds the teacher's own scores: same values, no MiniLM run
    held = np.concatenate([corpus.webis_split.test, len(corpus.webis_titles) + corpus.stop_split.test])
    titles = corpus.webis_titles + corpus.stop_titles
    test_titles = [titles[i] for i in held]
    s, tt = student.score(test_titles), teacher.score(test_titles)
    out = {
        "train_seconds": round(train_s, 1),
        "student": evaluate(student, cfg, corpus),
        "teacher (ensemble, via its cache)": evaluate(teacher, cfg, corpus),
        "held_out_pearson_student_teacher": float(np.corrcoef(s, tt)[0, 1]),
        "held_out_mean_abs_diff": float(np.mean(np.abs(s - tt))),
        "held_out_category_agreement": float(np.mean(student.categorize(s) == teacher.categorize(tt))),
        "out": str(args.out),
    }
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
