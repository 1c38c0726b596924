"""The service's state and its three operations: serve a slate, take events back, update the catalogue.

:class:`ServiceState` wires the parts together: the live item table (:mod:`.retrieval`), the session,
slate and click memories (:mod:`.sessions`), the model slot with its version history (rollback), one
:class:`~intentrank.serving.ranker.RankerPolicy` scoring from the slot, the arms' clickbait penalties,
the metrics, and one run of the event store for this process (``begin_run(shared_users=True)``).

A slate: the serving pipeline (:mod:`intentrank.serving.pipeline`): retrieval from fresh, popular,
topic-match, title-embedding-similar and random sources, filtered by the session's shown items, the
user's recently shown and clicked items, retired and expired ones → the model's p_click, time, p_conv
(fast path: item-side inputs precomputed per model and catalogue) → ``formula × f(c)`` (the arm's
penalty; 1 for an unmitigated arm) → top-S (optional per-topic cap), or a Plackett–Luce sample with
weights ``score^(1/T)`` (propensities logged).
Events: checked against the remembered slate (item in it, not yet acknowledged), appended in one
committed transaction (batches arriving while a commit runs share the next one: group commit), and
only then acknowledged and applied to the click memory, popularity, the user history (read-your-writes)
and the trap detector.
"""

from __future__ import annotations

import contextvars
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from intentrank.clickbait.categories import CATEGORIES, HEAVY, categorize
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.errors import IntentRankError
from intentrank.mitigation.heuristic import HeuristicPenalty
from intentrank.mitigation.pipeline import MitigationPlan
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.service.config import ServiceConfig
from intentrank.service.group_commit import GroupCommitter, Pending
from intentrank.service.metrics import ServiceMetrics
from intentrank.service.retrieval import LiveItems
from intentrank.service.schemas import event_columns
from intentrank.service.sessions import RecentShown, Sessions, SlateLog, SlateRecord, UserClicks
from intentrank.service.trap import TrapDetector
from intentrank.serving.incremental import ModelSlot
from intentrank.serving.pipeline import (
    SOURCES,
    Scorer,
    ServingHistory,
    UserSignals,
    filter_mask,
    order_slate,
    penalty_factor,
    retrieve,
)
from intentrank.serving.ranker import RankerPolicy
from intentrank.serving.request_rng import request_rng
from intentrank.simulator.engine import assign_arms
from intentrank.store.event_store import EventStore, RunHandle

DAY_S = 86_400.0
#: The simulated time of the request being served (service.simulated_clock; set by ``use_clock``).
_REQUEST_CLOCK: contextvars.ContextVar[float | None] = contextvars.ContextVar("ir_clock", default=None)
#: Models kept for rollback (the served one and the ones before it).
KEEP_MODELS = 3
#: Entries of the model history shown by /v1/models.
KEEP_HISTORY = 50


