"""PenalizedPolicy: the heuristic on any policy (deterministic and stochastic), and by name."""

from __future__ import annotations

import numpy as np
import pytest

from intentrank.errors import DataError
from intentrank.mitigation.heuristic import HeuristicPenalty
from intentrank.mitigation.pipeline import MitigationPlan
from intentrank.serving.policy import SlateRequest
from intentrank.serving.postprocess import PenalizedPolicy
from intentrank.simulator.catalogue import synthetic_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import Simulator
from intentrank.simulator.policies import RandomPolicy, StaticScorePolicy
from intentrank.simulator.world import World


@pytest.fixture(scope="module")
def catalogue():
    return synthetic_catalogue(400, seed=1)


def _request(n_items: int) -> SlateRequest:
    cand = np.random.default_rng(0).permutation(n_items)[:60].reshape(3, 20)
    return SlateRequest(np.arange(3), cand, np.zeros(3, np.int16), np.zeros(3), 0)


def test_deterministic_scores_are_multiplied(catalogue) -> None:
    base = StaticScorePolicy(np.ones(len(catalogue)))
    pen = HeuristicPenalty(w=0.8)
    pol = PenalizedPolicy(base, pen)
    req = _request(len(catalogue))
    s = pol.scores(req, catalogue)
    np.testing.assert_allclose(s, pen.f(catalogue.clickbait_score[req.candidates]))
    assert pol.name == "static+heuristic" and not pol.stochastic


def test_stochastic_policy_gets_log_penalty_scaled_by_temperature(catalogue) -> None:
    base = StaticScorePolicy(-np.ones(len(catalogue)), stochastic=True, temperature=2.0)
    pen = HeuristicPenalty(w=0.8)
    pol = PenalizedPolicy(base, pen)
    req = _request(len(catalogue))
    s = pol.scores(req, catalogue)
    c = catalogue.clickbait_score[req.candidates]
    # the sampling weights exp(s / T) are the base weights times f(c)
    np.testing.assert_allclose(np.exp(s / 2.0), np.exp(-1 / 2.0) * pen.f(c), rtol=1e-9)
    assert pol.stochastic and pol.temperature == 2.0


def test_negative_scores_of_a_deterministic_policy_are_refused(catalogue) -> None:
    pol = PenalizedPolicy(StaticScorePolicy(-np.ones(len(catalogue))), HeuristicPenalty())
    with pytest.raises(DataError, match="negative"):
        pol.scores(_request(len(catalogue)), catalogue)


def test_wrapped_random_policy_shows_less_heavy_clickbait_in_the_simulator(catalogue) -> None:
    world = World.create(catalogue, SimulatorConfig(users=300, days=1), seed=0)
    plain = Simulator(world, RandomPolicy(), seed=0).run().frame()
    penalty = MitigationPlan([{"method": "heuristic", "w": 0.9, "d": 0.05}]).penalty()
    assert isinstance(penalty, HeuristicPenalty)
    wrapped = PenalizedPolicy(RandomPolicy(), penalty)
    pen = Simulator(world, wrapped, seed=0).run().frame()
    share = lambda f: f["impressions_heavy"].sum() / f["impressions"].sum()  # noqa: E731
    assert share(pen) < 0.7 * share(plain)


def test_registered_by_name() -> None:
    from intentrank.errors import ConfigError
    from intentrank.simulator.registry import get_policy

    pol = get_policy("heuristic", base="ctr_oracle", w=0.6)
    assert isinstance(pol, PenalizedPolicy) and pol.name == "ctr_oracle+heuristic"
    assert pol.penalty.w == 0.6
    with pytest.raises(ConfigError, match=r"heuristic\.d"):
        get_policy("heuristic", d=0.7)
    with pytest.raises(ConfigError, match="unknown policy 'nope'"):
        get_policy("heuristic", base="nope")
    with pytest.raises(ConfigError, match="bad parameters"):
        get_policy("ctr_oracle", w=0.5)
