"""Off-policy evaluation on the shipped Open Bandit Dataset sample: is the estimate honest?

Estimates the Bernoulli Thompson Sampling policy's CTR from the uniform-random log (IPS and SNIPS,
percentile bootstrap CIs over the 10,000 logged rows) and prints it beside the CTR observed when that
policy served (the bts log), as a Markdown table, then one JSON line. The bts policy's per-position
item distribution is estimated from the bts log (see ``intentrank.ope.open_bandit``).

Run: ``.venv/bin/python bench/ope_open_bandit.py`` (a few seconds).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from intentrank.data.open_bandit import load_open_bandit
from intentrank.ope.open_bandit import evaluate_bts_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    args = parser.parse_args()
    res = evaluate_bts_policy(
        load_open_bandit("random"), load_open_bandit("bts"), args.n_bootstrap, args.alpha, args.seed
    )
    print(res.table())
    print(json.dumps({k: asdict(v) for k, v in vars(res).items()}))
    for e in (res.ips, res.snips):
        verdict = "covers" if e.covers(res.observed_bts.value) else "does NOT cover"
        print(f"{e.estimator}: CI {verdict} the observed bts CTR {res.observed_bts.value:.5f}")


if __name__ == "__main__":
    main()
