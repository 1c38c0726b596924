"""Calibration of ``intentrank.stats`` on synthetic per-user data with known truth (no simulator).

Users are drawn with realistic shapes (negative-binomial impressions, binomial clicks with per-user CTR
heterogeneity, lognormal time spent, zero-inflated conversions, mostly-zero heavy-clickbait impressions,
a correlated pre-period; see :mod:`intentrank.stats.calibration`). Reports, per metric (means, ratio
metrics and CUPED versions):

* the false-positive rate over ``--runs`` A/A experiments of a control and two A/A copies (2 × runs
  comparisons per metric) at α = 0.05, and the family-wise rate over all metrics × both copies: raw,
  Holm, Benjamini–Hochberg;
* over ``--runs`` A/B experiments with +5 % on clicks (so CTR) and on time spent: the coverage of the
  95 % interval of the relative change, the rejection rate (power, or the false-positive rate for
  metrics the treatment leaves alone), the mean interval width, the CUPED variance ratio and the MDE.

Run: ``PYTHONPATH=src .venv/bin/python bench/stats_calibration.py`` (about 1–2 minutes on 2 busy cores).
"""

from __future__ import annotations

import argparse
import json
import os
import time

from intentrank.stats.calibration import calibrate

FPR_BOUNDS = (0.02, 0.08)
MIN_COVERAGE = 0.90


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20_000, help="users per experiment")
    ap.add_argument("--runs", type=int, default=250, help="A/A experiments, and as many A/B experiments")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--effect", type=float, default=0.05, help="relative effect on clicks and time spent")
    ap.add_argument("--json", default=None, help="also write the table and rates to this JSON file")
    args = ap.parse_args()

    t0 = time.perf_counter()
    m = 1 + args.effect
    res = calibrate(args.users, args.runs, args.seed, m_clicks=m, m_time=m)
    elapsed = time.perf_counter() - t0

    tab = res.table
    tab["fpr_ok"] = tab["fpr"].between(*FPR_BOUNDS)
    tab["coverage_ok"] = tab["coverage"] >= MIN_COVERAGE
    print(
        f"{args.runs} A/A experiments (control + 2 A/A copies) and {args.runs} A/B experiments "
        f"(+{args.effect:.0%} clicks and time spent), {args.users:,} users each, alpha = 0.05, "
        f"seed {args.seed}"
    )
    fmt = {
        "fpr": "{:.3f}".format,
        "true_effect": "{:+.0%}".format,
        "coverage": "{:.3f}".format,
        "rejection": "{:.3f}".format,
        "mean_rel_ci_width": "{:.2%}".format,
        "variance_ratio": lambda v: "-" if v != v else f"{v:.3f}",
        "mde_rel": "{:.2%}".format,
    }
    print(tab.to_string(index=False, formatters=fmt))
    print(
        "A/A family-wise false-positive rate over {} metrics x 2 copies: raw {raw:.3f}, Holm {holm:.3f}, "
        "BH {bh:.3f}".format(len(tab), **res.family)
    )
    ok = bool(tab["fpr_ok"].all() and tab["coverage_ok"].all())
    verdict = "PASS" if ok else "FAIL"
    print(f"checks: every FPR in {list(FPR_BOUNDS)} and every coverage >= {MIN_COVERAGE}: {verdict}")
    print(f"elapsed {elapsed:.0f} s, load average {os.getloadavg()[0]:.1f}")
    if args.json:
        with open(args.json, "w") as f:
            out = {"settings": res.settings, "family": res.family, "table": tab.to_dict(orient="records")}
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
