"""Every policy known by name, in one explicit registry (no registration by import side effects).

=================  ===============================================================  ========================
name               what                                                             parameters
=================  ===============================================================  ========================
``random``         uniformly random slates (Plackett–Luce over equal scores)        —
``popularity``     clicks gathered so far in the run                                —
``ctr_oracle``     the true click probability (the clickbait trap)                  —
``intent_oracle``  the true expected satisfaction (minutes, conversions, bounces)   —
``truth_formula``  the ranking formula on the true quantities (the yardstick)       ``a``, ``b``, ``g``
``ranker``         a trained multi-task ranker with a ranking formula               ``model_dir``, ``a``,
                                                                                    ``b``, ``g``
``heuristic``      the heuristic clickbait penalty f(c) over any base policy        ``base``, ``l``, ``h``,
                                                                                    ``d``, ``w``, …
``explore``        exploring logger: Plackett–Luce over a base policy's standardised  ``base``,
                   scores, ε-uniform mixing; logs item-position and cascade          ``temperature``,
                   propensities for off-policy evaluation                            ``epsilon``, …
=================  ===============================================================  ========================

The simulator's built-ins read the world through ``bind``; ``ranker`` and ``heuristic`` are policies of
the serving system (:mod:`intentrank.serving`). Unknown names and bad parameters raise
:class:`~intentrank.errors.ConfigError` naming them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from intentrank.errors import ConfigError
from intentrank.serving.policy import Policy
from intentrank.simulator.policies import (
    CTROraclePolicy,
    IntentOraclePolicy,
    PopularityPolicy,
    RandomPolicy,
    TruthFormulaPolicy,
)

PolicyFactory = Callable[..., Policy]


@dataclass(frozen=True)
class PolicyEntry:
    """A registered policy: its factory and a one-line description."""

    factory: PolicyFactory
    description: str


class PolicyRegistry:
    """Policies by name: ``create(name, **params)``; ``names()`` lists them."""

    def __init__(self, entries: Mapping[str, PolicyEntry]) -> None:
        self._entries = dict(entries)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def buildable_by_name(self) -> list[str]:
        """Names that need no parameters (e.g. usable as a logging policy; ``ranker`` needs a model)."""
        out = []
        for n in self.names():
            try:
                inspect.signature(self._entries[n].factory).bind()
            except TypeError:
                continue
            out.append(n)
        return out

    def describe(self) -> dict[str, str]:
        """Name → description."""
        return {n: self._entries[n].description for n in self.names()}

    def create(self, name: str, **params: Any) -> Policy:
        """A new policy ``name`` with ``params``; ConfigError for an unknown name or bad parameters."""
        if name not in self._entries:
            raise ConfigError(f"policy: unknown policy {name!r}; known: {', '.join(self.names())}")
        factory = self._entries[name].factory
        try:
            inspect.signature(factory).bind(**params)
        except TypeError as err:
            raise ConfigError(f"policy {name!r}: bad parameters {sorted(params)} ({err})") from None
        return factory(**params)


def _ranker(
    model_dir: str | None,
    a: float = 1.0,
    b: float = 0.8,
    g: float = 0.0,
    name: str | None = None,
) -> Policy:
    """The trained ranker in ``model_dir``, ordering by ``p_click^a · time^b · p_conv^g``."""
    from intentrank.ranking.formula import RankingFormula
    from intentrank.serving.ranker import RankerPolicy

    if not model_dir:
        raise ConfigError("policy 'ranker' needs a model directory (model_dir=..., or --model DIR)")
    return RankerPolicy.from_checkpoint(model_dir, formula=RankingFormula(a, b, g), name=name)


def _heuristic(
    base: str = "ctr_oracle",
    l: float = 0.4,  # noqa: E741 (the paper's name)
    h: float = 0.7,
    d: float = 0.1,
    w: float = 0.5,
    score_space: str = "linear",
    name: str | None = None,
    **base_params: Any,
) -> Policy:
    """``base`` (any registered policy, built with ``base_params``) times the heuristic penalty f(c)."""
    from intentrank.mitigation.heuristic import HeuristicPenalty
    from intentrank.serving.postprocess import PenalizedPolicy

    if base == "heuristic":
        raise ConfigError("policy 'heuristic': base must be another policy, not 'heuristic'")
    penalty = HeuristicPenalty(l=l, h=h, d=d, w=w, score_space=score_space)  # type: ignore[arg-type]
    return PenalizedPolicy(default_registry().create(base, **base_params), penalty, name=name)


def _explore(
    base: str = "ctr_oracle",
    temperature: float = 1.0,
    epsilon: float = 0.1,
    n_samples: int = 64,
    name: str | None = None,
    **base_params: Any,
) -> Policy:
    """Plackett–Luce over ``base``'s standardised scores at ``temperature``, ε-uniform (logs slates)."""
    from intentrank.serving.explore import ExploringPolicy

    if base == "explore":
        raise ConfigError("policy 'explore': base must be another policy, not 'explore'")
    return ExploringPolicy(
        default_registry().create(base, **base_params), temperature, epsilon, n_samples, name=name
    )


def default_registry() -> PolicyRegistry:
    """The registry of every policy intentrank ships (see the module docstring)."""
    return PolicyRegistry(
        {
            "random": PolicyEntry(RandomPolicy, "uniformly random slates (logs propensities)"),
            "popularity": PolicyEntry(PopularityPolicy, "clicks gathered so far in the run"),
            "ctr_oracle": PolicyEntry(CTROraclePolicy, "the true click probability (simulator only)"),
            "intent_oracle": PolicyEntry(
                IntentOraclePolicy, "the true expected satisfaction (simulator only)"
            ),
            "truth_formula": PolicyEntry(
                TruthFormulaPolicy, "the ranking formula on the true P(click), E[t|click], P(conv|click)"
            ),
            "ranker": PolicyEntry(
                _ranker, "a trained multi-task ranker (model_dir) with a formula (a, b, g)"
            ),
            "heuristic": PolicyEntry(_heuristic, "heuristic clickbait penalty over a base policy"),
            "explore": PolicyEntry(
                _explore, "exploring logger: Plackett–Luce over a base's scores, ε-uniform (OPE logs)"
            ),
        }
    )


def get_policy(name: str, **params: Any) -> Policy:
    """``default_registry().create(name, **params)``."""
    return default_registry().create(name, **params)


def policy_names() -> list[str]:
    """Names of every registered policy."""
    return default_registry().names()
