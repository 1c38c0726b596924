"""Adapts the multi-task ranker to the RL aligner: score a sampled item set for a logged context.

A *context* is a row of the training log (user, time, slate index): the aligner samples context row
indices alongside item sets, and :class:`RankerSetScorer` builds the (context × item) feature rows
the ranker reads (position 0, as at serving), runs the model and returns the log of the ranking
formula's score, ``a·log p_click + b·log time + g·log p_conv``, computed from the logits so it stays
finite and differentiable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from intentrank.errors import DataError
from intentrank.ranking.features import FeatureEncoder, derive_event_columns
from intentrank.ranking.formula import RankingFormula
from intentrank.store.schema import ITEM_COLUMNS

#: Context columns taken from the log; the rest of a feature row comes from the catalogue.
CONTEXT_COLUMNS = ("user_id", "ts", "slate_index")
MIN_TIME_S = 1e-3


class RankerSetScorer:
    """``(model, item_ids (S, K), context (S,)) -> log ranking score (S, K)`` for a MultiTaskRanker."""

    def __init__(
        self,
        items: pd.DataFrame,
        contexts: pd.DataFrame,
        encoder: FeatureEncoder,
        formula: RankingFormula,
        position: int = 0,
    ) -> None:
        missing = [c for c in CONTEXT_COLUMNS if c not in contexts.columns]
        if missing:
            raise DataError(f"rl_alignment: context frame lacks columns {missing}")
        if len(contexts) == 0:
            raise DataError("rl_alignment: no contexts (the training log is empty)")
        if not np.array_equal(items["item_id"].to_numpy(), np.arange(len(items))):
            raise DataError("rl_alignment: catalogue item_id must be 0..n-1 in row order")
        self.items = {c: items[c].to_numpy() for c in ITEM_COLUMNS if c in items.columns and c != "title"}
        self.contexts = {c: contexts[c].to_numpy() for c in CONTEXT_COLUMNS}
        self.encoder, self.formula, self.position = encoder, formula, position

    @property
    def n_contexts(self) -> int:
        return len(self.contexts["user_id"])

    def frame(self, item_ids: np.ndarray, context: np.ndarray) -> pd.DataFrame:
        """The (S·K) feature rows of the sets, as the feature encoder reads them."""
        S, K = item_ids.shape
        flat = item_ids.reshape(-1)
        ctx = np.repeat(context, K)
        cols = {c: v[flat] for c, v in self.items.items()}
        for c, v in self.contexts.items():
            cols[c] = v[ctx]
        cols["position"] = np.full(S * K, self.position, dtype=np.int64)
        return derive_event_columns(pd.DataFrame(cols))

    def outputs(self, model: nn.Module, item_ids: Tensor, context: Tensor | None) -> dict[str, Tensor]:
        if context is None:
            raise DataError("rl_alignment: the ranker needs contexts (users) to score sets")
        df = self.frame(item_ids.numpy(), context.numpy())
        out = model(self.encoder.encode(df, validate=False))
        return {k: v.reshape(item_ids.shape) for k, v in out.items()}

    def __call__(self, model: nn.Module, item_ids: Tensor, context: Tensor | None) -> Tensor:
        return log_formula_score(self.outputs(model, item_ids, context), self.formula)

    def click_logits(self, model: nn.Module, item_ids: Tensor, context: Tensor | None) -> Tensor:
        """The click logits (for the ``neg_lcb`` reward)."""
        return self.outputs(model, item_ids, context)["click"]


def log_formula_score(out: dict[str, Tensor], formula: RankingFormula) -> Tensor:
    """log(p_click^a · time^b · p_conv^g) from the model's logits (time floored at 1 ms)."""
    s = formula.a * F.logsigmoid(out["click"])
    if formula.b:
        time = torch.expm1(out["dwell"]).clamp(min=MIN_TIME_S)
        s = s + formula.b * torch.log(time)
    if formula.g:
        s = s + formula.g * F.logsigmoid(out["conversion"])
    return s
