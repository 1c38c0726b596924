"""Export the clickbait training corpus for the other scripts (step 1 of training the shipped model).

Writes ``WORK/corpus.npz`` (targets, labels, source, split part, weights, lexical predictions from models
fit on the fit part and on the whole training 80%) and ``WORK/titles.json`` (the normalised titles).
CPU only, about half a minute. Next: ft.py (GPU) and assemble.py.
"""

from __future__ import annotations

import argparse
import json

import common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", **common.work_arg(", written here"))  # type: ignore[arg-type]
    args = ap.parse_args()

    import numpy as np

    from intentrank.clickbait.backends.lexical import LexicalBackend
    from intentrank.clickbait.config import ClickbaitConfig
    from intentrank.clickbait.text import normalise_titles
    from intentrank.clickbait.training import class_means, load_corpus

    cfg = ClickbaitConfig()
    c = load_corpus(cfg)
    lo, hi = class_means(c)
    nw, ns = len(c.webis_titles), len(c.stop_titles)
    titles = normalise_titles(c.webis_titles + c.stop_titles)
    y = np.concatenate([c.webis_mean, np.where(c.stop_label == 1, hi, lo)])
    label = np.concatenate([c.webis_label, c.stop_label]).astype(np.int8)
    src = np.concatenate([np.zeros(nw, np.int8), np.ones(ns, np.int8)])
    part = np.full(nw + ns, common.FIT, np.int8)
    for off, sp in ((0, c.webis_split), (nw, c.stop_split)):
        part[off + sp.val] = common.VAL
        part[off + sp.test] = common.TEST
    w = np.where(src == 1, cfg.stop_weight, 1.0)
    preds = {}
    nonempty = np.array([len(t) > 0 for t in titles])
    for name, rows in (("fit", part == common.FIT), ("train", part <= common.VAL)):
        b = LexicalBackend(alpha=cfg.lexical_alpha)
        idx = np.flatnonzero(rows & nonempty)
        b.fit([titles[i] for i in idx], y[idx], w[idx])
        preds[name] = b.predict(titles)
    args.work.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.work / "corpus.npz",
        y=y, label=label, src=src, part=part, w=w, lex_fit=preds["fit"], lex_train=preds["train"],
    )  # fmt: skip
    (args.work / "titles.json").write_text(json.dumps(titles))
    print(f"webis {nw} rows, stop {ns} rows, class means {lo:.4f} / {hi:.4f} -> {args.work}")


if __name__ == "__main__":
    main()
