"""Heuristic post-processing for any simulator policy: :class:`PenalizedPolicy` wraps a policy and
multiplies its scores by f(c) of each candidate's clickbait score.

For a deterministic policy the penalty acts on the scores as configured (``linear``: ``s·f(c)``, for
non-negative scores; ``log``: ``s + log f(c)``, for logits). For a stochastic policy, whose slate is a
Plackett-Luce sample over ``softmax(s / T)``, it adds ``T·log f(c)``: each item's sampling weight is
multiplied by f(c) exactly, whatever the sign of the scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from intentrank.mitigation.heuristic import HeuristicPenalty
from intentrank.simulator.policies import Policy, SlateRequest, get_policy, register_policy

if TYPE_CHECKING:
    from intentrank.simulator.catalogue import Catalogue
    from intentrank.simulator.world import World


class PenalizedPolicy(Policy):
    """``base``'s scores times the heuristic clickbait penalty f(c)."""

    def __init__(self, base: Policy, penalty: HeuristicPenalty, name: str | None = None) -> None:
        self.base, self.penalty = base, penalty
        self.name = name or f"{base.name}+heuristic"
        self.stochastic = base.stochastic
        self.temperature = base.temperature

    def bind(self, world: World) -> None:
        self.base.bind(world)

    def update(self, item_ids: np.ndarray, clicks: np.ndarray) -> None:
        self.base.update(item_ids, clicks)

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        s = np.asarray(self.base.scores(request, catalogue), dtype=np.float64)
        c = catalogue.clickbait_score[request.candidates]
        if self.stochastic:
            return s + self.temperature * self.penalty.log_f(c)
        return self.penalty(s, c)


def _factory(
    base: str = "ctr_oracle",
    l: float = 0.4,  # noqa: E741 (the paper's name)
    h: float = 0.7,
    d: float = 0.1,
    w: float = 0.5,
    score_space: str = "linear",
    name: str | None = None,
    **base_params: object,
) -> PenalizedPolicy:
    """``get_policy("heuristic", base="ctr_oracle", w=0.6, ...)``: a registered policy by name."""
    penalty = HeuristicPenalty(l=l, h=h, d=d, w=w, score_space=score_space)  # type: ignore[arg-type]
    return PenalizedPolicy(get_policy(base, **base_params), penalty, name=name)


register_policy("heuristic", _factory)