class ServiceError(IntentRankError):
    """A request the service refuses, with its HTTP status (4xx) and a one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ModelVersion:
    """One published model: its version, where it came from, when."""

    version: int
    source: str
    published_at: float
    model: MultiTaskRanker | None  # None once dropped from the rollback window


class ServiceState:
    """Everything one service process holds; see the module docstring.

    Args:
        config: the service settings.
        items: the initial catalogue (:data:`~intentrank.store.schema.ITEM_COLUMNS`, ``item_id`` 0..n-1).
        model: the ranker to serve.
        store: the event store (opened for writing); the state begins its run and writes the items.
        formula: the ranking formula (default: the model config's).
        token: the bearer token of write and admin endpoints.
        scorer: the clickbait scorer for new items and /v1/clickbait/score (default: the model the
            ``clickbait`` config selects, loaded on first use by ``load_default_scorer``).
        clickbait: the clickbait settings (``clickbait.model`` / ``model_dir``) of the default scorer.
        clock: wall-clock seconds (the run's epoch is its value at start).
    """

    def __init__(
        self,
        config: ServiceConfig,
        items: pd.DataFrame,
        model: MultiTaskRanker,
        store: EventStore,
        token: str,
        formula: RankingFormula | None = None,
        scorer: Any | None = None,
        clock: Callable[[], float] = time.time,
        model_source: str = "initial",
        clickbait: ClickbaitConfig | None = None,
    ) -> None:
        self.config, self.token, self.clock = config, token, clock
        lim = config.limits
        self.items = LiveItems(items, seed=config.seed)
        self.slot = ModelSlot(model)
        self.history = ServingHistory(model.config.labels.long_click_threshold_s, lim.max_users)
        self.policy = RankerPolicy(self.slot, formula=formula, history=self.history)
        self.scorer_stage = Scorer(self.policy, config.scoring)
        #: a formula given at start ranks every version; None: each model version's own config formula
        self.fixed_formula = formula
        self.arm_names = list(config.arms)
        self.penalties: dict[str, list[HeuristicPenalty]] = {
            name: MitigationPlan(arm.mitigation).post_processors() for name, arm in config.arms.items()
        }
        self.sessions = Sessions(lim.max_sessions, lim.session_ttl_s)
        self.slates = SlateLog(lim.max_slates)
        self.clicks = UserClicks(lim.max_users, lim.max_clicked_per_user)
        self.recent = RecentShown(lim.max_users, config.filtering.max_recent_per_user)
        self.metrics = ServiceMetrics(self.arm_names)
        self._scorer = scorer
        self._clickbait = clickbait
        self._rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0xFEED]))
        self._rng_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self.versions = [ModelVersion(self.slot.version, model_source, time.time(), model)]
        self.metrics.model(self.slot.version, self.slot.swaps)
        self.epoch = clock()
        #: the latest simulated time seen (service.simulated_clock), guarded by its lock
        self._sim_latest = 0.0
        self._clock_lock = threading.Lock()
        self.store = store
        self._store_lock = threading.Lock()
        self._committer = GroupCommitter(self._commit_group)
        store.write_items(items)
        note = json.dumps({"epoch_unix": self.epoch, "arms": self.arm_names})
        self.run: RunHandle = store.begin_run(
            policy=",".join(self.arm_names), command="serve", note=note, shared_users=True
        )
        self.closed = False
        #: the incremental training worker and the trap detector, when attached (see /v1/models)
        self.worker: Any = None
        self.trap: TrapDetector | None = None
        if config.trap.enabled:
            self.trap = TrapDetector(config.trap, self.metrics, clock=self.now)
        self._trap_at = -np.inf

    # -- time -------------------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the run's epoch (the ``ts`` of slates and the time features of the model): the
        wall clock, or with ``simulated_clock`` the request's simulated time (:meth:`use_clock`; outside a
        request, the latest simulated time seen)."""
        if self.config.simulated_clock:
            ts = _REQUEST_CLOCK.get()
            return self._sim_latest if ts is None else ts
        return self.clock() - self.epoch

    def use_clock(self, ts: float | None) -> None:
        """Run the current request (its context) at simulated time ``ts`` (the X-Intentrank-Clock header):
        required with ``service.simulated_clock``, refused without it; finite, ≥ 0 and at most
        ``simulated_clock_tolerance_s`` behind the latest time seen (which it advances)."""
        cfg = self.config
        if not cfg.simulated_clock:
            if ts is not None:
                raise ServiceError(
                    422, "X-Intentrank-Clock was sent but this service runs on the wall clock "
                    "(service.simulated_clock: false)",
                )  # fmt: skip
            return
        if ts is None:
            raise ServiceError(
                422, "this service runs on a simulated clock (service.simulated_clock: true): send the "
                "request's time in the X-Intentrank-Clock header (seconds since the service's epoch)",
            )  # fmt: skip
        if not math.isfinite(ts) or ts < 0:
            raise ServiceError(422, f"X-Intentrank-Clock must be a finite number of seconds ≥ 0, got {ts!r}")
        with self._clock_lock:
            floor = self._sim_latest - cfg.simulated_clock_tolerance_s
            if ts < floor:
                tol, latest = cfg.simulated_clock_tolerance_s, self._sim_latest
                raise ServiceError(
                    409, f"X-Intentrank-Clock {ts:g} goes back more than {tol:g} s "
                    f"(service.simulated_clock_tolerance_s) behind the latest time seen, {latest:g}",
                )  # fmt: skip
            self._sim_latest = max(self._sim_latest, ts)
        _REQUEST_CLOCK.set(float(ts))

    # -- arms -------------------------------------------------------------------------------------------
    def arm_of(self, user_id: int, requested: str | None) -> str:
        """The requested arm (checked) or the user's by a stable hash."""
        if requested is not None:
            if requested not in self.penalties:
                raise ServiceError(422, f"unknown arm {requested!r}; arms: {', '.join(self.arm_names)}")
            return requested
        k = assign_arms(np.array([user_id], np.int64), len(self.arm_names), salt=self.config.arm_salt)[0]
        return self.arm_names[int(k)]

    # -- the feed ---------------------------------------------------------------------------------------
    def feed(
        self,
        user_id: int,
        session_key: str,
        cursor: str | None = None,
        arm: str | None = None,
        explain: bool = False,
    ) -> dict[str, Any]:
        """The next slate of the session as the response body (see :class:`~.schemas.FeedResponse`)."""
        arm = self.arm_of(user_id, arm)
        session = self.sessions.get(user_id, session_key)
        with session.lock:
            if cursor is not None and cursor != session.cursor:
                if session.last_response is not None and cursor == session.last_cursor:
                    return session.last_response  # a retried request: the same slate again
                if session.last_response is None:
                    raise ServiceError(
                        410,
                        f"session {session_key!r} of user {user_id} is unknown or expired (idle more than "
                        f"{self.config.limits.session_ttl_s:g} s, or this process restarted): "
                        "ask again without a cursor to start it anew",
                    )
                raise ServiceError(
                    409,
                    f"stale cursor {cursor!r} for session {session_key!r}: the next page's cursor is "
                    f"{session.cursor!r} (or start a new session)",
                )
            if session.next_index >= self.config.limits.max_pages_per_session:
                raise ServiceError(
                    409,
                    f"session {session_key!r} reached {self.config.limits.max_pages_per_session} pages "
                    "(limits.max_pages_per_session): start a new session",
                )
            body, rec = self._build_slate(
                user_id, session.local_id, session.next_index, session.shown, arm, explain, session_key
            )
            session.last_cursor = session.cursor
            session.shown = np.concatenate([session.shown, rec.items])
            session.next_index += 1
            body["cursor"] = session.cursor
            session.last_response = body
            self.slates.add(rec)
        return body

    def _build_slate(
        self,
        user_id: int,
        session_local: int,
        slate_index: int,
        shown: np.ndarray,
        arm: str,
        explain: bool,
        session_key: str = "",
    ) -> tuple[dict[str, Any], SlateRecord]:
        cfg = self.config
        snap = self.items.snapshot
        ts = self.now()
        model, version = self.slot.current()
        user = self.signals(user_id, slate_index, ts, shown, snap)
        mask = filter_mask(snap, user, cfg.filtering)
        prep = self.scorer_stage.prepared(snap, model)
        vectors = prep.item_vectors() if prep is not None and cfg.candidates.similar else None
        popular = self.items.popular(cfg.candidates.popular) if cfg.candidates.popular else None
        # the page's own random stream (seed, user, session, page): the same candidates whatever the
        # order of concurrent requests, and those the simulator's in-process counterpart draws
        page_rng = request_rng(cfg.seed, user_id, session_key, slate_index)
        cand, src = retrieve(snap, user, mask, cfg.candidates, page_rng, popular, vectors)
        local_slate = self.slates.next_id()
        slate_id = self.run.slate_offset + local_slate
        S = min(cfg.slate_size, len(cand))
        if S == 0:
            order = np.empty(0, np.int64)
            prop = np.empty(0)
            parts = {k: np.empty(0) for k in ("p_click", "time", "p_conv", "formula", "penalty", "score")}
        else:
            parts = self.score_candidates(snap, model, user, cand, src, arm)
            with self._rng_lock:
                order, prop = order_slate(
                    parts["score"], S, stochastic=cfg.stochastic, temperature=cfg.temperature,
                    rng=self._rng, topics=snap.topic_code[cand], diversity=cfg.diversity, name=arm,
                )  # fmt: skip
        ids = cand[order]
        titles = snap.titles[ids]
        out_items = []
        for k, (col, item) in enumerate(zip(order, ids, strict=True)):
            entry: dict[str, Any] = {
                "item_id": int(item),
                "title": str(titles[k]),
                "score": float(parts["score"][col]),
                "clickbait_score": float(snap.clickbait_score[item]),
                "category": CATEGORIES[int(snap.category[item])],
                "propensity": float(prop[k]),
            }
            if explain:
                entry["explain"] = {
                    "p_click": float(parts["p_click"][col]),
                    "time_s": float(parts["time"][col]),
                    "p_conv": float(parts["p_conv"][col]),
                    "formula": float(parts["formula"][col]),
                    "penalty": float(parts["penalty"][col]),
                    "source": SOURCES[int(src[col])],
                }
            out_items.append(entry)
        body = {"slate_id": slate_id, "cursor": "", "model_version": version, "arm": arm, "items": out_items}
        rec = SlateRecord(
            slate_id=slate_id,
            user_id=user_id,
            session_local_id=session_local,
            slate_index=slate_index,
            arm=arm,
            model_version=version,
            ts=ts,
            items=ids.astype(np.int64),
            propensity=prop.astype(np.float64),
        )
        self.metrics.served(arm, len(ids), int((snap.category[ids] == HEAVY).sum()))
        self.recent.add(user_id, ts, ids)
        return body, rec

    def signals(
        self, user_id: int, slate_index: int, ts: float, shown: np.ndarray, snap: Any
    ) -> UserSignals:
        """What the pipeline knows of the user now: the session's shown items, the user's recently shown
        (any session) and clicked items, clicks per topic (user history) and the recent clicks."""
        f = self.config.filtering
        parts = [np.asarray(shown, np.int64)]
        if f.recent_shown_s > 0:
            parts.append(self.recent.of(user_id, ts - f.recent_shown_s))
        clicked = self.clicks.of(user_id)  # oldest first
        if clicked:
            parts.append(np.asarray(clicked, np.int64))
        topic_clicks = None
        if self.config.candidates.topic:
            names = snap.topic_names  # one row per topic code, the codes given (nothing to factorise)
            h = self.history.user_arrays(user_id, np.arange(len(names)), names, ts)
            topic_clicks = h["user_topic_clicks"]
        recent = np.asarray(clicked[::-1][: self.config.candidates.profile_clicks], np.int64)
        return UserSignals(
            user_id, slate_index, ts, int(ts // DAY_S), np.concatenate(parts), topic_clicks, recent
        )

    def score_candidates(
        self, snap: Any, model: MultiTaskRanker, user: UserSignals, cand: np.ndarray, src: np.ndarray,
        arm: str,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """(K,) arrays p_click, time, p_conv, formula, penalty (f(c), product over the arm's penalties)
        and score = formula × penalty (the scoring and the ranking formula of the pipeline)."""
        keep = (src == SOURCES.index("topic")) | (src == SOURCES.index("similar"))
        f = self.formula_of(model)
        p = self.scorer_stage.predict(snap, model, user, cand, keep=keep, formula=f)
        formula = np.asarray(f.score(p["p_click"], p["time"], p["p_conv"]), np.float64)
        penalty = penalty_factor(self.penalties[arm], snap.clickbait_score[cand])
        return {**p, "formula": formula, "penalty": penalty, "score": formula * penalty}

    def formula_of(self, model: MultiTaskRanker) -> RankingFormula:
        """The ranking formula of ``model``'s slates: the one given at start, or the model config's."""
        if self.fixed_formula is not None:
            return self.fixed_formula
        return RankingFormula.from_config(model.config.formula)

    # -- events -----------------------------------------------------------------------------------------
    def ingest(self, events: Sequence[Any]) -> tuple[int, int, int]:
        """Store a batch of events (dicts or objects with :data:`~.schemas.EVENT_FIELDS`) durably; returns
        (count, first event_id, last event_id). All or nothing. See :meth:`ingest_columns`."""
        return self.ingest_columns(event_columns(events))

    def ingest_columns(self, ev: dict[str, np.ndarray]) -> tuple[int, int, int]:
        """Store a batch given as NumPy columns (:data:`~.schemas.EVENT_FIELDS`, as parsed from the body)
        durably; returns (count, first event_id, last event_id). All or nothing; a refused batch raises
        :class:`ServiceError` naming the first bad event (``events.<i>``). Vectorised over the batch: the
        checks, the (slate, item) → position match against the remembered slates and the columns."""
        click, dwell = ev["click"], ev["dwell_s"]
        n = len(click)
        if n == 0:
            raise ServiceError(422, "events: the batch is empty")
        _first_bad(~click & (ev["bounce"] | ev["conversion"]), 422, "bounce and conversion need click: true")
        _first_bad(~click & (dwell > 0), 422, "dwell_s must be 0 without a click")
        _first_bad(~np.isfinite(dwell) | (dwell < 0), 422, "dwell_s must be a finite number ≥ 0")
        slate_id, item_id = ev["slate_id"], ev["item_id"]
        uniq, inv = np.unique(slate_id, return_inverse=True)
        recs = [self.slates.get(s) for s in uniq.tolist()]
        if any(r is None for r in recs):
            missing = np.array([r is None for r in recs])[inv]
            i = int(np.argmax(missing))
            raise ServiceError(
                404,
                f"events.{i}: unknown slate_id {int(slate_id[i])} (not served by this process, or older than "
                f"the last {self.config.limits.max_slates:,} slates)",
            )
        flat = _match_slates(recs, inv, item_id)  # each event's index into the slates' concatenated items
        if (flat < 0).any():
            i = int(np.argmax(flat < 0))
            raise ServiceError(
                422, f"events.{i}: item_id {int(item_id[i])} was not shown in slate {int(slate_id[i])}"
            )
        srt = np.sort(flat)
        if (srt[1:] == srt[:-1]).any():
            dup = int(srt[1:][srt[1:] == srt[:-1]][0])
            i = int(np.flatnonzero(flat == dup)[1])
            raise ServiceError(
                409, f"duplicate event in the batch: slate {int(slate_id[i])}, item {int(item_id[i])}"
            )
        lens = np.array([len(r.items) for r in recs])
        position = flat - np.repeat(np.cumsum(lens) - lens, lens)[flat]
        per = {
            "ts": np.array([r.ts for r in recs], np.float64),
            "user_id": np.array([r.user_id for r in recs], np.int64),
            "session_id": np.array([r.session_local_id for r in recs], np.int64),
            "slate_id": np.array([r.slate_id for r in recs], np.int64) - self.run.slate_offset,
            "slate_index": np.array([r.slate_index for r in recs], np.int16),
            "policy": np.array([r.arm for r in recs], object),
            "model_version": np.array([r.model_version for r in recs], np.int64),
        }
        ts = per["ts"][inv]
        given = ~np.isnan(ev["ts"]) if "ts" in ev else np.zeros(n, bool)
        if given.any():  # the events' own times (a simulator's clock)
            if not self.config.simulated_clock:
                _first_bad(given, 422, "ts is accepted only with service.simulated_clock: true (events "
                           "are stamped with their slate's time)")  # fmt: skip
            early = given & (ev["ts"] < ts)
            if early.any():
                i = int(np.argmax(early))
                raise ServiceError(
                    422, f"events.{i}: ts {ev['ts'][i]:g} is before slate {int(slate_id[i])} was served "
                    f"({ts[i]:g})",
                )  # fmt: skip
            ts = np.where(given, ev["ts"], ts)
        # columns as arrays (no DataFrame: the store takes them to Arrow without pandas' conversion)
        frame = {
            "ts": ts,
            "day": (ts // DAY_S).astype(np.int32),
            "user_id": per["user_id"][inv],
            "session_id": per["session_id"][inv],
            "slate_id": per["slate_id"][inv],
            "slate_index": per["slate_index"][inv],
            "position": position.astype(np.int16),
            "item_id": item_id,
            "policy": per["policy"][inv],
            "propensity": np.concatenate([r.propensity for r in recs])[flat],
            "click": click,
            "dwell_s": dwell,
            "bounce": ev["bounce"],
            "conversion": ev["conversion"],
        }
        # durable before acknowledged; batches arriving during a commit share the next one (group commit)
        first, last = self._committer.submit((frame, recs, flat, slate_id, item_id))
        self._after_ingest(frame, per["model_version"][inv])
        return n, first, last

    def _after_ingest(self, frame: dict[str, np.ndarray], model_version: np.ndarray) -> None:
        """What an acknowledged batch changes in memory: clicked items (filtered from the user's next
        slates), the serving history (read-your-writes), popularity, the trap detector, metrics."""
        click = frame["click"]
        if click.any():
            users, items = frame["user_id"][click].tolist(), frame["item_id"][click].tolist()
            for user, item in zip(users, items, strict=True):
                self.clicks.add(user, item)
        snap = self.items.snapshot
        keep = ("user_id", "ts", "item_id", "click", "bounce", "dwell_s")
        topics = snap.topic_names[snap.topic_code[frame["item_id"]]]
        self.history.update(pd.DataFrame({k: frame[k] for k in keep} | {"topic": topics}))
        if self.trap is not None:
            self.trap.observe(
                model_version, frame["policy"], frame["user_id"], click, frame["conversion"],
                frame["dwell_s"], frame["bounce"],
            )  # fmt: skip
            if time.monotonic() - self._trap_at >= self.config.trap.evaluate_every_s:
                self._trap_at = time.monotonic()
                self.trap.evaluate()
        if click.any():
            self.items.record_clicks(frame["item_id"][click])
        self.metrics.events.inc(len(click))
        self.metrics.event_batches.inc()

    def _commit_group(self, group: list[Pending]) -> None:
        """Store the queued batches of ``group`` in one transaction (see :mod:`.group_commit`); a batch
        with an event already acknowledged (or in an earlier batch of the group) gets its own 409. The
        batches' events are marked acknowledged before the commit and unmarked if it fails (only this
        method, under the store's lock, reads or writes the marks)."""
        with self._store_lock:
            if self.closed:
                raise ServiceError(503, "the service is shutting down")
            ok: list[Pending] = []
            marked: list[tuple[list[SlateRecord], np.ndarray]] = []
            try:
                for p in group:
                    _, recs, flat, slate_id, item_id = p.payload
                    acked = np.concatenate([r.acked for r in recs])
                    if acked[flat].any():
                        i = int(np.argmax(acked[flat]))
                        p.error = ServiceError(
                            409,
                            f"duplicate event: slate {int(slate_id[i])}, item {int(item_id[i])} was already "
                            "acknowledged",
                        )
                        continue
                    before = [r.acked.copy() for r in recs]
                    acked[flat] = True
                    for r, part in zip(recs, np.split(acked, np.cumsum([len(r.acked) for r in recs])[:-1]),
                                       strict=True):  # fmt: skip
                        r.acked[:] = part
                    marked.append((recs, before))  # type: ignore[arg-type]
                    ok.append(p)
                if not ok:
                    return
                frames = [p.payload[0] for p in ok]
                table = {k: np.concatenate([f[k] for f in frames]) for k in frames[0]}
                first, _ = self.run.append(table)  # returns after COMMIT: durable
                self.metrics.event_commits.inc()
            except BaseException:
                for recs, before in reversed(marked):
                    for r, b in zip(recs, before, strict=True):
                        r.acked[:] = b
                raise
            for p in ok:
                n = len(p.payload[0]["click"])
                p.result, first = (first, first + n - 1), first + n

    # -- catalogue --------------------------------------------------------------------------------------
    @property
    def scorer(self) -> Any:
        """The clickbait scorer (the model the ``clickbait`` config selects, loaded on first use)."""
        if self._scorer is None:
            from intentrank.clickbait import load_default_scorer

            self._scorer = load_default_scorer(self._clickbait)
        return self._scorer

    def score_titles(self, titles: list[str]) -> tuple[np.ndarray, list[str]]:
        """(scores, category names) of ``titles`` by the clickbait scorer."""
        scores = np.asarray(self.scorer.score(titles), np.float64)
        if scores.shape != (len(titles),) or not np.all(np.isfinite(scores)):
            raise IntentRankError(f"the clickbait scorer returned shape {scores.shape} or non-finite values")
        return scores, [CATEGORIES[int(c)] for c in categorize(np.clip(scores, 0.0, 1.0))]

    def update_items(self, new: list[Any], retire: list[int]) -> dict[str, Any]:
        """Add items (scored for clickbait on arrival, written to the store) and retire others."""
        ids = np.empty(0, np.int64)
        scores = np.empty(0)
        cats: list[str] = []
        if new:
            titles = [it.title for it in new]
            scores, cats = self.score_titles(titles)
            now = self.now()
            frame = pd.DataFrame(
                {
                    "title": titles,
                    "topic": [it.topic for it in new],
                    "source": [it.source for it in new],
                    "publish_ts": [now if it.publish_ts is None else it.publish_ts for it in new],
                    "length": np.array([len(t.split()) for t in titles], np.int32),
                    "clickbait_score": scores,
                }
            )
            with self._store_lock:
                ids = self.items.add(frame)
                self.store.write_items(self.items.snapshot.items.iloc[ids])
            # the new table's feature rows and item-side inputs now, not in the next feed request
            self.scorer_stage.prepared(self.items.snapshot, self.slot.model)
        retired = 0
        if retire:
            try:
                retired = self.items.retire(np.asarray(retire, np.int64))
            except IntentRankError as err:
                raise ServiceError(404, str(err)) from None
        return {
            "item_ids": ids.tolist(),
            "clickbait_scores": [float(s) for s in scores],
            "categories": cats,
            "retired": retired,
        }

    # -- models -----------------------------------------------------------------------------------------
    def publish(self, model: MultiTaskRanker, source: str) -> int:
        """Serve ``model`` from now on (atomic swap); keeps the previous ones for rollback. Its item-side
        inputs are prepared first, so no request pays for them."""
        self.scorer_stage.prepared(self.items.snapshot, model)
        with self._model_lock:
            version = self.slot.swap(model)
            self.versions.append(ModelVersion(version, source, time.time(), model))
            kept = [h for h in self.versions if h.model is not None]
            for h in kept[:-KEEP_MODELS]:
                h.model = None
            del self.versions[:-KEEP_HISTORY]
            self.metrics.model(version, self.slot.swaps)
            return version

    def rollback(self) -> int:
        """Serve the model published before the current one again (as a new version)."""
        with self._model_lock:
            if len(self.versions) < 2 or self.versions[-2].model is None:
                raise ServiceError(409, "no previous model to roll back to")
            prev = self.versions[-2]
        return self.publish(prev.model, f"rollback to v{prev.version}")  # type: ignore[arg-type]

    def models(self) -> dict[str, Any]:
        with self._model_lock:
            metrics = self.worker.metrics if self.worker is not None else {}
            hist = [
                {"version": h.version, "source": h.source, "published_at": h.published_at,
                 "metrics": metrics.get(h.version)}
                for h in self.versions
            ]  # fmt: skip
            return {
                "version": self.slot.version,
                "previous_version": self.versions[-2].version if len(self.versions) > 1 else None,
                "swaps": self.slot.swaps,
                "history": hist,
                "worker": self.worker.report() if self.worker is not None else None,
                "trap": self.trap.report() if self.trap is not None else None,
            }

    def health(self) -> dict[str, Any]:
        snap = self.items.snapshot
        return {
            "status": "ok" if not self.closed else "closing",
            "model_version": self.slot.version,
            "items": len(snap),
            "live_items": len(snap.live_ids),
            "sessions": len(self.sessions),
            "run_id": self.run.run_id,
            "simulated_clock": self.config.simulated_clock,
        }

    # -- shutdown ---------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop the training worker, mark the run complete and close the store (a killed process leaves
        the run 'running')."""
        if self.worker is not None:
            self.worker.stop()
        with self._store_lock:
            if self.closed:
                return
            self.closed = True
            try:
                self.run.complete()
            finally:
                self.store.close()


def _first_bad(bad: np.ndarray, status: int, what: str) -> None:
    """Refuse the batch naming its first event where ``bad`` holds."""
    if bad.any():
        raise ServiceError(status, f"events.{int(np.argmax(bad))}: {what}")


def _match_slates(recs: list[SlateRecord], inv: np.ndarray, item_id: np.ndarray) -> np.ndarray:
    """Each event's index into the concatenated items of ``recs`` (event k is of slate ``recs[inv[k]]``),
    -1 where its item is not in that slate. One sorted search over (slate, item) keys."""
    lens = np.array([len(r.items) for r in recs])
    items = np.concatenate([r.items for r in recs]) if recs else np.empty(0, np.int64)
    if len(items) == 0:
        return np.full(len(item_id), -1, np.int64)
    span = int(items.max()) + 1
    if len(recs) * span >= 2**62:  # ids too large for one int64 key: match slate by slate
        out = np.full(len(item_id), -1, np.int64)
        start = np.cumsum(lens) - lens
        for k, r in enumerate(recs):
            where = {int(i): j for j, i in enumerate(r.items.tolist())}
            for e in np.flatnonzero(inv == k).tolist():
                out[e] = start[k] + where.get(int(item_id[e]), -1 - start[k])
        return out
    key = np.repeat(np.arange(len(recs), dtype=np.int64), lens) * span + items
    order = np.argsort(key, kind="stable")
    in_range = (item_id >= 0) & (item_id < span)
    want = inv.astype(np.int64) * span + np.where(in_range, item_id, 0)
    j = np.minimum(np.searchsorted(key[order], want), len(key) - 1)
    hit = in_range & (key[order][j] == want)
    return np.where(hit, order[j], -1)
