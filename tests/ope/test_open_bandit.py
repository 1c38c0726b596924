"""OPE on the shipped Open Bandit Dataset: the bts policy's CTR estimated from the random log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intentrank.data.open_bandit import load_open_bandit
from intentrank.errors import DataError
from intentrank.ope.open_bandit import action_distribution, evaluate_bts_policy


@pytest.fixture(scope="module")
def logs() -> tuple[pd.DataFrame, pd.DataFrame]:
    return load_open_bandit("random"), load_open_bandit("bts")


def test_bts_action_distribution_is_per_position(logs) -> None:
    _, bts = logs
    dist = action_distribution(bts)
    assert list(dist.index) == [1, 2, 3]
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    # Thompson sampling concentrates: its most frequent item is far likelier than uniform 1/80.
    assert (dist.max(axis=1) > 5 / 80).all()


def test_ips_and_snips_ci_cover_the_observed_bts_ctr(logs) -> None:
    random_log, bts = logs
    res = evaluate_bts_policy(random_log, bts, n_bootstrap=1000, seed=0)
    observed = bts["click"].mean()
    assert res.observed_bts.value == pytest.approx(observed)
    assert res.observed_random.value == pytest.approx(random_log["click"].mean())
    for est in (res.ips, res.snips):
        assert est.n == len(random_log)
        assert est.ci_low < est.value < est.ci_high
        assert est.covers(observed), (est, observed)
    assert "SNIPS (bts from random log)" in res.table()


def test_evaluating_the_random_policy_on_its_own_log_gives_its_ctr(logs) -> None:
    # Target = the random log's own empirical item distribution per position ≈ uniform, so the
    # weights are ≈ 1 and SNIPS recovers the random log's CTR closely.
    random_log, _ = logs
    res = evaluate_bts_policy(random_log, random_log, n_bootstrap=0)
    assert res.snips.value == pytest.approx(random_log["click"].mean(), rel=0.15)


def test_a_log_without_propensities_is_an_error(logs) -> None:
    random_log, bts = logs
    with pytest.raises(DataError, match="random log: missing column\\(s\\) propensity_score"):
        evaluate_bts_policy(random_log.drop(columns=["propensity_score"]), bts)
