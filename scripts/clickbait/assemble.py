"""Assemble the shipped default clickbait model (step 3): lexical + fine-tuned int8 ONNX, stacked.

The lexical member is fit here on the training 80% (the same rows prep.py used); the fine-tuned member
is ft.py's int8 ONNX (fit on a GPU on the same rows); the stack weights are ft.py's, fit on the
validation split. Reads ``WORK`` (prep.py) and ``FT_DIR`` (ft.py's ft_res.json, ft_preds.npz,
model_int8.part0/1); replaces ``--model-dir`` (default: the shipped model directory) and fills its score
cache with the device's predictions. Checks that the lexical member matches prep.py's and that the
local int8 predictions match the device's on a sample of titles.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", **common.work_arg())  # type: ignore[arg-type]
    ap.add_argument("--ft-dir", type=Path, default=None, help="ft.py's output folder (default: WORK/ft)")
    ap.add_argument(
        "--model-dir", type=Path, default=None, help="model directory to (re)write (default: the shipped one)"
    )
    args = ap.parse_args()

    import numpy as np

    from intentrank.clickbait.backends.ensemble import EnsembleBackend
    from intentrank.clickbait.backends.finetuned import FinetunedBackend
    from intentrank.clickbait.backends.lexical import LexicalBackend
    from intentrank.clickbait.config import ClickbaitConfig
    from intentrank.clickbait.scorer import DEFAULT_MODEL_DIR, ClickbaitScorer, title_keys

    d = common.Prepared.load(args.work)
    ft_dir = args.ft_dir or args.work / "ft"
    model_dir = args.model_dir or DEFAULT_MODEL_DIR
    titles = d.titles
    ft = np.load(ft_dir / "ft_preds.npz")
    res = json.loads((ft_dir / "ft_res.json").read_text())
    coef = np.array(res["ens_w"])
    onnx = ft_dir / "finetuned.onnx"
    onnx.write_bytes((ft_dir / "model_int8.part0").read_bytes() + (ft_dir / "model_int8.part1").read_bytes())
    keep = np.array([len(t) > 0 for t in titles])
    idx = np.flatnonzero((d.part <= common.VAL) & keep)
    lex = LexicalBackend(alpha=1.0).fit([titles[i] for i in idx], d.y[idx], d.w[idx])
    lp = lex.predict(titles)
    print("lexical matches prep.py's:", np.abs(lp - d.lex_train).max())
    f = FinetunedBackend(epochs=4, lr=5e-5)
    f.model_file = onnx
    ens = EnsembleBackend([lex, f], coef, 0.2, 0)
    sc = ClickbaitScorer(ens, ClickbaitConfig())
    sc.fitted = True
    sc.info = {
        "trained_on": "80% of webis-clickbait-17 + 80% of stop-clickbait (seed 0)",
        "stop_weight": 0.5,
        "finetuned": (
            "all-MiniLM-L6-v2, 4 epochs, lr 5e-5, batch 32, bf16 on one H100, int8 dynamic quantisation"
        ),
        "stack_weights_fit_on": "validation split (20% of the training 80%) with members fit on the rest",
    }
    vals = coef[0] + coef[1] * lp + coef[2] * ft["train_int8"].astype(np.float64)
    tk = np.array(titles, dtype=object)[keep].tolist()
    u, i = np.unique(title_keys(tk), return_index=True)
    sc.set_cache(u, vals[keep][i])
    if model_dir.exists():
        shutil.rmtree(model_dir)
    sc.save(model_dir)
    # the fine-tuned member run here vs the device's numbers, on a sample of titles
    chk = np.arange(0, len(titles), 997)
    chk = chk[keep[chk]]
    loc = f.predict([titles[i] for i in chk])
    print("finetuned local vs device max abs diff:", np.abs(loc - ft["train_int8"][chk]).max(), len(chk))


if __name__ == "__main__":
    main()
