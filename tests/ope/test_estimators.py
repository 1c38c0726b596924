"""Single-item OPE estimators: hand-computed values on tiny logs, invariances, bad input, a simulation."""

from __future__ import annotations

import numpy as np
import pytest

from intentrank.errors import DataError, IntentRankError
from intentrank.ope import DM, DR, IPS, SNDR, SNIPS, OPEData

# Tiny log, 4 rounds. w = target / logging = [1/0.5, 0/0.5, 0.5/0.25, 0.5/0.25] = [2, 0, 2, 2].
TINY = {
    "reward": [1.0, 0.0, 1.0, 0.0],
    "logging_prob": [0.5, 0.5, 0.25, 0.25],
    "target_prob": [1.0, 0.0, 0.5, 0.5],
    "q_hat_logged": [0.6, 0.2, 0.4, 0.4],
    "q_hat_target": [0.6, 0.3, 0.5, 0.2],
}


@pytest.fixture
def tiny() -> OPEData:
    return OPEData(**TINY)


def test_ips_hand_computed(tiny: OPEData) -> None:
    # Σ w r / n = (2·1 + 0·0 + 2·1 + 2·0) / 4 = 4 / 4 = 1.0
    assert IPS().estimate_value(tiny) == pytest.approx(1.0)


def test_snips_hand_computed(tiny: OPEData) -> None:
    # Σ w r / Σ w = 4 / (2 + 0 + 2 + 2) = 4 / 6
    assert SNIPS().estimate_value(tiny) == pytest.approx(4 / 6)


def test_dm_hand_computed(tiny: OPEData) -> None:
    # mean(q_hat_target) = (0.6 + 0.3 + 0.5 + 0.2) / 4 = 1.6 / 4 = 0.4
    assert DM().estimate_value(tiny) == pytest.approx(0.4)


def test_dr_hand_computed(tiny: OPEData) -> None:
    # residuals r - q_hat_logged = [0.4, -0.2, 0.6, -0.4]; w · res = [0.8, 0, 1.2, -0.8], Σ = 1.2
    # DR = 0.4 + 1.2 / 4 = 0.7
    assert DR().estimate_value(tiny) == pytest.approx(0.7)


def test_sndr_hand_computed(tiny: OPEData) -> None:
    # SNDR = DM + Σ w·res / Σ w = 0.4 + 1.2 / 6 = 0.6
    assert SNDR().estimate_value(tiny) == pytest.approx(0.6)


def test_estimate_carries_ci_and_n(tiny: OPEData) -> None:
    est = DR(n_bootstrap=200, seed=1).estimate(tiny)
    assert est.n == 4 and est.estimator == "dr"
    assert est.ci_low <= est.value <= est.ci_high
    assert est.se > 0
    # Seeded: the same seed gives the same interval.
    again = DR(n_bootstrap=200, seed=1).estimate(tiny)
    assert (again.ci_low, again.ci_high, again.se) == (est.ci_low, est.ci_high, est.se)


def test_on_policy_ips_is_the_mean_reward() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 1.0, 50)
    r = rng.binomial(1, 0.3, 50).astype(float)
    data = OPEData(reward=r, logging_prob=p, target_prob=p)
    assert IPS().estimate_value(data) == pytest.approx(r.mean())
    assert SNIPS().estimate_value(data) == pytest.approx(r.mean())


def test_snips_of_a_constant_reward_is_that_constant() -> None:
    rng = np.random.default_rng(1)
    n = 40
    logging, target = rng.uniform(0.1, 1, n), rng.uniform(0, 1, n)
    data = OPEData(reward=np.full(n, 0.37), logging_prob=logging, target_prob=target)
    est = SNIPS(n_bootstrap=100).estimate(data)
    assert est.value == pytest.approx(0.37)
    assert est.ci_low == pytest.approx(0.37) and est.ci_high == pytest.approx(0.37)


def test_dr_with_a_perfect_deterministic_model_equals_dm_with_zero_variance() -> None:
    # Deterministic rewards r = q(x, a) and a perfect model: every residual is 0, so DR = DM and
    # each bootstrap resample gives the same value of the correction term.
    rng = np.random.default_rng(2)
    n = 30
    q_logged = rng.uniform(0, 1, n)
    q_target = rng.uniform(0, 1, n)
    data = OPEData(
        reward=q_logged,
        logging_prob=rng.uniform(0.1, 1, n),
        target_prob=rng.uniform(0, 1, n),
        q_hat_logged=q_logged,
        q_hat_target=q_target,
    )
    dr, dm = DR(n_bootstrap=200).estimate(data), DM(n_bootstrap=200).estimate(data)
    assert dr.value == pytest.approx(dm.value)
    assert dr.se == pytest.approx(dm.se)
    assert SNDR().estimate_value(data) == pytest.approx(dm.value)


