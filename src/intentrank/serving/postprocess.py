"""Post-processing for any policy: :class:`PenalizedPolicy` multiplies its scores by a clickbait penalty.

For a deterministic policy the penalty acts on the scores as the penalty defines it (e.g. ``s·f(c)`` for
non-negative scores, ``s + log f(c)`` for logits). For a stochastic policy, whose slate is a Plackett–Luce
sample over ``softmax(s / T)``, it adds ``T·log f(c)``: each item's sampling weight is multiplied by
f(c) exactly, whatever the sign of the scores.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from intentrank.serving.policy import ItemTable, Policy, SlateRequest


class Penalty(Protocol):
    """A score adjustment by the items' clickbait scores (e.g. the heuristic f(c; h, l, d, w))."""

    def __call__(self, scores: np.ndarray, clickbait: np.ndarray) -> np.ndarray: ...

    def log_f(self, clickbait: np.ndarray) -> np.ndarray: ...


class PenalizedPolicy(Policy):
    """``base``'s scores adjusted by ``penalty`` (see the module docstring)."""

    def __init__(self, base: Policy, penalty: Penalty, name: str | None = None) -> None:
        self.base, self.penalty = base, penalty
        self.name = name or f"{base.name}+heuristic"
        self.stochastic = base.stochastic
        self.temperature = base.temperature

    def bind(self, world: Any) -> None:
        self.base.bind(world)

    def update(self, item_ids: np.ndarray, clicks: np.ndarray) -> None:
        self.base.update(item_ids, clicks)

    def scores(self, request: SlateRequest, items: ItemTable) -> np.ndarray:
        s = np.asarray(self.base.scores(request, items), dtype=np.float64)
        c = items.clickbait_score[request.candidates]
        if self.stochastic:
            return s + self.temperature * self.penalty.log_f(c)
        return self.penalty(s, c)
