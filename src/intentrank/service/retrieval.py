"""The live item table and candidate retrieval: fresh + popular + random fill, minus what is excluded.

:class:`LiveItems` holds the catalogue as immutable snapshots (:class:`ItemSnapshot`, an
:class:`~intentrank.serving.policy.ItemTable`): adding or retiring items publishes a new snapshot, so a
request reads one consistent table. Item ids are row indices 0..n-1 (what the ranker's feature builder
needs); new items get the next ids. Popularity is the clicks the service acknowledged per item.

A snapshot also holds what the serving pipeline's retrieval reads (:mod:`intentrank.serving.pipeline`):
live items newest first, overall and per topic, and topic codes; :meth:`LiveItems.popular` is the
popular source.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from intentrank.clickbait.categories import CATEGORIES, categorize
from intentrank.errors import DataError
from intentrank.serving.pipeline import SOURCES
from intentrank.store.schema import ITEM_COLUMNS

__all__ = ["SOURCES", "ItemSnapshot", "LiveItems"]


@dataclass(frozen=True)
class ItemSnapshot:
    """One consistent version of the item table (``item_id`` = row index)."""

    items: pd.DataFrame
    clickbait_score: np.ndarray  # (n,) float64
    category: np.ndarray  # (n,) int8 codes of CATEGORIES
    retired: np.ndarray  # (n,) bool
    live_ids: np.ndarray  # ids not retired, ascending
    fresh_order: np.ndarray  # live ids, newest publish_ts first
    titles: np.ndarray  # (n,) object, for responses without a pandas lookup per request
    publish_ts: np.ndarray  # (n,) float64
    topic_code: np.ndarray  # (n,) int64 codes into topic_names
    topic_names: np.ndarray  # (T,) object, sorted
    topic_fresh: tuple[np.ndarray, ...]  # per topic code: its live ids, newest first

    def __len__(self) -> int:
        return len(self.items)

    @classmethod
    def build(cls, items: pd.DataFrame, retired: np.ndarray) -> ItemSnapshot:
        cb = items["clickbait_score"].to_numpy(np.float64)
        live = np.flatnonzero(~retired).astype(np.int64)
        publish = items["publish_ts"].to_numpy(np.float64)
        fresh = live[np.argsort(-publish[live], kind="stable")]
        names, codes = np.unique(items["topic"].astype(str).to_numpy(), return_inverse=True)
        codes = codes.astype(np.int64)
        by_topic = np.argsort(codes[fresh], kind="stable")  # newest first within each topic
        grouped = fresh[by_topic]
        bounds = np.searchsorted(codes[grouped], np.arange(len(names) + 1))
        topic_fresh = tuple(grouped[bounds[t] : bounds[t + 1]] for t in range(len(names)))
        return cls(
            items, cb, categorize(cb), retired, live, fresh, items["title"].to_numpy(object),
            publish, codes, names.astype(object), topic_fresh,
        )  # fmt: skip

    def category_name(self, item_id: int) -> str:
        return CATEGORIES[int(self.category[item_id])]


class LiveItems:
    """The catalogue the service ranks from; thread-safe; see the module docstring.

    Args:
        items: the initial table with :data:`~intentrank.store.schema.ITEM_COLUMNS`, ``item_id`` 0..n-1.
        seed: seed of the random fill.
        popular_refresh_s: the most-clicked list is recomputed at most this often.
    """

    def __init__(self, items: pd.DataFrame, seed: int = 0, popular_refresh_s: float = 1.0) -> None:
        if list(items.columns) != list(ITEM_COLUMNS):
            raise DataError(f"items must have columns {list(ITEM_COLUMNS)}, got {list(items.columns)}")
        n = len(items)
        if n == 0:
            raise DataError("the item table is empty")
        if not np.array_equal(items["item_id"].to_numpy(), np.arange(n)):
            raise DataError("items: item_id must be 0..n-1 in row order")
        items = items.reset_index(drop=True)
        self._lock = threading.Lock()
        self.snapshot = ItemSnapshot.build(items, np.zeros(n, dtype=bool))
        self._clicks = np.zeros(n, dtype=np.int64)
        self._popular: np.ndarray = np.empty(0, np.int64)
        self._popular_at = -np.inf
        self.popular_refresh_s = float(popular_refresh_s)
        self._rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E7]))
        self._rng_lock = threading.Lock()

    # -- updates -------------------------------------------------------------------------------------
    def add(self, new: pd.DataFrame) -> np.ndarray:
        """Append rows (ITEM_COLUMNS except item_id, which is assigned); returns the new ids."""
        with self._lock:
            snap = self.snapshot
            n = len(snap)
            ids = np.arange(n, n + len(new), dtype=np.int64)
            rows = new.assign(item_id=ids)[list(ITEM_COLUMNS)]
            items = pd.concat([snap.items, rows], ignore_index=True)
            items = items.astype({c: snap.items[c].dtype for c in ITEM_COLUMNS})
            retired = np.concatenate([snap.retired, np.zeros(len(new), dtype=bool)])
            self.snapshot = ItemSnapshot.build(items, retired)
            self._clicks = np.concatenate([self._clicks, np.zeros(len(new), np.int64)])
            return ids

    def retire(self, item_ids: np.ndarray) -> int:
        """Mark items retired (never retrieved again); returns how many were live."""
        with self._lock:
            snap = self.snapshot
            ids = np.asarray(item_ids, np.int64)
            bad = ids[(ids < 0) | (ids >= len(snap))]
            if len(bad):
                raise DataError(f"unknown item_id {int(bad[0])} (items are 0..{len(snap) - 1})")
            retired = snap.retired.copy()
            newly = int((~retired[ids]).sum())
            retired[ids] = True
            self.snapshot = ItemSnapshot.build(snap.items, retired)  # the same frame: features stay cached
            return newly

    def record_clicks(self, item_ids: np.ndarray) -> None:
        """Count acknowledged clicks (the popularity source)."""
        with self._lock:
            np.add.at(self._clicks, np.asarray(item_ids, np.int64), 1)

    # -- retrieval -----------------------------------------------------------------------------------
    def popular(self, k: int) -> np.ndarray:
        """Up to ``k`` live items with clicks, most clicked first (recomputed at most every refresh)."""
        now = time.monotonic()
        with self._lock:
            if now - self._popular_at >= self.popular_refresh_s:
                snap, clicks = self.snapshot, self._clicks
                live = snap.live_ids[clicks[snap.live_ids] > 0]
                self._popular = live[np.argsort(-clicks[live], kind="stable")][:4096]
                self._popular_at = now
            return self._popular[:k]
