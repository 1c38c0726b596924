"""Off-policy evaluation on the Open Bandit Dataset: the Bernoulli-TS policy's CTR from the random log.

The dataset has two logs of the same platform (ZOZOTOWN) under two policies, so OPE can be checked
against ground truth: estimate the Bernoulli Thompson Sampling (bts) policy's CTR from the uniform-random
log, and compare it with the CTR observed when bts actually served (the bts log).

Each logged row is treated as one round of a contextual bandit whose context is the position (1–3) and
whose action is the item (80 items). The random logger's propensity is 1/80 at every position. The
bts policy is context-free, so its action distribution :math:`\\pi_{bts}(a \\mid k)` at position
:math:`k` is estimated by the item frequencies at that position in the bts log. The estimate then treats
that distribution as known; its own sampling noise (10,000 bts rows over 240 item-positions) is not in
the interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from intentrank.errors import DataError
from intentrank.ope.base import OPEEstimate, bootstrap_estimate
from intentrank.ope.estimators import IPS, SNIPS, OPEData

_COLUMNS = ("item_id", "position", "click", "propensity_score")


def _check_log(log: pd.DataFrame, name: str) -> None:
    missing = [c for c in _COLUMNS if c not in log.columns]
    if missing:
        raise DataError(f"{name} log: missing column(s) {', '.join(missing)}")
    if log.empty:
        raise DataError(f"{name} log: no rows")


def action_distribution(log: pd.DataFrame) -> pd.DataFrame:
    """Empirical :math:`\\pi(a \\mid k)`: rows are positions, columns item ids, each row sums to 1."""
    _check_log(log, "policy")
    counts = pd.crosstab(log["position"], log["item_id"])
    return counts.div(counts.sum(axis=1), axis=0)


@dataclass(frozen=True)
class OpenBanditResult:
    """The bts policy's CTR estimated off-policy from the random log, and its observed on-policy CTR."""

    ips: OPEEstimate
    snips: OPEEstimate
    observed_bts: OPEEstimate
    observed_random: OPEEstimate

    def table(self) -> str:
        """A Markdown table of the four figures with their 95 % (or configured) intervals."""
        rows = [
            ("IPS (bts from random log)", self.ips),
            ("SNIPS (bts from random log)", self.snips),
            ("observed CTR, bts log", self.observed_bts),
            ("observed CTR, random log", self.observed_random),
        ]
        lines = ["| figure | CTR | CI | bootstrap SE | n |", "|---|---|---|---|---|"]
        for label, e in rows:
            lines.append(
                f"| {label} | {e.value:.5f} | [{e.ci_low:.5f}, {e.ci_high:.5f}] | {e.se:.5f} | {e.n:,} |"
            )
        return "\n".join(lines)


def _observed(log: pd.DataFrame, name: str, n_bootstrap: int, alpha: float, seed: int | None) -> OPEEstimate:
    click = log["click"].to_numpy(dtype=np.float64)
    n = click.size
    return bootstrap_estimate(name, click, np.zeros(n), np.ones(n), n_bootstrap, alpha, seed)


def evaluate_bts_policy(
    random_log: pd.DataFrame,
    bts_log: pd.DataFrame,
    n_bootstrap: int = 2000,
    alpha: float = 0.05,
    seed: int | None = 0,
) -> OpenBanditResult:
    """IPS and SNIPS estimates of the bts policy's CTR from the random log, beside the observed CTRs.

    The target probability of each random-log row is :math:`\\pi_{bts}(a_i \\mid k_i)` from
    :func:`action_distribution` of the bts log; the logging probability is the row's ``propensity_score``.
    """
    _check_log(random_log, "random")
    _check_log(bts_log, "bts")
    target = action_distribution(bts_log)
    positions = random_log["position"].to_numpy()
    unknown = sorted(set(np.unique(positions)) - set(target.index))
    if unknown:
        raise DataError(f"random log: position(s) {unknown} never appear in the bts log")
    stacked = target.stack()
    keys = pd.MultiIndex.from_arrays([random_log["position"], random_log["item_id"]])
    target_prob = stacked.reindex(keys).fillna(0.0).to_numpy()
    data = OPEData(
        reward=random_log["click"].to_numpy(dtype=np.float64),
        logging_prob=random_log["propensity_score"].to_numpy(dtype=np.float64),
        target_prob=target_prob,
    )
    return OpenBanditResult(
        ips=IPS(n_bootstrap=n_bootstrap, alpha=alpha, seed=seed).estimate(data),
        snips=SNIPS(n_bootstrap=n_bootstrap, alpha=alpha, seed=seed).estimate(data),
        observed_bts=_observed(bts_log, "observed_bts", n_bootstrap, alpha, seed),
        observed_random=_observed(random_log, "observed_random", n_bootstrap, alpha, seed),
    )
