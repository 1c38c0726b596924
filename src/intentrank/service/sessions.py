"""Bounded per-session and per-user memory: what each session was shown, the slates served, clicks.

Memory (CPython 3.11, 64-bit, measured with tracemalloc): a slate record ≈ 0.83 kB (two 20-element
NumPy arrays and a few ints); a session after one page ≈ 8.8 kB, mostly its last response kept for
retries (20 item dicts with titles), + 8 bytes per further item shown.

Everything here is bounded by :class:`~intentrank.service.config.ServiceLimits`: sessions are an LRU
with an idle TTL, served slates an LRU (events for a forgotten slate are refused), users' clicked items
an LRU of bounded sets. All methods are thread-safe (one lock per table, held only for dict work).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Session:
    """One user's feed session: its run-local id, the next slate index and the items already shown."""

    user_id: int
    key: str
    local_id: int
    next_index: int = 0
    shown: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # compact: 8 bytes an item
    #: the cursor that asked for the last page and the response given (returned again on a retry)
    last_cursor: str | None = None
    last_response: dict | None = None
    last_seen: float = 0.0
    #: held while a slate of this session is built: two concurrent pages never pick the same item
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def cursor(self) -> str:
        """Opaque cursor of the next page."""
        return f"{self.local_id}.{self.next_index}"


@dataclass(frozen=True)
class SlateRecord:
    """A served slate, remembered so events can refer to it by ``slate_id``."""

    slate_id: int
    user_id: int
    session_local_id: int
    slate_index: int
    arm: str
    model_version: int
    ts: float
    items: np.ndarray  # (S,) int64 item ids, position order
    propensity: np.ndarray  # (S,) float64
    #: (S,) bool, position order: the event of that item is acknowledged (duplicates are refused); set
    #: by the ingest path under the store's lock
    acked: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "acked", np.zeros(len(self.items), bool))

    def positions(self) -> dict[int, int]:
        """Item id → 0-based position."""
        return {i: k for k, i in enumerate(self.items.tolist())}


class Sessions:
    """Sessions by (user, session key): LRU of at most ``max_sessions``, forgotten after ``ttl_s`` idle."""

    def __init__(self, max_sessions: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_sessions, self.ttl_s, self.clock = int(max_sessions), float(ttl_s), clock
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[int, str], Session] = OrderedDict()
        self._next_local = 0
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, user_id: int, key: str) -> Session:
        """The live session (touched), or a new one when unknown or expired."""
        now = self.clock()
        with self._lock:
            self._expire(now)
            s = self._items.get((user_id, key))
            if s is None:
                s = Session(user_id, key, self._next_local, last_seen=now)
                self._next_local += 1
                self._items[(user_id, key)] = s
                while len(self._items) > self.max_sessions:
                    self._items.popitem(last=False)
                    self.evicted += 1
            else:
                s.last_seen = now
                self._items.move_to_end((user_id, key))
            return s

    def _expire(self, now: float) -> None:
        while self._items:
            first = next(iter(self._items.values()))
            if now - first.last_seen <= self.ttl_s:
                break
            self._items.popitem(last=False)
            self.evicted += 1


class SlateLog:
    """Served slates by id (LRU of at most ``max_slates``); ids are run-local, 0, 1, 2, ..."""

    def __init__(self, max_slates: int) -> None:
        self.max_slates = int(max_slates)
        self._lock = threading.Lock()
        self._items: OrderedDict[int, SlateRecord] = OrderedDict()
        self._next = 0

    def next_id(self) -> int:
        with self._lock:
            n, self._next = self._next, self._next + 1
            return n

    def add(self, rec: SlateRecord) -> None:
        with self._lock:
            self._items[rec.slate_id] = rec
            while len(self._items) > self.max_slates:
                self._items.popitem(last=False)

    def get(self, slate_id: int) -> SlateRecord | None:
        with self._lock:
            return self._items.get(slate_id)

    def acknowledged(self, slate_id: int, item_id: int) -> bool:
        """The event of ``item_id`` in slate ``slate_id`` was acknowledged (False for a forgotten slate)."""
        rec = self.get(slate_id)
        return rec is not None and bool(rec.acked[rec.items == item_id].any())


class UserClicks:
    """Items each user clicked (read-your-writes: the next feed leaves them out); bounded both ways."""

    def __init__(self, max_users: int, max_per_user: int) -> None:
        self.max_users, self.max_per_user = int(max_users), int(max_per_user)
        self._lock = threading.Lock()
        self._items: OrderedDict[int, OrderedDict[int, None]] = OrderedDict()

    def add(self, user_id: int, item_id: int) -> None:
        with self._lock:
            clicked = self._items.get(user_id)
            if clicked is None:
                clicked = self._items[user_id] = OrderedDict()
                while len(self._items) > self.max_users:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(user_id)
            clicked[item_id] = None
            clicked.move_to_end(item_id)
            while len(clicked) > self.max_per_user:
                clicked.popitem(last=False)

    def of(self, user_id: int) -> list[int]:
        with self._lock:
            return list(self._items.get(user_id, ()))


class RecentShown:
    """Items shown to each user recently, in any session (the "recently shown" filter); bounded: at most
    ``max_per_user`` items per user (oldest slates dropped) and ``max_users`` users (LRU)."""

    def __init__(self, max_users: int, max_per_user: int) -> None:
        self.max_users, self.max_per_user = int(max_users), int(max_per_user)
        self._lock = threading.Lock()
        self._items: OrderedDict[int, list[tuple[float, np.ndarray]]] = OrderedDict()

    def add(self, user_id: int, ts: float, items: np.ndarray) -> None:
        if self.max_per_user == 0 or len(items) == 0:
            return
        with self._lock:
            slates = self._items.get(user_id)
            if slates is None:
                slates = self._items[user_id] = []
                while len(self._items) > self.max_users:
                    self._items.popitem(last=False)
            else:
                self._items.move_to_end(user_id)
            slates.append((float(ts), np.asarray(items, np.int64)))
            total = sum(len(a) for _, a in slates)
            while len(slates) > 1 and total > self.max_per_user:
                total -= len(slates.pop(0)[1])

    def of(self, user_id: int, since: float) -> np.ndarray:
        """Ids shown to the user at or after ``since``."""
        with self._lock:
            slates = self._items.get(user_id)
            if not slates:
                return np.empty(0, np.int64)
            parts = [a for t, a in slates if t >= since]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)
