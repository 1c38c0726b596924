"""Policies: what the simulator (or the feed) asks to score a batch of users' candidates.

A policy returns a (B, K) score matrix for a :class:`SlateRequest`. A deterministic policy's slate is
the top ``slate_size`` candidates by score (propensity 1). A stochastic policy's slate is a
Plackett-Luce sample over ``softmax(scores / temperature)`` (drawn with the Gumbel top-k trick) and
each impression logs the probability of that pick given the items above it (for position 0, exactly
the probability that the item is shown first).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from intentrank.errors import ConfigError, IntentRankError

if TYPE_CHECKING:
    from intentrank.simulator.catalogue import Catalogue
    from intentrank.simulator.world import World


@dataclass(frozen=True)
class SlateRequest:
    """A batch of B users each asking for their next slate."""

    user_ids: np.ndarray  # (B,) int64
    candidates: np.ndarray  # (B, K) int64 item ids retrieved for each user (not yet shown this session)
    slate_index: np.ndarray  # (B,) int16, 0 for the first slate of a session
    ts: np.ndarray  # (B,) float64 event time (seconds since the run's epoch)
    day: int


class Policy(ABC):
    """Scores candidates; higher = better. Subclasses set ``name`` and may set ``stochastic``."""

    name: str = "policy"
    stochastic: bool = False
    temperature: float = 1.0

    @abstractmethod
    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        """(B, K) float scores of ``request.candidates``."""

    def bind(self, world: World) -> None:  # noqa: B027 (optional hook)
        """Called once by the simulator before a run; oracles keep the world to read the truth."""

    def update(self, item_ids: np.ndarray, clicks: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Called after each step with the shown slates (B, S) and their clicks (B, S) (online policies)."""


class RandomPolicy(Policy):
    """Uniformly random slates (a Plackett-Luce sample over equal scores; logs its propensities)."""

    name = "random"
    stochastic = True

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        return np.zeros(request.candidates.shape, dtype=np.float32)


class StaticScorePolicy(Policy):
    """Ranks by a precomputed score per item (e.g. a batch model's output): ``item_scores[candidates]``."""

    def __init__(
        self,
        item_scores: np.ndarray,
        name: str = "static",
        stochastic: bool = False,
        temperature: float = 1.0,
    ) -> None:
        self.item_scores = np.asarray(item_scores, dtype=np.float32)
        if self.item_scores.ndim != 1 or not np.all(np.isfinite(self.item_scores)):
            raise IntentRankError("item_scores must be a 1-D array of finite numbers")
        self.name, self.stochastic, self.temperature = name, stochastic, _check_temperature(temperature)

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        return self.item_scores[request.candidates]


class PopularityPolicy(Policy):
    """Ranks by clicks each item has gathered so far in this run (an online, non-personal baseline).

    Ties (e.g. before any click) break by a fixed pseudo-random order of items.
    """

    name = "popularity"

    def __init__(self) -> None:
        self._clicks: np.ndarray | None = None
        self._jitter: np.ndarray | None = None

    def bind(self, world: World) -> None:
        n = len(world.catalogue)
        self._clicks = np.zeros(n, dtype=np.float32)
        self._jitter = ((np.arange(n, dtype=np.float64) * 0.6180339887498949) % 1.0).astype(np.float32) * 1e-3

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        if self._clicks is None or len(self._clicks) != len(catalogue):
            raise IntentRankError("popularity policy: bind(world) must be called before scoring")
        return self._clicks[request.candidates] + self._jitter[request.candidates]

    def update(self, item_ids: np.ndarray, clicks: np.ndarray) -> None:
        if self._clicks is not None:
            self._clicks += np.bincount(item_ids[clicks], minlength=len(self._clicks)).astype(np.float32)


class _OraclePolicy(Policy):
    _world: World | None = None

    def bind(self, world: World) -> None:
        self._world = world

    def _need_world(self) -> World:
        if self._world is None:
            raise IntentRankError(
                f"{self.name} policy: bind(world) must be called before scoring (it reads the truth)"
            )
        return self._world


class CTROraclePolicy(_OraclePolicy):
    """Ranks by the true click probability (what a perfect click model would do): the clickbait trap."""

    name = "ctr_oracle"

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        return self._need_world().true_click_prob(request.user_ids, request.candidates)


class IntentOraclePolicy(_OraclePolicy):
    """Ranks by the true expected satisfaction (minutes read, conversions, minus bounces)."""

    name = "intent_oracle"

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        return self._need_world().true_value(request.user_ids, request.candidates)


class CallableScorerPolicy(Policy):
    """Any function ``fn(request, catalogue) -> (B, K) scores`` as a policy."""

    def __init__(
        self,
        fn: Callable[[SlateRequest, Catalogue], np.ndarray],
        name: str = "callable",
        stochastic: bool = False,
        temperature: float = 1.0,
    ) -> None:
        if not callable(fn):
            raise IntentRankError("CallableScorerPolicy needs a callable")
        self.fn, self.name = fn, name
        self.stochastic, self.temperature = stochastic, _check_temperature(temperature)

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        out = np.asarray(self.fn(request, catalogue))
        if out.shape != request.candidates.shape:
            raise IntentRankError(
                f"policy {self.name!r} returned scores of shape {out.shape}, "
                f"expected {request.candidates.shape}"
            )
        return out


def _check_temperature(t: float) -> float:
    if not (isinstance(t, int | float) and np.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be a positive number, got {t!r}")
    return float(t)


POLICIES: dict[str, Callable[..., Policy]] = {
    "random": RandomPolicy,
    "popularity": PopularityPolicy,
    "ctr_oracle": CTROraclePolicy,
    "intent_oracle": IntentOraclePolicy,
}


def register_policy(name: str, factory: Callable[..., Policy]) -> None:
    """Make a policy selectable by name (e.g. the ranker registers ``ranker``)."""
    POLICIES[name] = factory


def get_policy(name: str, **params: Any) -> Policy:
    """A policy by registered name; unknown names raise ConfigError listing the known ones."""
    if name not in POLICIES:
        raise ConfigError(f"policy: unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}")
    try:
        return POLICIES[name](**params)
    except TypeError as err:
        raise ConfigError(f"policy {name!r}: bad parameters {sorted(params)} ({err})") from None
