"""The simulator's built-in policies: random, static scores, popularity, and the oracles that read the truth.

They implement the serving layer's :class:`~intentrank.serving.policy.Policy` protocol; the policies of
the serving system itself (the trained ranker, post-processed policies) live in ``intentrank.serving``.
Every policy is known by name through :mod:`intentrank.simulator.registry`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from intentrank.errors import IntentRankError
from intentrank.serving.policy import Policy, SlateRequest, check_temperature

if TYPE_CHECKING:
    from intentrank.simulator.catalogue import Catalogue
    from intentrank.simulator.world import World


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
        self.name, self.stochastic, self.temperature = name, stochastic, check_temperature(temperature)

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
        return self._need_world().true_click_prob(request.user_ids, request.candidates, request.ts)


class IntentOraclePolicy(_OraclePolicy):
    """Ranks by the true expected satisfaction (minutes read, conversions, minus bounces)."""

    name = "intent_oracle"

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        return self._need_world().true_value(request.user_ids, request.candidates, request.ts)


class TruthFormulaPolicy(_OraclePolicy):
    """The ranking formula on the *true* quantities: ``P(click)^a · E[t | click]^b · P(conv | click)^g``.

    The yardstick of a learned ranker served by the same formula: a learned arm far from this one is
    degenerate (e.g. it learned "sort by −c"), whatever its A/B result against another learned arm.
    """

    name = "truth_formula"

    def __init__(self, a: float = 1.0, b: float = 0.8, g: float = 0.0) -> None:
        for k, v in (("a", a), ("b", b), ("g", g)):
            if not (isinstance(v, int | float) and np.isfinite(v) and v >= 0):
                raise IntentRankError(f"truth_formula: exponent {k} must be a finite number ≥ 0, got {v!r}")
        self.a, self.b, self.g = float(a), float(b), float(g)

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        w = self._need_world()
        u, items, ts = request.user_ids, request.candidates, request.ts
        s = w.true_click_prob(u, items, ts).astype(np.float64) ** self.a
        if self.b:
            s = s * w.true_time(u, items, ts).astype(np.float64) ** self.b
        if self.g:
            s = s * w.true_conversion_prob(u, items, ts).astype(np.float64) ** self.g
        return s


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
        self.stochastic, self.temperature = stochastic, check_temperature(temperature)

    def scores(self, request: SlateRequest, catalogue: Catalogue) -> np.ndarray:
        out = np.asarray(self.fn(request, catalogue))
        if out.shape != request.candidates.shape:
            raise IntentRankError(
                f"policy {self.name!r} returned scores of shape {out.shape}, "
                f"expected {request.candidates.shape}"
            )
        return out
