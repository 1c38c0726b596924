"""Adapts the multi-task ranker to the RL aligner: score a sampled item set for a logged context.

A *context* is a row of the training log (user, time, slate index): the aligner samples context row
indices alongside item sets, and :class:`RankerSetScorer` builds the (context × item) feature rows with
the one candidate-row builder (:class:`intentrank.ranking.candidates.CandidateFeatures`, position 0 as at
serving), runs the model and returns the ranking formula's log score
(:meth:`intentrank.ranking.formula.RankingFormula.log_score`), finite and differentiable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from intentrank.errors import DataError
from intentrank.ranking.candidates import CandidateFeatures
from intentrank.ranking.features import FeatureEncoder
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.history import UserHistory

#: Context columns taken from the log; the rest of a feature row comes from the catalogue.
CONTEXT_COLUMNS = ("user_id", "ts", "slate_index")


class RankerSetScorer:
    """``(model, item_ids (S, K), context (S,)) -> log ranking score (S, K)`` for a MultiTaskRanker
    (``history``: the users' history, for a spec with user-history features)."""

    def __init__(
        self,
        items: pd.DataFrame,
        contexts: pd.DataFrame,
        encoder: FeatureEncoder,
        formula: RankingFormula,
        position: int = 0,
        history: UserHistory | None = None,
    ) -> None:
        missing = [c for c in CONTEXT_COLUMNS if c not in contexts.columns]
        if missing:
            raise DataError(f"rl_alignment: context frame lacks columns {missing}")
        if len(contexts) == 0:
            raise DataError("rl_alignment: no contexts (the training log is empty)")
        if not np.array_equal(items["item_id"].to_numpy(), np.arange(len(items))):
            raise DataError("rl_alignment: catalogue item_id must be 0..n-1 in row order")
        self.rows = CandidateFeatures(encoder.spec, items, position, history=history)
        self.contexts = {c: contexts[c].to_numpy() for c in CONTEXT_COLUMNS}
        self.encoder, self.formula = encoder, formula

    @property
    def n_contexts(self) -> int:
        return len(self.contexts["user_id"])

    def outputs(self, model: nn.Module, item_ids: Tensor, context: Tensor | None) -> dict[str, Tensor]:
        if context is None:
            raise DataError("rl_alignment: the ranker needs contexts (users) to score sets")
        ctx = context.numpy()
        cat, dense = self.rows.encode(
            self.contexts["user_id"][ctx], item_ids.numpy(), self.contexts["slate_index"][ctx],
            self.contexts["ts"][ctx],
        )  # fmt: skip
        text = torch.from_numpy(self.rows.encode_text(item_ids.numpy())) if self.encoder.spec.text else None
        out = model(self.encoder.to_batch(torch.from_numpy(cat), torch.from_numpy(dense), text))
        return {k: v.reshape(item_ids.shape) for k, v in out.items()}

    def __call__(self, model: nn.Module, item_ids: Tensor, context: Tensor | None) -> Tensor:
        out = self.outputs(model, item_ids, context)
        return self.formula.log_score(out)

    def click_logits(self, model: nn.Module, item_ids: Tensor, context: Tensor | None) -> Tensor:
        """The click logits (for the ``neg_lcb`` reward)."""
        return self.outputs(model, item_ids, context)["click"]
