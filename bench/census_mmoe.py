"""Census-Income MMoE benchmark: test AUC of MMoE vs logistic regression on a fixed 50/50 split.

Targets (issue 4): income AUC ≥ 0.945, never-married AUC ≥ 0.994 (the MMoE paper: 0.9410 / 0.9926
on its own split). Usage: ``.venv/bin/python bench/census_mmoe.py [--epochs N] [--threads T]``.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from intentrank.ranking.census_benchmark import run_census_benchmark


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=None, help="subsample the file (default: all rows)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    res = run_census_benchmark(n_rows=args.rows, epochs=args.epochs, seed=args.seed)
    out = res.as_dict() | {"seconds": round(time.perf_counter() - t0, 1), "threads": args.threads}
    print(json.dumps(out, indent=2))
    print(f"{'task':<16}{'MMoE AUC':>10}{'LogReg AUC':>12}{'target':>8}")
    for t, target in (("income", 0.945), ("never_married", 0.994)):
        print(f"{t:<16}{res.model_auc[t]:>10.4f}{res.logreg_auc[t]:>12.4f}{target:>8.3f}")


if __name__ == "__main__":
    main()
