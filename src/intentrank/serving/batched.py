"""Scoring many users' candidates at once on the fast path: the simulator's and the loop's request shape.

The feed service scores one user per request with :class:`~intentrank.serving.fast.PreparedItems`
(x0's item-side columns precomputed per model and item table). The simulator asks for B users × K
candidates at once, and in the closed loop the model changes after every window, so precomputing the whole
(growing) item table per model would cost more than the window's scoring. :class:`BatchedItems` reuses
``PreparedItems`` (the same x0 layout, request columns, transforms and forward) with two changes:

1. the item-side rows are computed lazily, only for the items that are candidates (the live catalogue,
   a few thousand of the table's items), once per model state, and kept until the weights change (every
   parameter's in-place version counter is the stamp: an optimiser step or a ``copy_`` into the served
   model invalidates the rows);
2. a request is a whole (B, K) block: the request-constant embeddings (user id, slate index, position,
   hour) are gathered for the B users in one go and every dense request column (the users' history
   totals, the per-candidate topic/item history, the item's age) is filled for the B·K rows from one
   history lookup, with NumPy, then the backbone and towers run once.

The result equals :meth:`~intentrank.serving.ranker.RankerPolicy.predict`'s generic path up to float32
rounding (the same x0 columns and layers; ``tests/serving/test_batched.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from intentrank.ranking.candidates import CandidateFeatures
from intentrank.ranking.config import HISTORY_COLUMNS
from intentrank.ranking.features import SECONDS_PER_DAY, hash_buckets
from intentrank.ranking.history import UserHistory
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.serving.fast import PreparedItems, _history_arrays, _transform, supports

__all__ = ["BatchedItems", "supports", "weights_stamp"]


def weights_stamp(model: torch.nn.Module) -> tuple[int, int]:
    """(id, Σ in-place versions of the parameters): changes whenever the weights are modified in place."""
    return id(model), sum(p._version for p in model.parameters())


class BatchedItems(PreparedItems):
    """x0's item side for the items asked about so far under one model state, and the (B, K) predict.

    Args:
        model: the ranker (:func:`~intentrank.serving.fast.supports` must hold).
        rows: the item table's :class:`CandidateFeatures` for ``model``'s spec.
        history: the users' history (read at every request), None when the spec reads none.
    """

    def __init__(self, model: MultiTaskRanker, rows: CandidateFeatures, history: UserHistory | None) -> None:
        # not split: the item-side products would be taken of rows not computed yet (and cost n × a
        # floats per model state for a path that runs the plain forward)
        super().__init__(model, rows, history, split=False)
        self.stamp = weights_stamp(model)

    def _item_side(self) -> torch.Tensor:
        """An uncomputed (n, d) table; rows are filled on demand by :meth:`ensure`."""
        n = self.rows.n_items
        probe = self.model.inputs(self.rows.encoder.to_batch(*self._item_batch(np.arange(min(n, 1)))))
        self._ready = np.zeros(n, bool)
        return torch.empty((n, probe.shape[1]))

    def ensure(self, item_ids: np.ndarray) -> None:
        """Compute the item-side rows of ``item_ids`` not computed yet."""
        ids = np.unique(np.asarray(item_ids, np.int64))
        todo = ids[~self._ready[ids]]
        if len(todo) == 0:
            return
        m = self.model
        with torch.inference_mode():
            x = m.inputs(self.rows.encoder.to_batch(*self._item_batch(todo)))
            for j, _ in self.req_cat:
                x[:, j * self.dim : (j + 1) * self.dim] = 0.0
            for c in self.const_cols + self.row_cols:
                x[:, c.x0] = 0.0
            self.x_item[torch.from_numpy(todo)] = x
        self._ready[todo] = True

    def prior(self) -> dict[str, np.ndarray]:
        self.ensure(np.arange(self.rows.n_items))
        return super().prior()

    def item_vectors(self) -> np.ndarray:
        self.ensure(np.arange(self.rows.n_items))
        return super().item_vectors()

    def predict_block(
        self,
        user_ids: np.ndarray,
        candidates: np.ndarray,
        slate_index: np.ndarray,
        ts: np.ndarray,
        day: int | np.ndarray = 0,
    ) -> dict[str, np.ndarray]:
        """(B, K) ``p_click``, ``time`` (seconds), ``p_conv`` of B users' candidates (B, K)."""
        cand = np.asarray(candidates, np.int64)
        B, K = cand.shape
        flat = cand.reshape(-1)
        self.ensure(flat)
        users = np.asarray(user_ids, np.int64)
        ts = np.broadcast_to(np.asarray(ts, np.float64), (B,))
        ctx: dict[str, np.ndarray] = {
            "user_id": users,
            "slate_index": np.asarray(slate_index, np.int64).reshape(B),
            "position": np.full(B, self.rows.position, np.int64),
            "day": np.broadcast_to(np.asarray(day, np.int64), (B,)),
            "ts": ts,
            "hour": (np.mod(ts, SECONDS_PER_DAY) // 3600.0).astype(np.int64),
        }
        with torch.inference_mode():
            x0 = self.x_item.index_select(0, torch.from_numpy(flat))
            if self.req_cat:  # the request-constant embeddings, per user, added to the user's K rows
                m = self.model
                table, offsets = m.embedding.table.weight, m.embedding.offsets
                vec = torch.zeros(B, x0.shape[1])
                for j, f in self.req_cat:
                    v = ctx[f.source]
                    b = hash_buckets(v, f.buckets) if f.hashed else np.clip(v, 0, f.buckets - 1)
                    vec[:, j * self.dim : (j + 1) * self.dim] = table[int(offsets[j]) + torch.from_numpy(b)]
                x0.view(B, K, -1).add_(vec.unsqueeze(1))
            cols = self.const_cols + self.row_cols
            if cols:
                rows_ts = np.repeat(ts, K)
                hist: Any = {}
                if self._needs_history:
                    assert self.history is not None
                    hist = _history_arrays(
                        self.history, np.repeat(users, K), self.topic_names[self.topic_code[flat]],
                        rows_ts, flat,
                    )  # fmt: skip
                vals = np.empty((B * K, len(cols)), np.float32)
                for k, c in enumerate(cols):
                    if c.source == "item_age_h":
                        assert self.publish_ts is not None
                        v = np.clip(rows_ts - self.publish_ts[flat], 0.0, None) / 3600.0
                    elif c.source in HISTORY_COLUMNS:
                        v = np.asarray(hist[c.source], np.float64)
                    else:
                        v = np.repeat(ctx[c.source].astype(np.float64), K)
                    vals[:, k] = _transform(v, c)
                x0[:, torch.tensor([c.x0 for c in cols], dtype=torch.long)] = torch.from_numpy(vals)
            out = self._forward(x0)
        return {k: v.reshape(B, K) for k, v in out.items()}
