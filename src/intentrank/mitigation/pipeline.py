"""Apply a :class:`MitigationConfig` to the ranking stack: the one place the methods meet.

A configured mitigation touches up to four stages, and composes by stage:

=================  ==============================================  =====================================
stage              what                                            methods
=================  ==============================================  =====================================
ranker config      which features the model reads, shallow tower   ``plain_feature``, ``shallow_tower``
trainer hooks      ``extra_losses``, ``sample_weight_fn``,         ``aux_loss``, ``downweight``,
                   ``extra_modules``                               ``adversarial``
alignment          post-training actor–critic update               ``rl_alignment``
serving            score post-processors / policy wrapper          ``heuristic``
=================  ==============================================  =====================================

Typical use::

    plan = MitigationPlan(cfg.mitigation)
    trainer = plan.make_trainer(cfg.ranker)              # mitigated config and model
    result = plan.fit(trainer, events, items)            # hooks + alignment
    policy = RankerPolicy(trainer.model_, ..., post_processors=plan.post_processors())  # intentrank.serving
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import ValidationError
from torch import Tensor, nn

from intentrank.errors import ConfigError, DataError
from intentrank.mitigation.adversarial import AdversarialHead, build_adversarial
from intentrank.mitigation.aux_loss import AuxClickbaitLoss, ClickbaitDownweight
from intentrank.mitigation.config import (
    AdversarialMethod,
    AuxLossMethod,
    DownweightMethod,
    HeuristicMethod,
    MitigationConfig,
    PlainFeatureMethod,
    RLAlignmentMethod,
    ShallowTowerMethod,
)
from intentrank.mitigation.heuristic import HeuristicPenalty
from intentrank.mitigation.ranker_adapter import CONTEXT_COLUMNS, RankerSetScorer
from intentrank.mitigation.rl_alignment import AlignmentReport, ItemSetSampler, RLAligner
from intentrank.mitigation.shallow_tower import (
    HeadMaskedRanker,
    ensure_dense,
    plain_feature_dense,
    shallow_tower_config,
    shallow_tower_dense,
)
from intentrank.mitigation.validation import describe_validation_error
from intentrank.ranking.config import RankerConfig
from intentrank.ranking.events import EventSource, load_events
from intentrank.ranking.features import FeatureEncoder
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.history import UserHistory
from intentrank.ranking.models.multitask import RANKER_TASKS, MultiTaskRanker
from intentrank.ranking.trainer import Trainer


@dataclass
class TrainerHooks:
    """Keyword arguments for ``Trainer.fit`` (``**hooks.as_kwargs()``)."""

    extra_losses: list[Callable[[dict[str, Tensor], dict[str, Tensor]], Tensor]] = field(default_factory=list)
    sample_weight_fn: Callable[[dict[str, Tensor]], Tensor] | None = None
    extra_modules: list[nn.Module] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {
            "extra_losses": list(self.extra_losses),
            "sample_weight_fn": self.sample_weight_fn,
            "extra_modules": list(self.extra_modules),
        }


def parse_mitigation(data: MitigationConfig | dict[str, Any] | Sequence[Any] | None) -> MitigationConfig:
    """A MitigationConfig from a config object, a mapping, a list of method entries or None (= none).

    A list may hold method names (``["shallow_tower", "heuristic"]``, defaults) or mappings.
    Bad values raise :class:`ConfigError` naming the field.
    """
    if isinstance(data, MitigationConfig):
        return data
    if data is None:
        return MitigationConfig()
    if isinstance(data, dict):
        payload = data
    else:
        payload = {"methods": [{"method": m} if isinstance(m, str) else m for m in data]}
    try:
        return MitigationConfig.model_validate(payload)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, "mitigation")) from None


class MitigationPlan:
    """What a MitigationConfig does to the ranker config, the trainer, the model and serving."""

    def __init__(self, config: MitigationConfig | dict[str, Any] | Sequence[Any] | None = None) -> None:
        self.config = parse_mitigation(config)
        self.alignment_report: AlignmentReport | None = None

    @property
    def names(self) -> list[str]:
        return self.config.names()

    @property
    def changes_training(self) -> bool:
        """True when a method acts on the model or its training (all but the serving-only ``heuristic``):
        a mitigated arm then needs its own model."""
        return any(m.method != "heuristic" for m in self.config.methods)  # type: ignore[attr-defined]

    def penalty(self) -> HeuristicPenalty | None:
        """The serving-time clickbait penalty (``heuristic``), or None."""
        h = self._get(HeuristicMethod)
        return None if h is None else HeuristicPenalty.from_config(h)

    def _get(self, cls: type) -> Any:
        return next((m for m in self.config.methods if isinstance(m, cls)), None)

    # -- stage 1: the ranker config ------------------------------------------------------------------
    def ranker_config(self, base: RankerConfig | None = None) -> RankerConfig:
        """``base`` with the features and shallow tower the methods need (a new object)."""
        base = base or RankerConfig()
        dense = [f.model_copy() for f in base.features.dense]
        tower = self._get(ShallowTowerMethod)
        plain = self._get(PlainFeatureMethod)
        for m in (self._get(AuxLossMethod), self._get(DownweightMethod), self._get(AdversarialMethod)):
            if m is not None:
                dense = ensure_dense(dense, m.feature, None)  # in the batch; main-network use unchanged
        if plain is not None:
            dense = plain_feature_dense(dense, plain)
        data = base.model_dump()
        if tower is not None:
            dense = shallow_tower_dense(dense, tower)
            data["shallow_tower"] = shallow_tower_config(tower).model_dump()
        data["features"] = base.features.model_copy(update={"dense": dense}).model_dump()
        try:
            return RankerConfig.model_validate(data)
        except ValidationError as err:
            raise ConfigError(describe_validation_error(err, "ranker")) from None

    def build_model(self, config: RankerConfig) -> MultiTaskRanker:
        """The ranker for ``config``: a :class:`HeadMaskedRanker` when the shallow tower feeds only some
        heads (the Trainer calls this under its seed)."""
        tower = self._get(ShallowTowerMethod)
        if tower is not None and set(tower.heads) != set(RANKER_TASKS):
            return HeadMaskedRanker(config, tower.heads)
        return MultiTaskRanker(config)

    def make_trainer(self, base: RankerConfig | None = None, **trainer_params: Any) -> Trainer:
        """A Trainer with the mitigated ranker config and model factory (``trainer_params``: the other
        Trainer parameters, e.g. ``threads``, ``warm_start``)."""
        return Trainer(self.ranker_config(base), model_factory=self.build_model, **trainer_params)

    # -- stage 2: trainer hooks ----------------------------------------------------------------------
    def trainer_hooks(self, model: nn.Module) -> TrainerHooks:
        """Losses, row weights and extra modules for ``Trainer.fit`` of ``model``."""
        hooks = TrainerHooks()
        aux = self._get(AuxLossMethod)
        if aux is not None:
            hooks.extra_losses.append(AuxClickbaitLoss.from_config(aux))
        dw = self._get(DownweightMethod)
        if dw is not None:
            hooks.sample_weight_fn = ClickbaitDownweight.from_config(dw)
        adv = self._get(AdversarialMethod)
        if adv is not None:
            head, loss = build_adversarial(model, adv, in_dim=encoder_width(model))
            hooks.extra_modules.append(head)
            hooks.extra_losses.append(loss)
        return hooks

    # -- stage 3: alignment --------------------------------------------------------------------------
    def align(
        self,
        model: nn.Module,
        items: pd.DataFrame,
        contexts: pd.DataFrame,
        formula: RankingFormula | None = None,
        popularity: np.ndarray | None = None,
        seed: int = 0,
        history: UserHistory | None = None,
    ) -> AlignmentReport | None:
        """RL-align ``model`` in place (no-op without ``rl_alignment``); items = the catalogue,
        contexts = logged (user_id, ts, slate_index) rows to rank sets for; ``history``: the users'
        history (for a spec with user-history features)."""
        rl = self._get(RLAlignmentMethod)
        if rl is None:
            return None
        config = getattr(model, "config", None)
        if not isinstance(config, RankerConfig):
            raise ConfigError("rl_alignment: the model has no RankerConfig (use RLAligner for other actors)")
        formula = formula or RankingFormula.from_config(config.formula)
        scorer = RankerSetScorer(items, contexts, FeatureEncoder(config.features), formula, history=history)
        c = items["clickbait_score"].to_numpy(np.float64)
        sampler = ItemSetSampler(
            c, strategy=rl.sampling, popularity=popularity, power=rl.sampling_power,
            contexts=np.arange(scorer.n_contexts),
        )  # fmt: skip
        aligner = RLAligner(sampler, rl, set_scorer=scorer, click_scorer=scorer.click_logits, seed=seed)
        self.alignment_report = aligner.align(model)
        return self.alignment_report

    def align_on_log(
        self,
        model: nn.Module,
        events: EventSource,
        items: pd.DataFrame | None,
        formula: RankingFormula | None = None,
        popularity: np.ndarray | None = None,
        seed: int = 0,
        long_click_threshold_s: float = 30.0,
    ) -> AlignmentReport | None:
        """:meth:`align` with the contexts, popularity and user history taken from a log ``events`` (a
        trained model re-aligned without retraining: the tuner's RL trials, an arm's alignment cadence)."""
        rl = self._get(RLAlignmentMethod)
        if rl is None:
            return None
        if items is None:
            raise DataError("rl_alignment needs the item catalogue (items=...)")
        df = load_events(events, items)  # a DataFrame gets the item columns it lacks (topic, title)
        contexts = df[list(CONTEXT_COLUMNS)].drop_duplicates(["user_id", "slate_index"], ignore_index=True)
        if popularity is None and rl.sampling == "popularity":
            counts = np.bincount(df["item_id"].to_numpy(np.int64), minlength=len(items))
            popularity = counts.astype(np.float64)
        # the contexts' users as of the end of the log (alignment scores sets, it is not evaluated)
        history = UserHistory(long_click_threshold_s).update(df)
        return self.align(model, items, contexts, formula, popularity, seed=seed, history=history)

    # -- stage 4: serving ----------------------------------------------------------------------------
    def post_processors(self) -> list[HeuristicPenalty]:
        """Score post-processors ``(scores, clickbait) -> scores`` (for ``RankerPolicy``)."""
        h = self._get(HeuristicMethod)
        return [] if h is None else [HeuristicPenalty.from_config(h)]

    # -- all training-side stages at once ------------------------------------------------------------
    def fit(
        self,
        trainer: Trainer,
        events: EventSource,
        items: pd.DataFrame | None = None,
        popularity: np.ndarray | None = None,
        **fit_kwargs: Any,
    ) -> dict[str, Any]:
        """``trainer.fit`` with the hooks, then the alignment step; returns the trainer's ``fit_report_``
        (+ ``"alignment"``). ``items`` (the catalogue, item_id 0..n-1) is needed for ``rl_alignment``.
        A trainer not made by :meth:`make_trainer` gets this plan's model factory."""
        if trainer.model_factory is None:
            trainer.model_factory = self.build_model
        trainer.fit(events, items, **fit_kwargs, hooks_for=lambda m: self.trainer_hooks(m).as_kwargs())
        result = trainer.fit_report_
        if self._get(RLAlignmentMethod) is not None:
            rep = self.align_on_log(
                trainer.model_, events, items, trainer.formula, popularity, seed=trainer.config_.train.seed,
                long_click_threshold_s=trainer.config_.labels.long_click_threshold_s,
            )  # fmt: skip
            result["alignment"] = rep.as_dict() if rep is not None else None
        trainer.model_.eval()
        return result


def encoder_width(model: nn.Module) -> int:
    """Width of ``model.encode`` (probed on one all-zero row of the model's feature spec)."""
    config = getattr(model, "config", None)
    if not isinstance(config, RankerConfig):
        raise ConfigError("adversarial: cannot infer the representation width; pass in_dim")
    spec = config.features
    enc = FeatureEncoder(spec)
    batch = enc.to_batch(
        torch.zeros(1, len(spec.categorical), dtype=torch.long), torch.zeros(1, len(spec.dense)),
        torch.zeros(1, enc.text_width, dtype=torch.long),
    )  # fmt: skip
    was = model.training
    model.eval()
    with torch.no_grad():
        width = int(model.encode(batch).shape[-1])  # type: ignore[operator]
    model.train(was)
    return width


__all__ = ["AdversarialHead", "MitigationPlan", "TrainerHooks", "encoder_width", "parse_mitigation"]
