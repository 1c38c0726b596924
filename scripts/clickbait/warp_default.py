"""Add the monotone warp to the shipped default ensemble (members and stack weights unchanged).

Inputs (from prep.py and ft.py): the validation split's member predictions from models fit on the fit
part only (lexical ``lex_fit``, fine-tuned int8 ``fit_int8``), i.e. the same out-of-fold predictions the
shipped stack weights were fit on. The warp's pin is chosen on Stop Clickbait's validation rows and its
values are fit to Webis-17 validation ``truth_mean`` (``EnsembleBackend.fit_warp``). Nothing from the
held-out 20% is used. The score cache is dropped; rebuild it with rebuild_cache.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import common


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", **common.work_arg())  # type: ignore[arg-type]
    ap.add_argument("--ft-dir", type=Path, default=None, help="ft.py's output folder (default: WORK/ft)")
    ap.add_argument(
        "--model-dir", type=Path, default=None, help="model directory to update (default: the shipped one)"
    )
    args = ap.parse_args()

    import numpy as np

    from intentrank.clickbait.scorer import DEFAULT_MODEL_DIR, ClickbaitScorer

    d = common.Prepared.load(args.work)
    ft = np.load((args.ft_dir or args.work / "ft") / "ft_preds.npz")
    model_dir = args.model_dir or DEFAULT_MODEL_DIR
    sc = ClickbaitScorer.load(model_dir)
    ens = sc.backend
    c = ens.coef
    raw = c[0] + c[1] * d.lex_fit + c[2] * ft["fit_int8"].astype(np.float64)
    v = d.part == common.VAL
    ens.use_warp, ens.threshold = True, 0.5
    ens.warp = ens.fit_warp(raw[v], d.y[v], d.w[v], d.src[v] == 1)
    print("validation, no warp:", d.metrics(raw, common.VAL))
    print("validation, warp:   ", d.metrics(ens.warp(raw), common.VAL))
    print("warp:", json.dumps(ens.warp.to_dict()))
    sc.info["warp"] = "monotone warp fit on the validation split (scripts/clickbait/warp_default.py)"
    sc.cache = None  # stale: rebuild_cache.py recomputes it with the warp
    sc.save(model_dir)


if __name__ == "__main__":
    main()
