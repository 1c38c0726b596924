"""Shallow-tower debiasing and the "c as a plain input feature" baseline: ranker-config transforms.

The ranker has the bias tower built in (``RankerConfig.shallow_tower``): its logit is added to the
heads in training, and its inputs are zeroed in eval mode (serving). This module only sets the
config up: c leaves the main network (``to_main=False``, so the bias can only be learned by the
tower and is fully removed at serving) and feeds the tower.

Heads. The ranker adds the tower's one scalar to *every* head, the dwell regression and the
conversion head included (the paper's "each task head"). ``heads=["click"]``
(:class:`HeadMaskedRanker`) adds it to the chosen heads only, so the dwell and conversion heads keep
c's (negative) signal out of the bias. Measured caveat (docs/mitigation/shallow_tower.md): when
other inputs are proxies of clickbait (outlet, item id), the main network absorbs the click bias
through them and the tower's weight on c can even come out negative; the tower then removes
little or nothing at serving.

References:
    "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz): the shallow-tower method.
    Z. Zhao et al., "Recommending What Video to Watch Next: A Multitask Ranking System", RecSys 2019
    (the shallow tower for position bias it adapts).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from intentrank.errors import ConfigError
from intentrank.mitigation.config import PlainFeatureMethod, ShallowTowerMethod
from intentrank.ranking.config import DenseFeature, RankerConfig, ShallowTowerConfig
from intentrank.ranking.models.multitask import RANKER_TASKS, MultiTaskRanker


def ensure_dense(dense: list[DenseFeature], name: str, to_main: bool | None) -> list[DenseFeature]:
    """``dense`` with feature ``name`` present (added if missing); ``to_main`` set unless None.

    Args:
        dense: The ranker's dense features (not modified).
        name: Feature to ensure.
        to_main: Whether it feeds the main network; None keeps an existing feature's setting (a new
            one gets False).

    Returns:
        A new list.

    Example:
        >>> from intentrank.ranking.config import DenseFeature
        >>> out = ensure_dense([DenseFeature(name="age_h")], "clickbait_score", to_main=False)
        >>> [(f.name, f.to_main) for f in out]
        [('age_h', True), ('clickbait_score', False)]
    """
    out = list(dense)
    for i, f in enumerate(out):
        if f.name == name:
            if to_main is not None and f.to_main != to_main:
                out[i] = f.model_copy(update={"to_main": to_main})
            return out
    out.append(DenseFeature(name=name, to_main=bool(to_main)))
    return out


def shallow_tower_dense(dense: list[DenseFeature], method: ShallowTowerMethod) -> list[DenseFeature]:
    """``dense`` with the tower's features present and kept out of the main network (``to_main=False``).

    Args:
        dense: The ranker's dense features.
        method: The shallow-tower method (its ``features``).

    Returns:
        A new list.
    """
    for name in method.features:
        dense = ensure_dense(dense, name, False)
    return dense


def shallow_tower_config(method: ShallowTowerMethod) -> ShallowTowerConfig:
    """The ranker's built-in tower (``RankerConfig.shallow_tower``), configured by the method.

    Args:
        method: The shallow-tower method (features, hidden, dropout).

    Returns:
        The tower's config.
    """
    return ShallowTowerConfig(features=list(method.features), hidden=method.hidden, dropout=method.dropout)


def plain_feature_dense(dense: list[DenseFeature], method: PlainFeatureMethod) -> list[DenseFeature]:
    """Baseline: c is an ordinary input of the main network (also at serving).

    Args:
        dense: The ranker's dense features.
        method: The plain-feature method (its ``feature``).

    Returns:
        A new list with the feature present and ``to_main=True``.
    """
    return ensure_dense(dense, method.feature, True)


class HeadMaskedRanker(MultiTaskRanker):
    """A :class:`MultiTaskRanker` whose shallow-tower logit is added to the chosen heads only.

    Same parameters and state dict as the base class (a checkpoint of it loads as a plain
    MultiTaskRanker, which would add the tower's serving-time constant ``tower(0)`` to every head;
    rebuild with :meth:`from_ranker` to keep the masking).

    Args:
        config: The ranker's config (with ``shallow_tower`` set for the mask to matter).
        heads: Heads that receive the tower's logit (of ``click``, ``dwell``, ``conversion``).

    Raises:
        ConfigError: ``heads`` empty or naming an unknown head.

    References:
        "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz), shallow tower ("each task head").
    """

    def __init__(self, config: RankerConfig, heads: Sequence[str] = ("click",)) -> None:
        unknown = sorted(set(heads) - set(RANKER_TASKS))
        if unknown or not heads:
            raise ConfigError(
                f"shallow_tower.heads: unknown or empty {unknown or list(heads)}; use {RANKER_TASKS}"
            )
        super().__init__(config)
        self.heads = tuple(heads)
        mask = torch.tensor([[1.0] if t in self.heads else [0.0] for t in self.tasks])
        self.register_buffer("shallow_mask", mask, persistent=False)

    @classmethod
    def from_ranker(cls, model: MultiTaskRanker, heads: Sequence[str] = ("click",)) -> HeadMaskedRanker:
        """Wrap a trained (or loaded) ranker's weights (copied; training mode kept).

        Args:
            model: The ranker.
            heads: Heads that receive the tower's logit.

        Returns:
            A new :class:`HeadMaskedRanker`.
        """
        out = cls(model.config, heads)
        out.load_state_dict(model.state_dict())
        return out.train(model.training)

    def shallow_logit(self, batch: dict[str, Tensor]) -> Tensor | None:
        """(T, B): the tower's logit on the masked heads, 0 on the others."""
        b = super().shallow_logit(batch)
        return None if b is None else self.shallow_mask * b
