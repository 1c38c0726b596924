"""Model selection for the student on the validation split only: fit candidate members on the fit part
of the (distilled) training 80%, predict the validation part, report each member and least-squares
stacks of them (Webis AUC / MSE against the human labels, Stop accuracy at 0.5 and Stop AUC).

    .venv/bin/python scripts/clickbait/student_members.py --members lexical,tokenbag,tokenconv
        [--set tokenconv_hidden=128 ...] [--cache runs/clickbait-training/student_val]

Validation predictions are cached per member and settings, so stacks of earlier runs cost nothing.
The held-out 20% is not touched.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--members", default="lexical,tokenbag,tokenconv")
    ap.add_argument("--set", action="append", default=[], help="config override key=value (JSON value)")
    ap.add_argument("--cache", type=Path, default=REPO / "runs" / "clickbait-training" / "student_val")
    args = ap.parse_args()

    from intentrank.clickbait import ClickbaitConfig, load_default_scorer
    from intentrank.clickbait.student import StudentBackend, distilled_targets
    from intentrank.clickbait.training import auc, load_corpus, training_set

    update = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    cfg = ClickbaitConfig(**update)
    corpus = load_corpus(cfg)
    teacher = load_default_scorer(cfg.model_copy(update={"model": "ensemble"}))
    titles, y, w, src, labels = distilled_targets(corpus, cfg, teacher)
    human = training_set(corpus, cfg).y
    n = len(titles)
    perm = np.random.default_rng(cfg.seed).permutation(n)
    val = np.sort(perm[: max(1, round(n * cfg.val_fraction))])
    fit = np.sort(perm[len(val) :])
    args.cache.mkdir(parents=True, exist_ok=True)
    preds: dict[str, np.ndarray] = {}
    for name in args.members.split(","):
        key = hashlib.sha256(json.dumps([name, update], sort_keys=True).encode()).hexdigest()[:10]
        path = args.cache / f"{name}-{key}.npy"
        if not path.exists():
            one = cfg.model_copy(update={"student_members": [name]})
            member = StudentBackend.from_config(one).members[0]
            member.fit([titles[i] for i in fit], y[fit], w[fit])
            np.save(path, member.predict([titles[i] for i in val]))
        preds[name] = np.load(path)
    sv, hv, lv = src[val], human[val], labels[val]
    wr = ~sv
    out = []
    names = list(preds)
    for r in range(1, len(names) + 1):
        for combo in itertools.combinations(names, r):
            P = np.column_stack([np.ones(len(val))] + [preds[c] for c in combo])
            s = np.sqrt(w[val])
            coef = np.linalg.lstsq(P * s[:, None], y[val] * s, rcond=None)[0]
            p = np.clip(P @ coef, 0, 1)
            out.append({
                "members": "+".join(combo),
                "webis_auc": round(auc(lv[wr].astype(int), p[wr]), 4),
                "webis_mse": round(float(np.mean((p[wr] - hv[wr]) ** 2)), 4),
                "stop_acc_0.5": round(float(np.mean((p[sv] >= 0.5) == lv[sv])), 4),
                "stop_auc": round(auc(lv[sv].astype(int), p[sv]), 4),
            })  # fmt: skip
            print(json.dumps(out[-1]), flush=True)
    print(json.dumps({"settings": update, "val_rows": len(val)}))


if __name__ == "__main__":
    main()