def test_snips_is_invariant_to_scaling_the_target() -> None:
    data = OPEData(**TINY)
    half = OPEData(**{**TINY, "target_prob": np.asarray(TINY["target_prob"]) / 2})
    assert SNIPS().estimate_value(half) == pytest.approx(SNIPS().estimate_value(data))
    assert IPS().estimate_value(half) == pytest.approx(IPS().estimate_value(data) / 2)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("logging_prob", [0.5, 0.0, 0.25, 0.25], r"logging_prob: 1 value\(s\) outside \(0, 1\].*row 1"),
        ("logging_prob", [0.5, 1.5, 0.25, 0.25], r"outside \(0, 1\]"),
        ("target_prob", [1.0, -0.1, 0.5, 0.5], r"target_prob: .* outside \[0, 1\]"),
        ("reward", [1.0, np.nan, 1.0, 0.0], r"reward: 1 NaN or infinite value\(s\), first at row 1"),
        ("target_prob", [1.0, 0.0, 0.5], r"target_prob: expected 4 values"),
        ("reward", [[1.0, 0.0], [1.0, 0.0]], r"reward: expected a 1-D array"),
        ("q_hat_logged", [0.1, 0.2], r"q_hat_logged: expected 4 values"),
        ("reward", ["a", "b", "c", "d"], r"reward: not numeric"),
    ],
)
def test_bad_input_is_a_clear_data_error(field: str, value: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        OPEData(**{**TINY, field: value})


def test_model_based_estimators_need_the_model() -> None:
    data = OPEData(reward=[1.0, 0.0], logging_prob=[0.5, 0.5], target_prob=[0.5, 0.5])
    with pytest.raises(DataError, match="dm needs q_hat_target"):
        DM().estimate(data)
    with pytest.raises(DataError, match="dr needs q_hat_target"):
        DR().estimate(data)
    with_target = OPEData(
        reward=[1.0, 0.0], logging_prob=[0.5, 0.5], target_prob=[0.5, 0.5], q_hat_target=[0.0, 0.0]
    )
    with pytest.raises(DataError, match="sndr needs q_hat_logged"):
        SNDR().estimate(with_target)


def test_snips_with_no_target_mass_on_the_log_is_an_error() -> None:
    data = OPEData(reward=[1.0, 0.0], logging_prob=[0.5, 0.5], target_prob=[0.0, 0.0])
    with pytest.raises(DataError, match="probability 0 to every logged action"):
        SNIPS().estimate(data)


def test_bad_estimator_settings() -> None:
    with pytest.raises(IntentRankError, match="alpha must be in"):
        IPS(alpha=1.5)
    with pytest.raises(IntentRankError, match="n_bootstrap must be"):
        IPS(n_bootstrap=-1)


# ---- simulation: a synthetic contextual bandit whose true policy value is computable exactly ----

N_CONTEXTS, N_ACTIONS, DIM = 40, 6, 4


def _world(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Finite context set, click probabilities q(x, a), a softmax logger and a different softmax target."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N_CONTEXTS, DIM))
    theta = rng.normal(size=(DIM, N_ACTIONS))
    q = 1 / (1 + np.exp(-(x @ theta - 1.5)))  # click probability per (context, action)

    def softmax(z: np.ndarray) -> np.ndarray:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    logging = softmax(0.5 * rng.normal(size=(N_CONTEXTS, N_ACTIONS)))  # unrelated to q: exploration
    target = softmax(3.0 * q)  # prefers the high-click actions
    return q, logging, target, rng.normal(size=(N_CONTEXTS, N_ACTIONS))


def _log(q: np.ndarray, logging: np.ndarray, target: np.ndarray, model_noise: np.ndarray, n: int, seed: int):
    rng = np.random.default_rng(seed)
    ctx = rng.integers(0, N_CONTEXTS, n)
    u = rng.uniform(size=(n, 1))
    actions = (u > np.cumsum(logging[ctx], axis=1)).sum(axis=1)
    actions = np.minimum(actions, N_ACTIONS - 1)
    reward = rng.binomial(1, q[ctx, actions]).astype(float)
    q_hat = np.clip(q + 0.1 + 0.05 * model_noise, 0, 1)  # a biased reward model: DM is off by ~0.1
    return OPEData(
        reward=reward,
        logging_prob=logging[ctx, actions],
        target_prob=target[ctx, actions],
        q_hat_logged=q_hat[ctx, actions],
        q_hat_target=(target * q_hat).sum(axis=1)[ctx],
    )


def test_simulation_snips_and_dr_recover_the_true_value() -> None:
    q, logging, target, noise = _world(0)
    true_value = float((target * q).sum(axis=1).mean())  # contexts are uniform over the finite set
    data = _log(q, logging, target, noise, n=20_000, seed=1)
    snips = SNIPS(n_bootstrap=300).estimate(data)
    dr = DR(n_bootstrap=300).estimate(data)
    dm = DM().estimate_value(data)
    for est in (snips, dr):
        assert abs(est.value - true_value) < 0.05 * true_value, (est, true_value)
        assert est.covers(true_value), (est, true_value)
    # The biased model misleads DM; DR's correction removes most of that bias.
    assert abs(dm - true_value) > 3 * abs(dr.value - true_value)


def test_simulation_ci_coverage() -> None:
    # 60 independent logs of 1,500 rounds: a 90 % interval should cover the truth in about 54 of them;
    # below 45 (binomial p ≈ 0.001 if the coverage were 90 %) means the intervals are too narrow.
    q, logging, target, noise = _world(3)
    true_value = float((target * q).sum(axis=1).mean())
    covered = {"snips": 0, "dr": 0}
    for seed in range(60):
        data = _log(q, logging, target, noise, n=1_500, seed=100 + seed)
        for est in (SNIPS(n_bootstrap=200, alpha=0.1, seed=seed), DR(n_bootstrap=200, alpha=0.1, seed=seed)):
            covered[est.name] += est.estimate(data).covers(true_value)
    assert covered["snips"] >= 45 and covered["dr"] >= 45, covered
