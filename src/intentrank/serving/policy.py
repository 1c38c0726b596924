"""The policy protocol: what the feed (or the simulator) asks to score a batch of users' candidates.

A policy returns a (B, K) score matrix for a :class:`SlateRequest`; :func:`select_slates` turns the
scores into slates. A deterministic policy's slate is the top ``slate_size`` candidates by score
(propensity 1). A stochastic policy's slate is a Plackett–Luce sample over ``softmax(scores / T)``
and each impression logs the probability of that pick given the items above it.

Policies read only public item features through :class:`ItemTable` (the simulator's catalogue is one;
the feed service's live item table is another), never hidden truth — except the simulator's oracles,
which receive the world through :meth:`Policy.bind`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from intentrank.errors import ConfigError
from intentrank.serving.ordering import SlateProbabilities, marginal_matrix, slate_probabilities


class ItemTable(Protocol):
    """Public item features a policy may read: the item frame (``item_id`` = row index) and the
    clickbait score array (one per item)."""

    items: pd.DataFrame
    clickbait_score: np.ndarray

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class SlateRequest:
    """A batch of B users each asking for their next slate.

    Attributes:
        user_ids: (B,) int64.
        candidates: (B, K) int64 item ids retrieved for each user (not yet shown this session).
        slate_index: (B,) int16, 0 for the first slate of a session.
        ts: (B,) float64 request time (seconds since the run's epoch).
        day: day index of the run.
    """

    user_ids: np.ndarray
    candidates: np.ndarray
    slate_index: np.ndarray
    ts: np.ndarray
    day: int


class Policy(ABC):
    """Scores candidates; higher = better. Subclasses set ``name`` and may set ``stochastic``.

    ``epsilon`` (stochastic only): probability of a uniformly random slate instead of the Plackett–Luce
    sample. ``logs_slates``: the simulator logs each slate's candidates and item-position / cascade
    propensities for off-policy evaluation (an exploring logging policy sets it).
    """

    name: str = "policy"
    stochastic: bool = False
    temperature: float = 1.0
    epsilon: float = 0.0
    logs_slates: bool = False
    model_version: str | None = None

    @abstractmethod
    def scores(self, request: SlateRequest, items: ItemTable) -> np.ndarray:
        """(B, K) float scores of ``request.candidates``."""

    def bind(self, world: Any) -> None:  # noqa: B027 (optional hook)
        """Called once by the simulator before a run (its oracles keep the world to read the truth)."""

    def update(self, item_ids: np.ndarray, clicks: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Called after each step with the shown slates (B, S) and their clicks (B, S) (online policies)."""

    def probabilities(
        self,
        scores: np.ndarray,
        order: np.ndarray,
        rng: np.random.Generator | None = None,
        n_samples: int = 256,
    ) -> SlateProbabilities:
        """This policy's conditional, cascade and item-position probabilities of the slates ``order``
        (B, S candidate columns) given its ``scores`` (B, K) on their candidates: a
        :class:`~intentrank.serving.ordering.SlateProbabilities` (what off-policy evaluation needs)."""
        return slate_probabilities(
            scores, order, stochastic=self.stochastic, temperature=self.temperature,
            epsilon=self.epsilon, n_samples=n_samples, rng=rng,
        )  # fmt: skip

    def marginals(
        self, scores: np.ndarray, S: int, rng: np.random.Generator | None = None, n_samples: int = 256
    ) -> np.ndarray:
        """(B, K, S) probability of each candidate at each position (one-hot when deterministic)."""
        return marginal_matrix(
            scores, S, stochastic=self.stochastic, temperature=self.temperature, epsilon=self.epsilon,
            n_samples=n_samples, rng=rng,
        )  # fmt: skip


def check_temperature(t: float) -> float:
    """``t`` as a float, or ConfigError unless it is a finite number > 0."""
    if not (isinstance(t, int | float) and np.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be a positive number, got {t!r}")
    return float(t)
