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
    """``dense`` with feature ``name`` present (added if missing); ``to_main`` set unless None."""
    out = list(dense)
    for i, f in enumerate(out):
        if f.name == name:
            if to_main is not None and f.to_main != to_main:
                out[i] = f.model_copy(update={"to_main": to_main})
            return out
    out.append(DenseFeature(name=name, to_main=bool(to_main)))
    return out


def shallow_tower_dense(dense: list[DenseFeature], method: ShallowTowerMethod) -> list[DenseFeature]:
    """The tower's features only go to the tower (not to the main network)."""
    for name in method.features:
        dense = ensure_dense(dense, name, False)
    return dense


def shallow_tower_config(method: ShallowTowerMethod) -> ShallowTowerConfig:
    """The ranker's built-in tower, configured by the method."""
    return ShallowTowerConfig(features=list(method.features), hidden=method.hidden, dropout=method.dropout)


def plain_feature_dense(dense: list[DenseFeature], method: PlainFeatureMethod) -> list[DenseFeature]:
    """Baseline: c is an ordinary input of the main network (also at serving)."""
    return ensure_dense(dense, method.feature, True)


class HeadMaskedRanker(MultiTaskRanker):
    """A :class:`MultiTaskRanker` whose shallow-tower logit is added to the chosen heads only.

    Same parameters and state dict as the base class (a checkpoint of it loads as a plain
    MultiTaskRanker, which would add the tower's serving-time constant ``tower(0)`` to every head;
    rebuild with :meth:`from_ranker` to keep the masking).
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
        """Wrap a trained (or loaded) ranker's weights."""
        out = cls(model.config, heads)
        out.load_state_dict(model.state_dict())
        return out.train(model.training)

    def shallow_logit(self, batch: dict[str, Tensor]) -> Tensor | None:
        """(T, B): the tower's logit on the masked heads, 0 on the others."""
        b = super().shallow_logit(batch)
        return None if b is None else self.shallow_mask * b
