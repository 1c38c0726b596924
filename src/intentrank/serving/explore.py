"""An exploring logging policy: Plackett–Luce over a base policy's scores, with ε-uniform mixing.

Off-policy evaluation needs a stochastic logger whose every candidate has a positive probability at every
position, and whose probabilities are logged. :class:`ExploringPolicy` wraps any base policy (the production
ranker, an oracle, …): it standardises the base's scores within each request's candidates (so the
temperature means the same whatever the base's scale: at ``T = 1`` one standard deviation of score
multiplies an item's sampling weight by e), samples the slate by Plackett–Luce over
``softmax(z / T)`` and, with probability ``epsilon``, draws the whole slate uniformly at random instead.
The simulator logs, for each slate, the candidates and each impression's conditional, cascade and
item-position propensity (``logs_slates``), the slate id, the arm and ``model_version``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from intentrank.errors import ConfigError
from intentrank.serving.policy import ItemTable, Policy, SlateRequest, check_temperature


class ExploringPolicy(Policy):
    """``base``'s standardised scores sampled by Plackett–Luce at ``temperature`` with ε-uniform mixing.

    Args:
        base: any policy (its own ``stochastic``/``temperature`` are ignored; only its scores are used).
        temperature: T > 0 of the softmax over standardised scores (large T: close to uniform).
        epsilon: probability in [0, 1] of a uniformly random slate (bounds every importance weight).
        n_samples: Monte Carlo rankings per slate for the logged item-position propensities.
        name: arm name (default ``explore``).
    """

    stochastic = True
    logs_slates = True

    def __init__(
        self,
        base: Policy,
        temperature: float = 1.0,
        epsilon: float = 0.1,
        n_samples: int = 64,
        name: str | None = None,
    ) -> None:
        if not (isinstance(epsilon, int | float) and 0.0 <= epsilon <= 1.0):
            raise ConfigError(f"policy 'explore': epsilon must be in [0, 1], got {epsilon!r}")
        if not (isinstance(n_samples, int) and n_samples >= 1):
            raise ConfigError(f"policy 'explore': n_samples must be an integer ≥ 1, got {n_samples!r}")
        self.base = base
        self.temperature = check_temperature(temperature)
        self.epsilon = float(epsilon)
        self.n_samples = n_samples
        self.name = name or "explore"

    @property
    def model_version(self) -> str:  # type: ignore[override]
        """The base's model version when it has one (a trained ranker), else the base's name."""
        return str(getattr(self.base, "model_version", None) or self.base.name)

    def bind(self, world: Any) -> None:
        self.base.bind(world)

    def update(self, item_ids: np.ndarray, clicks: np.ndarray) -> None:
        self.base.update(item_ids, clicks)

    def scores(self, request: SlateRequest, items: ItemTable) -> np.ndarray:
        s = np.asarray(self.base.scores(request, items), dtype=np.float64)
        sd = s.std(axis=1, keepdims=True)
        return (s - s.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1.0)
