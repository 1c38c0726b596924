"""The four-stage feed pipeline: retrieval → filtering → scoring → ordering, for one user's next slate.

1. **Retrieval** from several sources (:data:`SOURCES`): the newest live items, the most clicked ones,
   the newest items of the user's most clicked topics, the items whose title embedding is closest to
   the user's recently clicked titles (cosine to their mean; the served model's learned title encoder,
   or its item-side input vector when the spec reads no title), and a uniform random fill up to the
   candidate count. Every candidate carries its source (``explain`` shows it).
2. **Filtering**, before and during retrieval (one boolean mask over the catalogue): retired (blocked)
   items, expired items (older than ``max_item_age_s``), items shown in this session or to this user
   recently, items the user clicked. A source never returns a filtered item, so the quotas hold.
3. **Scoring**: the multi-task model's p_click, E[time | click], p_conv per candidate, by the fast path
   (:class:`~intentrank.serving.fast.PreparedItems`: item-side inputs precomputed per model and
   catalogue) or the generic one (:meth:`RankerPolicy.predict`); optionally two-stage (``prerank``).
4. **Ordering**: score = the ranking formula × the arm's clickbait penalty factors f(c) (any
   post-processor with ``f``); then top-S (with an optional per-topic cap) or a Plackett–Luce sample
   with propensities (:func:`~intentrank.serving.ordering.select_slates`).

The feed service runs it per request (:mod:`intentrank.service.state`); its parts are plain functions of
arrays, so a simulator or a batch job can run the same stages.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

from intentrank.ranking.features import SECONDS_PER_DAY
from intentrank.ranking.history import (
    ITEM_SUMS,
    UserHistory,
    _assemble,
    _check,
    _item_values,
    _outcomes,
)
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.serving.config import CandidatesConfig, DiversityConfig, FilteringConfig, ScoringConfig
from intentrank.serving.fast import PreparedCache, PreparedItems, supports
from intentrank.serving.ordering import select_slates
from intentrank.serving.policy import SlateRequest
from intentrank.serving.ranker import RankerPolicy

#: Retrieval source names; retrieval returns int8 codes indexing this tuple.
SOURCES: tuple[str, ...] = ("fresh", "popular", "topic", "similar", "random")
FRESH, POPULAR, TOPIC, SIMILAR, RANDOM = range(5)


class Catalogue(Protocol):
    """What the pipeline reads of one catalogue snapshot (the service's ``ItemSnapshot`` is one)."""

    items: Any  # the item frame (item_id = row index)
    clickbait_score: np.ndarray  # (n,)
    retired: np.ndarray  # (n,) bool: blocked
    live_ids: np.ndarray  # ids not retired
    fresh_order: np.ndarray  # live ids, newest first
    publish_ts: np.ndarray  # (n,) float64
    topic_code: np.ndarray  # (n,) int codes into topic_names
    topic_names: np.ndarray  # (T,) object
    topic_fresh: Sequence[np.ndarray]  # per topic code: live ids, newest first

    def __len__(self) -> int: ...


@dataclass
class UserSignals:
    """What the pipeline knows of the requesting user (all read-your-writes state of the caller).

    Attributes:
        user_id, slate_index, ts, day: the request.
        exclude: item ids filtered out for this user (shown in the session or recently, clicked).
        topic_clicks: (T,) the user's clicks per topic code (from the user history), or None.
        recent_clicks: the user's most recently clicked item ids, newest first.
    """

    user_id: int
    slate_index: int
    ts: float
    day: int
    exclude: np.ndarray
    topic_clicks: np.ndarray | None = None
    recent_clicks: np.ndarray | None = None


class SharedHistory(UserHistory):
    """A :class:`UserHistory` that requests read while events are applied (one lock around each
    update and read), with a bound on the users it keeps (:meth:`trim`)."""

    def __init__(self, long_click_threshold_s: float = 30.0) -> None:
        super().__init__(long_click_threshold_s)
        self._lock = threading.RLock()

    def update(self, events: Any) -> SharedHistory:
        with self._lock:
            super().update(events)
        return self

    def features(
        self, user_ids: np.ndarray, candidate_topics: np.ndarray, ts: np.ndarray, item_ids: np.ndarray
    ) -> Any:
        with self._lock:
            return super().features(user_ids, candidate_topics, ts, item_ids)

    def trim(self, max_users: int) -> int:
        """Keep the ``max_users`` most recently active users (by last active day, then last click);
        returns how many were dropped (a dropped user is served as a new user)."""
        with self._lock:
            n = len(self._users)
            if n <= max_users:
                return 0
            u = self._users
            order = np.lexsort((u["last_click_ts"].to_numpy(), u["last_day"].to_numpy()))
            keep = u.index[order[n - max_users :]]
            self._users = u.loc[keep.sort_values()]
            if len(self._topics):
                self._topics = self._topics[self._topics.index.get_level_values(0).isin(keep)]
            return n - max_users


class ServingHistory:
    """The users' history for serving: the same values as :class:`UserHistory` (``features``), kept in
    per-user dictionaries so an update costs O(events in the batch) and a request's lookup O(its rows),
    whatever the number of users (the pandas tables of ``UserHistory`` are re-indexed in full on every
    update: ~50 ms per 1,000-event batch at 100k users). Thread-safe; at most ``max_users`` users, the
    least recently updated dropped (a dropped user is served as a new user).

    Example:
        >>> import pandas as pd
        >>> h = ServingHistory()
        >>> _ = h.update(pd.DataFrame({"user_id": [1, 1], "ts": [0.0, 10.0], "topic": ["tech", "sport"],
        ...     "item_id": [0, 1], "click": [True, False], "bounce": [False, False], "dwell_s": [60.0, 0.0]}))
        >>> f = h.features(np.array([1, 2]), np.array(["tech", "tech"]), np.array([3600.0, 3600.0]),
        ...     np.array([0, 0]))
        >>> f[["user_topic_reads", "user_impressions", "hours_since_last_click"]].to_numpy().tolist()
        [[1.0, 2.0, 1.0], [0.0, 0.0, 720.0]]
    """

    def __init__(self, long_click_threshold_s: float = 30.0, max_users: int = 1_000_000) -> None:
        self.long_click_threshold_s = float(long_click_threshold_s)
        self.max_users = int(max_users)
        self._lock = threading.Lock()
        #: user -> [impressions, clicks, last_click_ts, active_days, last_day]
        self._users: OrderedDict[int, list[float]] = OrderedDict()
        #: user -> topic -> [impressions, clicks, reads]
        self._topics: dict[int, dict[str, list[float]]] = {}
        #: item id -> ITEM_SUMS (impressions, clicks, reads, bounces, Σ log1p dwell of clicks), all users
        self._items = np.zeros((0, len(ITEM_SUMS)))
        #: user -> source code -> [impressions, clicks]; item id -> source code (-1: not seen yet)
        self._sources: dict[int, dict[int, list[float]]] = {}
        self._source_codes: dict[str, int] = {}
        self._item_source = np.zeros(0, np.int64)
        self.events = 0

    def __len__(self) -> int:
        return len(self._users)

    def update(self, events: Any) -> ServingHistory:
        """Consume an event frame (impressions joined with items' ``topic``); returns self."""
        if len(events) == 0:
            return self
        _check(events, "user history")
        user = events["user_id"].to_numpy(np.int64)
        ts = events["ts"].to_numpy(np.float64)
        click, read = _outcomes(events, self.long_click_threshold_s)
        day = np.floor(ts / SECONDS_PER_DAY).astype(np.int64)
        topic = events["topic"].astype(str).to_numpy(object)
        uniq, inv = np.unique(user, return_inverse=True)
        imps = np.bincount(inv, minlength=len(uniq)).astype(np.float64)
        clks = np.bincount(inv, weights=click, minlength=len(uniq))
        last_click = np.full(len(uniq), -np.inf)
        np.maximum.at(last_click, inv[click], ts[click])
        d0 = int(day.min())
        pair = np.unique(inv.astype(np.int64) << 32 | (day - d0))  # distinct (user, day) of the batch
        days_of: dict[int, list[int]] = {}
        for k, d in zip((pair >> 32).tolist(), ((pair & 0xFFFFFFFF) + d0).tolist(), strict=True):
            days_of.setdefault(k, []).append(d)
        item = events["item_id"].to_numpy(np.int64)
        item_values = _item_values(events, click, read)
        with self._lock:
            for k, u in enumerate(uniq.tolist()):
                row = self._users.get(u)
                if row is None:
                    row = self._users[u] = [0.0, 0.0, -np.inf, 0.0, -1.0]
                else:
                    self._users.move_to_end(u)
                prev_last_day = row[4]
                row[0] += imps[k]
                row[1] += clks[k]
                row[2] = max(row[2], last_click[k])
                new_days = [d for d in days_of[k] if d > prev_last_day]
                row[3] += len(new_days)
                row[4] = max(prev_last_day, float(max(days_of[k])))
            for u, tp, c, r in zip(user.tolist(), topic.tolist(), click.tolist(), read.tolist(), strict=True):
                t = self._topics.setdefault(u, {}).setdefault(tp, [0.0, 0.0, 0.0])
                t[0] += 1.0
                t[1] += float(c)
                t[2] += float(r)
            if len(item) and item.max() >= len(self._items):
                grown = np.zeros((int(item.max()) + 1, len(ITEM_SUMS)))
                grown[: len(self._items)] = self._items
                self._items = grown
            np.add.at(self._items, item, item_values)
            self._update_sources(user, item, click, events)
            while len(self._users) > self.max_users:
                old, _ = self._users.popitem(last=False)
                self._topics.pop(old, None)
                self._sources.pop(old, None)
            self.events += len(events)
        return self

    def trim(self, max_users: int) -> int:
        """Keep the ``max_users`` most recently updated users; returns how many were dropped."""
        with self._lock:
            n = 0
            while len(self._users) > max_users:
                old, _ = self._users.popitem(last=False)
                self._topics.pop(old, None)
                self._sources.pop(old, None)
                n += 1
            return n

    def _update_sources(self, user: np.ndarray, item: np.ndarray, click: np.ndarray, events: Any) -> None:
        """Per (user, source) impressions and clicks and the items' source codes (under the lock), from
        events with a ``source`` column (as ``UserHistory`` keeps them)."""
        if "source" not in events.columns:
            return
        names, inv = np.unique(events["source"].astype(str).to_numpy(object), return_inverse=True)
        codes = np.array([self._source_codes.setdefault(n, len(self._source_codes)) for n in names.tolist()])
        code = codes[inv.reshape(-1)]
        if len(item) and item.max() >= len(self._item_source):
            grown = np.full(int(item.max()) + 1, -1, np.int64)
            grown[: len(self._item_source)] = self._item_source
            self._item_source = grown
        self._item_source[item] = code
        for u, c, k in zip(user.tolist(), code.tolist(), click.tolist(), strict=True):
            row = self._sources.setdefault(u, {}).setdefault(c, [0.0, 0.0])
            row[0] += 1.0
            row[1] += float(k)

    def _source_sums(self, user_ids: np.ndarray, item_ids: np.ndarray | None) -> np.ndarray | None:
        """(N, 2) impressions, clicks of each (user, the item's source) pair (under the lock), each distinct
        pair looked up once; None without item ids."""
        if item_ids is None:
            return None
        ids = np.asarray(item_ids, np.int64)
        ok = (ids >= 0) & (ids < len(self._item_source))
        code = np.full(len(ids), -1, np.int64)
        code[ok] = self._item_source[ids[ok]]
        pairs, inv = np.unique(np.c_[user_ids, code], axis=0, return_inverse=True)
        sums = np.zeros((len(pairs), 2))
        for k, (u, c) in enumerate(pairs.tolist()):
            hit = self._sources.get(u, {}).get(c) if c >= 0 else None
            if hit is not None:
                sums[k] = hit
        return sums[inv.reshape(-1)]

    def _rows(self, user_ids: np.ndarray) -> np.ndarray:
        empty = [0.0, 0.0, -np.inf, 0.0, -1.0]
        with self._lock:
            return np.array([self._users.get(u, empty) for u in user_ids.tolist()], np.float64).reshape(-1, 5)

    def last_day(self, user_ids: np.ndarray) -> np.ndarray:
        """Each user's last active day index (-1 if none)."""
        return self._rows(np.asarray(user_ids, np.int64))[:, 4]

    def last_click_ts(self, user_ids: np.ndarray) -> np.ndarray:
        """Each user's last click time (-inf if none)."""
        return self._rows(np.asarray(user_ids, np.int64))[:, 2]

    def feature_arrays(
        self,
        user_ids: np.ndarray,
        candidate_topics: np.ndarray,
        ts: np.ndarray,
        item_ids: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """:meth:`features` as a dict of (N,) float64 arrays (the request path's form); without
        ``item_ids`` the item columns are those of an item never seen."""
        user_ids = np.asarray(user_ids, np.int64)
        topics = np.asarray(candidate_topics, object)
        ts = np.broadcast_to(np.asarray(ts, np.float64), user_ids.shape)
        if len(user_ids) and (user_ids == user_ids[0]).all():  # one request's rows
            codes, names = pd.factorize(topics, use_na_sentinel=False)
            return self.user_arrays(int(user_ids[0]), codes, np.asarray(names, object), ts, item_ids)
        # each distinct user and (user, topic) pair is looked up once: a request's 1,000 candidates are
        # one user's and share a dozen topics
        users, uinv = np.unique(user_ids, return_inverse=True)
        rows = self._rows(users)[uinv.reshape(-1)]
        item_sums = np.zeros((len(user_ids), len(ITEM_SUMS)))
        codes, names = pd.factorize(topics, use_na_sentinel=False)
        pairs, inv = np.unique(uinv.reshape(-1).astype(np.int64) * max(len(names), 1) + codes,
                               return_inverse=True)  # fmt: skip
        pair_sums = np.zeros((len(pairs), 3))
        pair_user = users[pairs // max(len(names), 1)].tolist()
        pair_topic = [str(names[c]) for c in (pairs % max(len(names), 1)).tolist()]
        with self._lock:
            for k, (u, t) in enumerate(zip(pair_user, pair_topic, strict=True)):
                got = self._topics.get(u)
                if got is not None:
                    hit = got.get(t)
                    if hit is not None:
                        pair_sums[k] = hit
            if item_ids is not None:
                self._fill_item_sums(item_sums, np.asarray(item_ids, np.int64))
            source_sums = self._source_sums(user_ids, item_ids)
        # the one formula of the columns (ranking.history), from this history's sums
        tv = pair_sums[inv.reshape(-1)]
        return _assemble(
            tv, rows[:, 1], rows[:, 0], rows[:, 2], ts, rows[:, 3], item_sums, source_sums, frame=False
        )

    def _fill_item_sums(self, out: np.ndarray, ids: np.ndarray) -> None:
        """Each row of ``out`` gets its item's sums; items never seen keep zeros (call under the lock)."""
        seen = (ids >= 0) & (ids < len(self._items))
        out[seen] = self._items[ids[seen]]

    def user_arrays(
        self,
        user_id: int,
        topic_codes: np.ndarray,
        topic_names: np.ndarray,
        ts: np.ndarray | float,
        item_ids: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """:meth:`feature_arrays` of one user's N rows (a request's candidates), their topics given as
        codes into ``topic_names`` (e.g. the catalogue's): the user's row and dictionaries are read once,
        the per-topic and per-source sums gathered from small tables by code (no sort of the rows, no
        per-row Python). The same sums as the general path, so the same values."""
        codes = np.asarray(topic_codes, np.int64)
        n = len(codes)
        ts = np.broadcast_to(np.asarray(ts, np.float64), (n,))
        topic_table = np.zeros((len(topic_names), 3))
        item_sums = np.zeros((n, len(ITEM_SUMS)))
        source_sums = None
        with self._lock:
            row = self._users.get(user_id)
            row = [0.0, 0.0, -np.inf, 0.0, -1.0] if row is None else list(row)
            got = self._topics.get(user_id)
            if got:
                index = {str(t): k for k, t in enumerate(topic_names.tolist())}
                for t, sums in got.items():
                    k = index.get(t)
                    if k is not None:
                        topic_table[k] = sums
            if item_ids is not None:
                ids = np.asarray(item_ids, np.int64)
                self._fill_item_sums(item_sums, ids)
                code = np.full(n, -1, np.int64)  # the item's source; -1: never seen
                known = (ids >= 0) & (ids < len(self._item_source))
                code[known] = self._item_source[ids[known]]
                table = np.zeros((len(self._source_codes) + 1, 2))  # the last row: code -1, no source
                for c, sums in self._sources.get(user_id, {}).items():
                    table[c] = sums
                source_sums = table[code]
        imps, clicks, last_click, days, _ = row
        return _assemble(
            topic_table[codes], np.full(n, clicks), np.full(n, imps), np.full(n, last_click), ts,
            np.full(n, days), item_sums, source_sums, frame=False,
        )  # fmt: skip

    def features(
        self,
        user_ids: np.ndarray,
        candidate_topics: np.ndarray,
        ts: np.ndarray,
        item_ids: np.ndarray | None = None,
    ) -> Any:
        """The :data:`HISTORY_COLUMNS` of (user, candidate) pairs at request times ``ts`` (all (N,)),
        as ``UserHistory.features`` gives them."""
        return pd.DataFrame(self.feature_arrays(user_ids, candidate_topics, ts, item_ids))


# -- 2. filtering ----------------------------------------------------------------------------------------
def filter_mask(snap: Catalogue, user: UserSignals, filtering: FilteringConfig) -> np.ndarray:
    """(n,) bool: True = never a candidate for this request (retired, expired, excluded for the user)."""
    mask = snap.retired.copy()
    if filtering.max_item_age_s is not None:
        mask |= snap.publish_ts < user.ts - filtering.max_item_age_s
    ex = np.asarray(user.exclude, np.int64)
    if len(ex):
        mask[ex[(ex >= 0) & (ex < len(mask))]] = True
    return mask


# -- 1. retrieval ----------------------------------------------------------------------------------------
def retrieve(
    snap: Catalogue,
    user: UserSignals,
    mask: np.ndarray,
    config: CandidatesConfig,
    rng: np.random.Generator,
    popular: np.ndarray | None = None,
    item_vectors: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(candidate ids (K,), source codes (K,)), K ≤ ``config.total``; ``mask`` (updated in place) marks
    what is filtered out and what an earlier source took. ``popular``: ids most clicked first;
    ``item_vectors``: (n, e) unit-norm item embeddings for the similar source."""
    taken: list[np.ndarray] = []
    codes: list[np.ndarray] = []

    def take(pool: np.ndarray, k: int, code: int) -> None:
        if k <= 0 or len(pool) == 0:
            return
        got = pool[~mask[pool]][:k]
        mask[got] = True
        taken.append(got)
        codes.append(np.full(len(got), code, np.int8))

    take(snap.fresh_order, config.fresh, FRESH)
    if popular is not None:
        take(np.asarray(popular, np.int64), config.popular, POPULAR)
    if config.topic and user.topic_clicks is not None and user.topic_clicks.sum() > 0:
        tc = user.topic_clicks
        top = np.argsort(-tc, kind="stable")[: config.topics_per_user]
        top = top[tc[top] > 0]
        share = tc[top] / tc[top].sum()
        quota = np.floor(share * config.topic).astype(int)
        quota[0] += config.topic - quota.sum()
        for t, k in zip(top.tolist(), quota.tolist(), strict=True):
            take(snap.topic_fresh[t], k, TOPIC)
    if config.similar and item_vectors is not None and user.recent_clicks is not None:
        recent = np.asarray(user.recent_clicks, np.int64)
        recent = recent[(recent >= 0) & (recent < len(item_vectors))]
        if len(recent):
            profile = item_vectors[recent].mean(axis=0)
            norm = float(np.linalg.norm(profile))
            if norm > 0:
                # torch's one-thread mat-vec: numpy's BLAS may spread 47k×e over threads that a busy
                # machine does not have (measured 13-36 ms instead of ~2 at load 17)
                prof = torch.from_numpy(np.ascontiguousarray(profile / norm, dtype=item_vectors.dtype))
                sims = (torch.from_numpy(item_vectors) @ prof).numpy().astype(np.float64)
                sims[mask] = -np.inf
                k = min(config.similar, int((~mask).sum()))
                if k > 0:
                    best = np.argpartition(-sims, k - 1)[:k]
                    take(best[np.argsort(-sims[best], kind="stable")], k, SIMILAR)
    need = config.total - sum(len(t) for t in taken)
    live = snap.live_ids
    if need > 0 and len(live):
        draw = live[rng.integers(0, len(live), 2 * need + 16)]
        _, first = np.unique(draw, return_index=True)
        draw = draw[np.sort(first)]  # distinct, in draw order
        draw = draw[~mask[draw]][:need]
        mask[draw] = True
        if len(draw) < need:  # a small or nearly exhausted catalogue: fill from the rest
            rest = live[~mask[live]]
            more = rng.permutation(rest)[: need - len(draw)]
            mask[more] = True
            draw = np.concatenate([draw, more])
        taken.append(draw)
        codes.append(np.full(len(draw), RANDOM, np.int8))
    if not taken:
        return np.empty(0, np.int64), np.empty(0, np.int8)
    return np.concatenate(taken).astype(np.int64), np.concatenate(codes)


# -- 3. scoring ------------------------------------------------------------------------------------------
class Scorer:
    """The scoring stage: the model's outputs for one user's candidates (see the module docstring).

    Args:
        policy: the ranker policy (its item-feature cache and user history are shared).
        config: fast path and two-stage settings.
    """

    def __init__(self, policy: RankerPolicy, config: ScoringConfig | None = None) -> None:
        self.policy = policy
        self.config = config or ScoringConfig()
        self.cache = PreparedCache()

    def prepared(self, snap: Catalogue, model: MultiTaskRanker) -> PreparedItems | None:
        """The model's item-side inputs for ``snap`` (None when the fast path is off or unsupported)."""
        if not self.config.fast or not supports(model):
            return None
        rows = self.policy.candidate_features(snap, model)
        prep = self.cache.get(model, rows, id(snap.items), self.policy.history, split=self.config.split)
        if self.config.prerank:
            prep.prior()  # computed once per (model, catalogue): by whoever prepares first (a publish)
        return prep

    def predict(
        self,
        snap: Catalogue,
        model: MultiTaskRanker,
        user: UserSignals,
        cand: np.ndarray,
        keep: np.ndarray | None = None,
        formula: Any = None,
    ) -> dict[str, np.ndarray]:
        """(K,) ``p_click``, ``time``, ``p_conv`` of ``cand``. With ``prerank`` = m > 0, only m candidates
        are scored per user: the ``keep`` ones (bool (K,), the personalised sources; at most m/2 of them,
        the best by the user-independent score) and the best of the others by that score; the rest get
        their user-independent values. ``formula``: of the first stage (default the
        policy's)."""
        prep = self.prepared(snap, model)
        if prep is None:
            req = SlateRequest(
                user_ids=np.array([user.user_id], np.int64),
                candidates=cand[None, :],
                slate_index=np.array([user.slate_index], np.int16),
                ts=np.array([user.ts]),
                day=user.day,
            )
            p = self.policy.predict(req, snap, model=model)
            return {k: v[0] for k, v in p.items()}
        m = self.config.prerank
        if 0 < m < len(cand):
            prior = prep.prior()
            s = prep.prior_score(formula or self.policy.formula)[cand]
            sel = np.zeros(len(cand), bool)
            if keep is not None and keep.any():  # up to half the budget for the personalised sources
                kidx = np.flatnonzero(keep)
                kq = min(len(kidx), max(m // 2, 1))
                sel[kidx if kq == len(kidx) else kidx[np.argpartition(-s[kidx], kq - 1)[:kq]]] = True
            rest = m - int(sel.sum())
            if rest > 0:
                s2 = np.where(sel, -np.inf, s)
                sel[np.argpartition(-s2, rest - 1)[:rest]] = True
            out = {k: v[cand].copy() for k, v in prior.items()}
            idx = np.flatnonzero(sel)
            full = prep.predict(user.user_id, cand[idx], user.slate_index, user.ts, user.day)
            for k in out:
                out[k][idx] = full[k]
            return out
        return prep.predict(user.user_id, cand, user.slate_index, user.ts, user.day)


# -- 4. ordering -----------------------------------------------------------------------------------------
def penalty_factor(post_processors: Sequence[Any], clickbait: np.ndarray) -> np.ndarray:
    """The product of the arm's penalty factors f(c) (1 without any)."""
    out = np.ones(len(clickbait))
    for pen in post_processors:
        out = out * pen.f(clickbait)
    return out


def cap_per_topic(scores: np.ndarray, topics: np.ndarray, S: int, cap: int) -> np.ndarray:
    """Top-S columns by score with at most ``cap`` per topic (greedy); topped up from the best capped
    items when the topics cannot fill S."""
    order = np.argsort(-scores, kind="stable")
    counts: dict[int, int] = {}
    chosen: list[int] = []
    skipped: list[int] = []
    for j in order.tolist():
        t = int(topics[j])
        if counts.get(t, 0) < cap:
            counts[t] = counts.get(t, 0) + 1
            chosen.append(j)
            if len(chosen) == S:
                break
        else:
            skipped.append(j)
    chosen += skipped[: S - len(chosen)]
    return np.asarray(chosen, np.int64)


def order_slate(
    scores: np.ndarray,
    S: int,
    *,
    stochastic: bool = False,
    temperature: float = 1.0,
    rng: np.random.Generator | None = None,
    topics: np.ndarray | None = None,
    diversity: DiversityConfig | None = None,
    name: str = "policy",
) -> tuple[np.ndarray, np.ndarray]:
    """(columns (S,), propensities (S,)) of one slate from (K,) non-negative scores: top-S (with the
    per-topic cap when configured) or a Plackett–Luce sample with weights ``score^(1/T)``."""
    if stochastic:
        o, p = select_slates(
            np.log(np.maximum(scores, 1e-300))[None, :], S, stochastic=True,
            temperature=temperature, rng=rng, name=name,
        )  # fmt: skip
        return o[0], p[0]
    if diversity is not None and diversity.max_per_topic is not None and topics is not None:
        if not np.all(np.isfinite(scores)):
            select_slates(scores[None, :], S, name=name)  # raises the usual error
        return cap_per_topic(scores, topics, S, diversity.max_per_topic), np.ones(S)
    o, p = select_slates(scores[None, :], S, name=name)
    return o[0], p[0]
