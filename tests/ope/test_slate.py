"""Slate OPE estimators: hand-computed values, exact (enumerated) unbiasedness, PI vs vw-estimators."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from intentrank.errors import DataError, IntentRankError
from intentrank.ope import IIPS, PI, RIPS, SlateData, pseudo_inverse_weights

# ---- hand-computed tiny log: 2 slates of length 2 ----
#   slate a: pos 1 reward 1, μ marg 0.5, π marg 0.25, μ casc 0.5,  π casc 0.25
#            pos 2 reward 0, μ marg 0.5, π marg 1.0,  μ casc 0.25, π casc 0.25
#   slate b: pos 1 reward 0, μ marg 0.5, π marg 0.75, μ casc 0.5,  π casc 0.75
#            pos 2 reward 1, μ marg 0.5, π marg 0.5,  μ casc 0.25, π casc 0.375
TINY = pd.DataFrame(
    {
        "slate_id": ["a", "a", "b", "b"],
        "position": [1, 2, 1, 2],
        "click": [1.0, 0.0, 0.0, 1.0],
        "logging_marginal": [0.5, 0.5, 0.5, 0.5],
        "target_marginal": [0.25, 1.0, 0.75, 0.5],
        "logging_cascade": [0.5, 0.25, 0.5, 0.25],
        "target_cascade": [0.25, 0.25, 0.75, 0.375],
    }
)


@pytest.fixture
def tiny() -> SlateData:
    return SlateData.from_frame(TINY, reward="click")


def test_iips_hand_computed(tiny: SlateData) -> None:
    # slate a: 0.25/0.5·1 + 1/0.5·0 = 0.5; slate b: 0.75/0.5·0 + 0.5/0.5·1 = 1.0; mean = 0.75
    assert IIPS().estimate_value(tiny) == pytest.approx(0.75)


def test_rips_hand_computed(tiny: SlateData) -> None:
    # slate a: 0.25/0.5·1 + 0.25/0.25·0 = 0.5; slate b: 0.75/0.5·0 + 0.375/0.25·1 = 1.5; mean = 1.0
    assert RIPS().estimate_value(tiny) == pytest.approx(1.0)


def test_pi_product_hand_computed(tiny: SlateData) -> None:
    # slate a: w = 0.25/0.5 + 1/0.5 - (2 - 1) = 1.5, r = 1 → 1.5
    # slate b: w = 0.75/0.5 + 0.5/0.5 - 1 = 1.5, r = 1 → 1.5; mean = 1.5
    assert PI().estimate_value(tiny) == pytest.approx(1.5)


def test_slate_estimate_bootstraps_over_slates(tiny: SlateData) -> None:
    est = RIPS(n_bootstrap=200).estimate(tiny)
    assert est.n == 2 and tiny.n_slates == 2 and tiny.n_rows == 4
    assert est.ci_low == pytest.approx(0.5) and est.ci_high == pytest.approx(1.5)  # only two slate values


def test_rows_in_any_order_give_the_same_estimate(tiny: SlateData) -> None:
    shuffled = SlateData.from_frame(TINY.iloc[[3, 0, 2, 1]], reward="click")
    for est in (IIPS(), RIPS(), PI()):
        assert est.estimate_value(shuffled) == pytest.approx(est.estimate_value(tiny))


def test_on_policy_slate_estimators_give_the_mean_slate_reward() -> None:
    rng = np.random.default_rng(0)
    n_slates, length = 50, 4
    marg = rng.uniform(0.05, 1, n_slates * length)
    casc = marg * rng.uniform(0.1, 1, n_slates * length)
    reward = rng.binomial(1, 0.2, n_slates * length).astype(float)
    data = SlateData(
        slate_id=np.repeat(np.arange(n_slates), length),
        position=np.tile(np.arange(1, length + 1), n_slates),
        reward=reward,
        logging_marginal=marg,
        target_marginal=marg,
        logging_cascade=casc,
        target_cascade=casc,
    )
    clicks_per_slate = reward.sum() / n_slates
    for est in (IIPS(), RIPS(), PI()):
        assert est.estimate_value(data) == pytest.approx(clicks_per_slate)


# ---- exact expectations by enumerating every slate of a tiny problem ----

M, L = 4, 3  # 4 items, slates of 3 positions: 24 ordered slates


def _plackett_luce(scores: np.ndarray, slates: list[tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """Probability of each slate and, per slate and position, the cascade (prefix) probability."""
    e = np.exp(scores)
    cascade = np.ones((len(slates), L))
    for i, s in enumerate(slates):
        p, left = 1.0, e.sum()
        for k, item in enumerate(s):
            p *= e[item] / left
            left -= e[item]
            cascade[i, k] = p
    return cascade[:, -1], cascade


def _marginals(prob: np.ndarray, slates: list[tuple[int, ...]]) -> np.ndarray:
    """marg[k, item] = P(item at position k)."""
    marg = np.zeros((L, M))
    for p, s in zip(prob, slates, strict=True):
        for k, item in enumerate(s):
            marg[k, item] += p
    return marg


def _exact(
    estimator: PI | IIPS | RIPS,
    logging_scores: np.ndarray | None,
    target_scores: np.ndarray,
    slot_reward: Callable[[tuple[int, ...]], np.ndarray],
) -> tuple[float, float]:
    """(E_logging[estimator], true value under the target), both exact over all slates."""
    slates = list(itertools.permutations(range(M), L))
    if logging_scores is None:  # uniform ranking logger
        mu = np.full(len(slates), 1 / len(slates))
        _, mu_casc = _plackett_luce(np.zeros(M), slates)
    else:
        mu, mu_casc = _plackett_luce(logging_scores, slates)
    pi, pi_casc = _plackett_luce(target_scores, slates)
    mu_marg, pi_marg = _marginals(mu, slates), _marginals(pi, slates)
    pi_incl = pi_marg.sum(axis=0)  # P(item anywhere in the slate)
    rows = [(i, k, item) for i, s in enumerate(slates) for k, item in enumerate(s)]
    idx, pos, item = (np.array(c) for c in zip(*rows, strict=True))
    rewards = np.array([slot_reward(s) for s in slates])  # (n_slates, L): expected slot rewards
    data = SlateData(
        slate_id=idx,
        position=pos + 1,
        reward=rewards[idx, pos],
        logging_marginal=mu_marg[pos, item],
        target_marginal=pi_marg[pos, item],
        logging_cascade=mu_casc[idx, pos],
        target_cascade=pi_casc[idx, pos],
        target_inclusion=pi_incl[item],
    )
    _, u, _ = estimator.terms(data)
    return float(mu @ u), float(pi @ rewards.sum(axis=1))


PHI = np.array([[0.30, 0.10, 0.05, 0.20], [0.15, 0.25, 0.05, 0.10], [0.05, 0.10, 0.20, 0.12]])  # [k, item]
LOGGING_SCORES = np.array([0.5, -0.3, 0.2, 0.0])
TARGET_SCORES = np.array([-1.0, 1.2, 0.4, 0.3])


def _independent(s: tuple[int, ...]) -> np.ndarray:
    """Click probability at slot k depends only on the item at k."""
    return np.array([PHI[k, item] for k, item in enumerate(s)])


def _cascade(s: tuple[int, ...]) -> np.ndarray:
    """Cascade model: the user stops at the first click, so slot k depends on the items above it too."""
    p = _independent(s)
    reach = np.concatenate([[1.0], np.cumprod(1 - p)[:-1]])
    return reach * p


def test_iips_is_exactly_unbiased_under_independent_slot_rewards() -> None:
    expected, truth = _exact(IIPS(), LOGGING_SCORES, TARGET_SCORES, _independent)
    assert expected == pytest.approx(truth, rel=1e-12)


def test_iips_is_biased_and_rips_unbiased_under_cascade_rewards() -> None:
    iips, truth = _exact(IIPS(), LOGGING_SCORES, TARGET_SCORES, _cascade)
    rips, _ = _exact(RIPS(), LOGGING_SCORES, TARGET_SCORES, _cascade)
    assert rips == pytest.approx(truth, rel=1e-12)
    assert abs(iips - truth) > 1e-3  # the independence assumption fails, and IIPS shows it


def test_pi_uniform_ranking_is_exactly_unbiased_for_additive_rewards() -> None:
    pi, truth = _exact(PI(logging="uniform_ranking", n_items=M), None, TARGET_SCORES, _independent)
    assert pi == pytest.approx(truth, rel=1e-12)


def test_pi_product_formula_is_biased_for_a_ranking_logger() -> None:
    # The Cartesian-product closed form assumes independent slots; a ranking (no repeated items) breaks it.
    pi, truth = _exact(PI(logging="product"), None, TARGET_SCORES, _independent)
    assert abs(pi - truth) > 1e-3


@pytest.mark.parametrize(("m", "length"), [(4, 3), (5, 2), (3, 3), (5, 1)])
def test_pi_uniform_ranking_closed_form_equals_the_general_pseudo_inverse(m: int, length: int) -> None:
    slates = list(itertools.permutations(range(m), length))
    ind = np.zeros((len(slates), length * m))
    for i, s in enumerate(slates):
        ind[i, [k * m + item for k, item in enumerate(s)]] = 1
    gamma = ind.T @ ind / len(slates)  # uniform logger: E[1_s 1_s^T]
    rng = np.random.default_rng(m * 10 + length)
    target = rng.dirichlet(np.full(len(slates), 0.5))  # an arbitrary target distribution over slates
    q = target @ ind
    general = pseudo_inverse_weights(gamma, q, ind)
    marg = q.reshape(length, m)
    rows = [(i, k, item) for i, s in enumerate(slates) for k, item in enumerate(s)]
    idx, pos, item = (np.array(c) for c in zip(*rows, strict=True))
    data = SlateData(
        slate_id=idx,
        position=pos + 1,
        reward=np.ones(idx.size),
        logging_marginal=np.full(idx.size, 1 / m),
        target_marginal=marg[pos, item],
        target_inclusion=marg.sum(axis=0)[item],
    )
    closed = PI(logging="uniform_ranking", n_items=m).slate_weights(data)
    np.testing.assert_allclose(closed, general, atol=1e-9)


def test_pi_product_is_exactly_unbiased_for_a_product_logger() -> None:
    # Cartesian slates: each of 2 slots draws one of 3 items independently (repeats allowed).
    m, length = 3, 2
    mu_slot = np.array([[0.5, 0.3, 0.2], [0.2, 0.2, 0.6]])
    slates = list(itertools.product(range(m), repeat=length))
    mu = np.array([mu_slot[0, a] * mu_slot[1, b] for a, b in slates])
    pi = np.random.default_rng(5).dirichlet(np.ones(len(slates)))  # target: any joint distribution
    pi_marg = np.zeros((length, m))
    for p, s in zip(pi, slates, strict=True):
        for k, item in enumerate(s):
            pi_marg[k, item] += p
    phi = np.array([[0.1, 0.4, 0.2], [0.3, 0.05, 0.15]])
    reward = np.array([[phi[k, item] for k, item in enumerate(s)] for s in slates])
    idx = np.repeat(np.arange(len(slates)), length)
    pos = np.tile(np.arange(length), len(slates))
    item = np.array([s[k] for s in slates for k in range(length)])
    data = SlateData(
        slate_id=idx,
        position=pos + 1,
        reward=reward[idx, pos],
        logging_marginal=mu_slot[pos, item],
        target_marginal=pi_marg[pos, item],
    )
    _, u, _ = PI().terms(data)
    assert float(mu @ u) == pytest.approx(float(pi @ reward.sum(axis=1)), rel=1e-12)


def test_pi_matches_vw_estimators() -> None:
    vw_pi = pytest.importorskip("estimators.slates.pseudo_inverse")
    rng = np.random.default_rng(7)
    n_slates, length = 300, 5
    logging = rng.uniform(0.05, 1, (n_slates, length))
    target = rng.uniform(0, 1, (n_slates, length))
    clicks = rng.binomial(1, 0.1, (n_slates, length)).astype(float)
    ref = vw_pi.Estimator()
    for i in range(n_slates):
        ref.add_example(list(logging[i]), float(clicks[i].sum()), list(target[i]))
    data = SlateData(
        slate_id=np.repeat(np.arange(n_slates), length),
        position=np.tile(np.arange(1, length + 1), n_slates),
        reward=clicks.ravel(),
        logging_marginal=logging.ravel(),
        target_marginal=target.ravel(),
    )
    assert PI().estimate_value(data) == pytest.approx(ref.get(), rel=1e-12)


def _pl_prob(e: np.ndarray, s: tuple[int, ...]) -> float:
    """Plackett–Luce probability of the ordered slate ``s`` with item weights ``e``."""
    left = e.sum() - np.concatenate([[0.0], np.cumsum(e[list(s)])[:-1]])
    return float(np.prod(e[list(s)] / left))


def test_rips_simulation_covers_the_true_clicks_per_slate() -> None:
    # Uniform-ranking logger over 8 items, 4 positions, cascade clicks; target: Plackett–Luce.
    m, length, n = 8, 4, 20_000
    rng = np.random.default_rng(11)
    phi = rng.uniform(0.05, 0.3, m)  # attractiveness, the same at every position
    scores = 2.0 * phi / phi.max()
    e = np.exp(scores)
    # True clicks per slate under the target: enumerate all 1,680 ordered slates.
    truth, target_marg = 0.0, np.zeros((length, m))
    for s in itertools.permutations(range(m), length):
        p, left, reach, clicks = 1.0, e.sum(), 1.0, 0.0
        for k, item in enumerate(s):
            p *= e[item] / left
            target_marg[k, item] += _pl_prob(e, s)
            left -= e[item]
            clicks += reach * phi[item]
            reach *= 1 - phi[item]
        truth += p * clicks
    slates = np.argsort(rng.uniform(size=(n, m)), axis=1)[:, :length]  # uniform rankings
    pass_prob = phi[slates]
    click = np.zeros((n, length))
    reached = np.ones(n, dtype=bool)
    for k in range(length):
        click[:, k] = reached & (rng.uniform(size=n) < pass_prob[:, k])
        reached &= click[:, k] == 0
    es = e[slates]
    left = e.sum() - np.concatenate([np.zeros((n, 1)), np.cumsum(es, axis=1)[:, :-1]], axis=1)
    target_casc = np.cumprod(es / left, axis=1)
    logging_casc = np.cumprod(1 / (m - np.arange(length)))[None, :].repeat(n, axis=0)
    data = SlateData(
        slate_id=np.repeat(np.arange(n), length),
        position=np.tile(np.arange(1, length + 1), n),
        reward=click.ravel(),
        logging_marginal=np.full(n * length, 1 / m),
        target_marginal=target_marg[np.tile(np.arange(length), n), slates.ravel()],
        logging_cascade=logging_casc.ravel(),
        target_cascade=target_casc.ravel(),
    )
    est = RIPS(n_bootstrap=300).estimate(data)
    assert est.covers(truth), (est, truth)
    assert abs(est.value - truth) < 0.1 * truth


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"position": [1, 1, 1, 2]}, "slate 'a' has position 1 twice"),
        ({"position": [0, 1, 1, 2]}, "position: must be integers >= 1"),
        ({"logging_marginal": [0.5, 0.0, 0.5, 0.5]}, r"logging_marginal: .* outside \(0, 1\]"),
        ({"target_cascade": [0.25, 1.5, 0.75, 0.375]}, r"target_cascade: .* outside \[0, 1\]"),
        ({"logging_cascade": [0.5, 0.75, 0.5, 0.25]}, "logging_cascade exceeds logging_marginal at row 1"),
        ({"click": [1.0, np.inf, 0.0, 1.0]}, "reward: 1 NaN or infinite"),
    ],
)
def test_bad_slate_input_is_a_clear_data_error(change: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        SlateData.from_frame(TINY.assign(**change), reward="click")


def test_missing_columns_and_settings() -> None:
    with pytest.raises(DataError, match="missing column 'reward'"):
        SlateData.from_frame(TINY)
    no_cascade = SlateData.from_frame(
        TINY.drop(columns=["logging_cascade", "target_cascade"]), reward="click"
    )
    with pytest.raises(DataError, match="rips needs the per-row column 'logging_cascade'"):
        RIPS().estimate(no_cascade)
    with pytest.raises(IntentRankError, match="needs n_items"):
        PI(logging="uniform_ranking")
    with pytest.raises(DataError, match="expects logging_marginal = 1/n_items"):
        PI(logging="uniform_ranking", n_items=4).estimate(no_cascade)
