"""The exploring logger's probabilities: exact against enumeration, consistent with what it samples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from intentrank.errors import ConfigError
from intentrank.serving.explore import ExploringPolicy
from intentrank.serving.ordering import (
    marginal_matrix,
    plackett_luce_marginals,
    select_slates,
    slate_probabilities,
)
from intentrank.serving.policy import SlateRequest
from intentrank.simulator.policies import StaticScorePolicy
from intentrank.simulator.registry import get_policy

K, S = 5, 3


def _enumerate(logits: np.ndarray, epsilon: float) -> dict[tuple[int, ...], float]:
    """Probability of every ordered slate of S out of K under PL(softmax(logits)) mixed with uniform."""
    w = np.exp(logits)
    n_slates = np.prod(np.arange(K, K - S, -1))
    out = {}
    for perm in itertools.permutations(range(K), S):
        p, rem = 1.0, w.sum()
        for a in perm:
            p *= w[a] / rem
            rem -= w[a]
        out[perm] = epsilon / n_slates + (1 - epsilon) * p
    return out


@pytest.fixture
def logits() -> np.ndarray:
    return np.array([1.2, -0.3, 0.4, 2.0, -1.0])


@pytest.mark.parametrize("epsilon", [0.0, 0.3])
def test_cascade_and_conditional_are_exact(logits: np.ndarray, epsilon: float) -> None:
    probs = _enumerate(logits, epsilon)
    slates = np.array(list(probs))
    p = slate_probabilities(
        np.tile(logits, (len(slates), 1)), slates, stochastic=True, epsilon=epsilon,
        rng=np.random.default_rng(0), n_samples=8,
    )  # fmt: skip
    # the full slate's cascade is its enumerated probability; prefixes are sums over their completions
    assert np.allclose(p.cascade[:, -1], [probs[tuple(s)] for s in slates], rtol=1e-10)
    for j, s in enumerate(slates[:20]):
        prefix = sum(v for k, v in probs.items() if k[:2] == tuple(s[:2]))
        assert p.cascade[j, 1] == pytest.approx(prefix, rel=1e-10)
    # the cascade is the product of the conditionals, and sums to 1 over all slates
    assert np.allclose(np.cumprod(p.conditional, axis=1), p.cascade)
    assert p.cascade[:, -1].sum() == pytest.approx(1.0)


@pytest.mark.parametrize("epsilon", [0.0, 0.3])
def test_marginals_match_enumeration_and_sum_to_one(logits: np.ndarray, epsilon: float) -> None:
    probs = _enumerate(logits, epsilon)
    exact = np.zeros((K, S))
    for perm, v in probs.items():
        exact[list(perm), np.arange(S)] += v
    mat = marginal_matrix(
        logits[None, :], S, stochastic=True, epsilon=epsilon, n_samples=20_000, rng=np.random.default_rng(1)
    )[0]
    assert np.allclose(mat.sum(axis=0), 1.0, atol=1e-9)  # every position holds exactly one item
    assert (mat.sum(axis=1) <= 1 + 1e-9).all()  # an item is shown at most once
    assert np.abs(mat - exact).max() < 0.01
    assert np.allclose(mat[:, 0], exact[:, 0], rtol=1e-9)  # position 0: exact, no Monte Carlo noise
    # the per-slate marginals of the logged items agree with the matrix
    slates = np.array([[3, 0, 2], [1, 4, 0]])
    p = slate_probabilities(np.tile(logits, (2, 1)), slates, stochastic=True, epsilon=epsilon,
                            n_samples=20_000, rng=np.random.default_rng(2))  # fmt: skip
    assert np.abs(p.marginal - exact[slates, np.arange(S)]).max() < 0.01
    assert (p.marginal >= p.cascade - 1e-12).all()


def test_logged_probabilities_match_empirical_frequencies(logits: np.ndarray) -> None:
    """Sample many slates the way the simulator does; the logged conditional probabilities and the
    marginal matrix agree with the frequencies of what was sampled."""
    n, eps = 40_000, 0.2
    scores = np.tile(logits.astype(np.float32), (n, 1))
    order, conditional = select_slates(scores, S, stochastic=True, rng=np.random.default_rng(3), epsilon=eps)
    p = slate_probabilities(scores[:50], order[:50], stochastic=True, epsilon=eps,
                            rng=np.random.default_rng(4), n_samples=64)  # fmt: skip
    assert np.allclose(conditional[:50], p.conditional, rtol=1e-5)
    freq = np.zeros((K, S))
    np.add.at(freq, (order, np.broadcast_to(np.arange(S), order.shape)), 1.0 / n)
    mat = marginal_matrix(logits[None, :], S, stochastic=True, epsilon=eps, n_samples=20_000,
                          rng=np.random.default_rng(5))[0]  # fmt: skip
    se = np.sqrt(mat * (1 - mat) / n)
    assert (np.abs(freq - mat) < 5 * se + 2e-3).all()
    # the first two picks: frequency of each prefix vs its logged cascade probability
    keys, counts = np.unique(order[:, :2], axis=0, return_counts=True)
    casc = slate_probabilities(np.tile(logits, (len(keys), 1)), keys, stochastic=True, epsilon=eps,
                               rng=np.random.default_rng(6), n_samples=8).cascade[:, 1]  # fmt: skip
    assert np.abs(counts / n - casc).max() < 5 * np.sqrt(casc.max() / n)


def test_monte_carlo_marginals_are_unbiased_on_a_larger_ranking() -> None:
    rng = np.random.default_rng(7)
    lg = rng.normal(size=(3, 30))
    many = plackett_luce_marginals(lg, 6, n_samples=20_000, rng=rng)
    few = np.mean([plackett_luce_marginals(lg, 6, n_samples=16, rng=rng) for _ in range(60)], axis=0)
    assert np.allclose(many.sum(axis=1), 1.0, atol=1e-9)
    assert np.abs(few - many).max() < 0.01


def test_deterministic_policy_probabilities_are_indicators() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.3]])
    p = slate_probabilities(np.repeat(scores, 2, axis=0), np.array([[1, 2], [1, 3]]))
    assert p.marginal.tolist() == [[1.0, 1.0], [1.0, 0.0]]
    assert p.cascade.tolist() == [[1.0, 1.0], [1.0, 0.0]]
    mat = marginal_matrix(scores, 2)[0]
    assert mat[1, 0] == 1.0 and mat[2, 1] == 1.0 and mat.sum() == 2.0


def test_exploring_policy_standardises_base_scores_and_is_registered() -> None:
    base = StaticScorePolicy(np.array([0.0, 1.0, 2.0, 3.0, 100.0]), name="static")
    pol = ExploringPolicy(base, temperature=0.5, epsilon=0.2)
    req = SlateRequest(np.array([0]), np.array([[0, 1, 2, 3]]), np.zeros(1, np.int16), np.zeros(1), 0)
    z = pol.scores(req, None)  # type: ignore[arg-type]
    assert np.allclose(z.mean(), 0.0) and np.allclose(z.std(), 1.0)
    assert pol.stochastic and pol.logs_slates and pol.model_version == "static"
    reg = get_policy("explore", base="truth_formula", temperature=2.0, epsilon=0.05)
    assert (reg.temperature, reg.epsilon, reg.base.name) == (2.0, 0.05, "truth_formula")  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="epsilon"):
        get_policy("explore", epsilon=1.5)
    with pytest.raises(ConfigError, match="base must be another policy"):
        get_policy("explore", base="explore")
