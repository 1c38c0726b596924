"""The trained multi-task ranker as a policy: candidate feature rows → model → formula → post-processors.

For each (user, candidate) pair the policy builds the feature row with the one builder
(:class:`~intentrank.ranking.candidates.CandidateFeatures`, candidates scored as if at ``position`` 0),
runs the model in eval mode (so a shallow tower's inputs are zeroed), ranks by
``formula.score(p_click, time, p_conv)`` and lets ``post_processors`` adjust the (B, K) scores given the
candidates' clickbait scores (the heuristic penalty plugs in here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from intentrank.ranking.candidates import CandidateFeatures
from intentrank.ranking.checkpoint import load_checkpoint
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.history import UserHistory
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.serving.batched import BatchedItems, supports, weights_stamp
from intentrank.serving.incremental import ModelSlot
from intentrank.serving.policy import ItemTable, Policy, SlateRequest

#: ``(scores (B, K), clickbait (B, K)) -> adjusted scores (B, K)``.
PostProcessor = Callable[[np.ndarray, np.ndarray], np.ndarray]


class RankerPolicy(Policy):
    """Ranks candidates by the multi-task model's outputs combined with a :class:`RankingFormula`.

    Args:
        model: a trained :class:`MultiTaskRanker` (any subclass), or the :class:`ModelSlot` an online
            learner publishes to (each request reads the slot's current model once).
        formula: the ranking formula (default: the model config's).
        post_processors: score adjustments applied in order (e.g. the heuristic clickbait penalty).
        name: the policy's name (default: ``ranker(a=..,b=..,g=..)``).
        position: the position candidates are scored at.
        batch_rows: rows per forward pass (bounds memory).
        history: the users' history for the user-history features; the caller feeds it the served
            events (the closed loop does, after each window). Default: an empty history of its own, so
            until someone feeds it every user is served as a new user.
        fast: score plain :class:`MultiTaskRanker` models by the batched fast path
            (:class:`~intentrank.serving.batched.BatchedItems`: item-side inputs computed once per model
            state, the same outputs up to float32 rounding); False: always the generic row builder.

    Example:
        ``RankerPolicy.from_checkpoint("runs/latest/model", formula=RankingFormula(1, 0.8, 0))``
    """

    stochastic = False

    def __init__(
        self,
        model: MultiTaskRanker | ModelSlot,
        formula: RankingFormula | None = None,
        post_processors: Sequence[PostProcessor] = (),
        name: str | None = None,
        position: int = 0,
        batch_rows: int = 65_536,
        history: UserHistory | None = None,
        fast: bool = True,
    ) -> None:
        self.slot = model if isinstance(model, ModelSlot) else ModelSlot(model)
        self.formula = formula or RankingFormula.from_config(self.slot.model.config.formula)
        self.post_processors = tuple(post_processors)
        f = self.formula
        self.name = name or f"ranker(a={f.a:g},b={f.b:g},g={f.g:g})"
        self.position = position
        self.batch_rows = batch_rows
        self.history = history if history is not None else UserHistory(
            self.slot.model.config.labels.long_click_threshold_s
        )
        #: (item-table id, row builder) of the last item table: one tuple, so concurrent requests read a
        #: matching pair
        self._rows: tuple[int, CandidateFeatures] | None = None
        self.fast = fast
        #: ((weights stamp, item-table id), batched item side) of the last model state served fast
        self._batched: tuple[tuple[Any, int], BatchedItems] | None = None

    @property
    def model(self) -> MultiTaskRanker:
        """The model served now."""
        return self.slot.model

    @classmethod
    def from_checkpoint(cls, model_dir: str | Path, **kwargs: Any) -> RankerPolicy:
        """A policy around a saved model (see :func:`load_checkpoint`)."""
        return cls(load_checkpoint(model_dir), **kwargs)

    def candidate_features(self, items: ItemTable, model: MultiTaskRanker) -> CandidateFeatures:
        """The row builder for this item table (item features encoded once per table and feature spec)."""
        key = id(items.items)
        spec = model.config.features  # a swapped-in copy has an equal spec: the cache stays
        cached = self._rows
        if cached is not None and cached[0] == key and cached[1].encoder.spec == spec:
            return cached[1]
        rows = CandidateFeatures(spec, items.items, self.position, history=self.history)
        self._rows = (key, rows)
        return rows

    def batched_items(
        self, items: ItemTable, model: MultiTaskRanker, rows: CandidateFeatures | None = None
    ) -> BatchedItems:
        """The fast path's item side for this item table and ``model``'s current weights (rebuilt when
        either changes: the loop's learner copies new weights into the served model every window)."""
        key = (weights_stamp(model), id(items.items))
        cached = self._batched
        if cached is not None and cached[0] == key and cached[1].model is model:
            return cached[1]
        rows = rows if rows is not None else self.candidate_features(items, model)
        prepared = BatchedItems(model, rows, self.history)
        self._batched = (key, prepared)
        return prepared

    @torch.no_grad()
    def predict(
        self, request: SlateRequest, items: ItemTable, model: MultiTaskRanker | None = None
    ) -> dict[str, np.ndarray]:
        """(B, K) arrays ``p_click``, ``time`` (seconds), ``p_conv``; ``model`` default: the slot's now
        (pass the one read with :meth:`ModelSlot.current` to know its version)."""
        B, K = request.candidates.shape
        model = model if model is not None else self.slot.model  # one read: a swap cannot mix two models
        rows = self.candidate_features(items, model)
        if self.fast and supports(model):
            return self.batched_items(items, model, rows).predict_block(
                request.user_ids, request.candidates, request.slate_index, request.ts, request.day
            )
        cat, dense = rows.encode(
            request.user_ids, request.candidates, request.slate_index, request.ts, request.day
        )
        cat_t, dense_t = torch.from_numpy(cat), torch.from_numpy(dense)
        flat_items = np.asarray(request.candidates).reshape(-1)
        enc = rows.encoder
        has_text = bool(enc.spec.text)
        parts: dict[str, list[torch.Tensor]] = {"p_click": [], "time": [], "p_conv": []}
        n = self.batch_rows
        for s in range(0, B * K, n):
            # n-gram rows per chunk (8·L bytes a candidate: not materialised for the whole request)
            t = torch.from_numpy(rows.encode_text(flat_items[s : s + n])) if has_text else None
            out = model.predict(enc.to_batch(cat_t[s : s + n], dense_t[s : s + n], t))
            for k in parts:
                parts[k].append(out[k])
        return {k: torch.cat(v).numpy().astype(np.float64).reshape(B, K) for k, v in parts.items()}

    def scores(self, request: SlateRequest, items: ItemTable) -> np.ndarray:
        p = self.predict(request, items)
        s = self.formula.score(p["p_click"], p["time"], p["p_conv"])
        if self.post_processors:
            cb = items.clickbait_score[request.candidates]
            for fn in self.post_processors:
                s = np.asarray(fn(s, cb), dtype=np.float64)
        return s
