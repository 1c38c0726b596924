"""The one builder of the model's feature rows for (user, candidate item) pairs.

Training reads feature rows from the event log (impression columns joined with item columns, see
:func:`intentrank.ranking.features.derive_event_columns`); serving and RL alignment must build the
*same* rows for items that were never shown. :class:`CandidateFeatures` does that in one place: the
features read only from item columns (item id, topic, source, length, clickbait score, the title's
n-grams, …) are encoded once per item table, and the request-dependent ones (user, slate index,
position, time of day, item age, the user's history from a :class:`~intentrank.ranking.history.UserHistory`)
per request. Candidates are encoded as if shown at ``position`` (default 0), the usual way to remove
position bias at serving time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from intentrank.errors import DataError
from intentrank.ranking.config import DERIVED_COLUMNS, HISTORY_COLUMNS, FeatureSpecConfig
from intentrank.ranking.features import FeatureEncoder, derive_event_columns
from intentrank.ranking.history import UserHistory

#: Request (context) columns a feature may read besides the item's own columns.
CONTEXT_COLUMNS: tuple[str, ...] = ("user_id", "slate_index", "position", "ts", "day")


class CandidateFeatures:
    """Encodes (user, candidate) pairs into the packed (cat, dense) arrays the model reads.

    Args:
        spec: the model's feature spec.
        items: the public item table, ``item_id`` = row index 0..n-1 (columns of
            :data:`intentrank.store.schema.ITEM_COLUMNS`).
        position: the position candidates are scored at.
        history: the users' history (read at every request, so updates show at once); needed when the
            spec reads :data:`~intentrank.ranking.config.HISTORY_COLUMNS`.

    Example:
        >>> import pandas as pd
        >>> from intentrank.ranking.config import RankerConfig
        >>> items = pd.DataFrame({"item_id": [0, 1], "title": ["Big news", "Won't believe"],
        ...     "topic": ["a", "b"], "source": ["s", "s"], "publish_ts": [0.0, 0.0], "length": [5, 7]})
        >>> cf = CandidateFeatures(RankerConfig().features, items, history=UserHistory())
        >>> cat, dense = cf.encode(np.array([3]), np.array([[1, 0]]), np.array([0]), np.array([3600.0]))
        >>> cat.shape, dense.shape, cf.encode_text(np.array([[1, 0]])).shape
        ((2, 7), (2, 16), (2, 64))
    """

    def __init__(
        self,
        spec: FeatureSpecConfig,
        items: pd.DataFrame,
        position: int = 0,
        history: UserHistory | None = None,
    ) -> None:
        self.encoder = FeatureEncoder(spec)
        self.position = int(position)
        self.history = history
        n = len(items)
        if "item_id" not in items.columns or not np.array_equal(items["item_id"].to_numpy(), np.arange(n)):
            raise DataError("candidate features: the item table's item_id must be 0..n-1 in row order")
        self.n_items = n
        item_cols = set(items.columns) - {"item_id"}
        self.item_cat = [j for j, f in enumerate(spec.categorical) if f.source in item_cols]
        self.item_dense = [j for j, f in enumerate(spec.dense) if f.source in item_cols]
        self.rest_cat = [j for j in range(len(spec.categorical)) if j not in self.item_cat]
        self.rest_dense = [j for j in range(len(spec.dense)) if j not in self.item_dense]
        sub = self.encoder.subset(self.item_cat, self.item_dense)
        self._icat, self._idense = sub.encode_numpy(items, what="item table")
        missing_text = [f.source for f in spec.text if f.source not in item_cols]
        if missing_text:
            raise DataError(f"candidate features: the item table has no text column(s) {missing_text}")
        self._itext = self.encoder.encode_text(items)  # tokenised once per item table
        self._rest = self.encoder.subset(self.rest_cat, self.rest_dense)
        needed = {spec.categorical[j].source for j in self.rest_cat}
        needed |= {spec.dense[j].source for j in self.rest_dense}
        unknown = needed - set(CONTEXT_COLUMNS) - set(DERIVED_COLUMNS) - set(HISTORY_COLUMNS) - {"item_id"}
        if unknown:
            raise DataError(
                f"candidate features: feature columns {sorted(unknown)} are neither item columns nor request "
                f"context ({', '.join(CONTEXT_COLUMNS)}) nor derived ({', '.join(DERIVED_COLUMNS)}) nor "
                f"user history ({', '.join(HISTORY_COLUMNS)})"
            )
        self._history_cols = sorted(needed & set(HISTORY_COLUMNS))
        if self._history_cols and history is None:
            raise DataError(
                f"candidate features: the feature spec reads user-history columns {self._history_cols}; "
                "pass history=UserHistory(...) (updated with the served events)"
            )
        if self._history_cols and "topic" not in items.columns:
            raise DataError("candidate features: user-history features need the items' topic column")
        self._topic = items["topic"].astype(str).to_numpy(object) if "topic" in items.columns else None
        self._needed = needed
        self._publish_ts = items["publish_ts"].to_numpy(np.float64) if "publish_ts" in items.columns else None

    def encode(
        self,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        slate_index: np.ndarray,
        ts: np.ndarray,
        day: int | np.ndarray = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feature rows of every (user, candidate) pair.

        Args:
            user_ids: (B,) int user ids.
            item_ids: (B, K) int item ids (rows of the item table).
            slate_index: (B,) slate index within the session.
            ts: (B,) request time, seconds since the run's epoch.
            day: day index (scalar or (B,)).

        Returns:
            (cat, dense): (B·K, F) int64 bucket ids and (B·K, D) float32 values, rows in (user, candidate)
            order.
        """
        item_ids = np.asarray(item_ids)
        B, K = item_ids.shape
        item = item_ids.reshape(-1).astype(np.int64)
        spec = self.encoder.spec
        cat = np.empty((B * K, len(spec.categorical)), np.int64)
        dense = np.empty((B * K, len(spec.dense)), np.float32)
        if self.item_cat:
            cat[:, self.item_cat] = self._icat[item]
        if self.item_dense:
            dense[:, self.item_dense] = self._idense[item]
        if self.rest_cat or self.rest_dense:
            cols: dict[str, Any] = {}
            context = {
                "user_id": lambda: np.repeat(np.asarray(user_ids, np.int64), K),
                "item_id": lambda: item,
                "slate_index": lambda: np.repeat(np.asarray(slate_index, np.int64), K),
                "position": lambda: np.full(B * K, self.position, np.int64),
                "day": lambda: np.repeat(np.broadcast_to(np.asarray(day, np.int64), (B,)), K),
            }
            for col in self._needed & set(context):
                cols[col] = context[col]()
            derived = self._needed & set(DERIVED_COLUMNS)
            if "ts" in self._needed or derived or self._history_cols:
                cols["ts"] = np.repeat(np.asarray(ts, np.float64), K)
            if "item_age_h" in derived:
                if self._publish_ts is None:
                    raise DataError("candidate features: item_age_h needs the items' publish_ts")
                cols["publish_ts"] = self._publish_ts[item]
            if self._history_cols:
                assert self.history is not None and self._topic is not None
                users = np.repeat(np.asarray(user_ids, np.int64), K)
                hist = self.history.features(users, self._topic[item], cols["ts"], item)
                for c in self._history_cols:
                    cols[c] = hist[c].to_numpy()
            frame = derive_event_columns(pd.DataFrame(cols))
            rc, rd = self._rest.encode_numpy(frame, validate=False)
            if self.rest_cat:
                cat[:, self.rest_cat] = rc
            if self.rest_dense:
                dense[:, self.rest_dense] = rd
        return cat, dense

    def encode_text(self, item_ids: np.ndarray) -> np.ndarray:
        """(B·K, L) int64 packed title n-gram ids of the candidates (rows in (user, candidate) order; L = 0
        without text features), from the per-item cache."""
        return self._itext[np.asarray(item_ids).reshape(-1).astype(np.int64)]
