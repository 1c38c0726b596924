"""The simulation engine: days of sessions of slates, whole cohorts of users advanced together.

Per day and arm, the users active that day are processed in batches: with a static catalogue a batch
is the active users of one id block ``[b·batch_users, (b+1)·batch_users)`` (so the same user gets the
same draws whichever other blocks run: user-sharded runs are exact); in the living world, chunks of
``batch_users`` of each window's users. A batch advances slate by slate (all its users' k-th slates in
one vectorised step) until every session has stopped. No per-impression Python loop. Randomness comes
from one ``SeedSequence`` per (seed, day, arm, batch), so the same seed and config give the same event
log.

Retrieval: each session gets a random affine permutation of the catalogue
``item(j) = (offset + stride·j) mod n`` with ``gcd(stride, n) = 1``; slate ``k`` of the session
receives positions ``k·K … k·K + K − 1`` of it as candidates, so no item repeats within a session
(a session ends when the permutation is used up).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from intentrank.errors import ConfigError, IntentRankError
from intentrank.serving.ordering import select_slates
from intentrank.serving.policy import Policy, SlateRequest
from intentrank.simulator import behaviour as bh
from intentrank.simulator.kpis import KPIAccumulator
from intentrank.simulator.living import freshness
from intentrank.simulator.world import World
from intentrank.store.event_store import IMPRESSIONS_ARROW_SCHEMA

DAY_S = 86_400.0
SESSION_START_S = (6 * 3600.0, 23 * 3600.0)  # sessions start uniformly between 06:00 and 23:00

#: Receives each batch of events (Arrow table with the producer columns of the event schema). A sink
#: with a ``slates(table)`` method also receives the slate records of exploring policies (``logs_slates``:
#: candidates and item-position / cascade propensities, the store's slates table) before their events.
EventSink = Callable[[pa.Table], None]

_PRODUCER_SCHEMA = pa.schema([f for f in IMPRESSIONS_ARROW_SCHEMA if f.name not in ("event_id", "run_id")])


@dataclass
class WindowResult:
    """What happened in one window of the living world (handed to ``on_window`` after its events)."""

    day: int
    window: int
    start_ts: float  # seconds since the run's epoch
    end_ts: float
    sessions: int
    live_items: int


@dataclass
class DayResult:
    """What happened on one simulated day (for progress reporting and online training hooks)."""

    day: int
    active_users: int
    impressions: int
    clicks: int


def assign_arms(user_ids: np.ndarray, n_arms: int, salt: int = 0) -> np.ndarray:
    """Stable arm of each user: a SplitMix64 hash of (user id, salt) modulo ``n_arms`` (int16)."""
    if n_arms < 1:
        raise IntentRankError(f"n_arms must be at least 1, got {n_arms}")
    with np.errstate(over="ignore"):
        z = (
            user_ids.astype(np.uint64)
            + np.uint64(salt) * np.uint64(0x9E3779B97F4A7C15)
            + np.uint64(0x9E3779B97F4A7C15)
        )
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z % np.uint64(n_arms)).astype(np.int16)


def _coprimes(n: int) -> np.ndarray:
    cand = np.arange(1, max(n, 2), dtype=np.int64)
    out = cand[np.gcd(cand, n) == 1]
    return out if len(out) else np.array([1], dtype=np.int64)


class _EventBuffer:
    """Collects per-step column arrays and hands ~``flush_rows``-row Arrow tables to the sink."""

    def __init__(self, sink: EventSink | None, arm_names: Sequence[str], flush_rows: int) -> None:
        self.sink, self.flush_rows = sink, flush_rows
        self.dictionary = pa.array(list(arm_names), type=pa.string())
        self.parts: list[dict[str, np.ndarray]] = []
        self.slates: list[dict[str, Any]] = []
        self.rows = 0

    def add_slates(self, cols: dict[str, Any]) -> None:
        """Slate records of an exploring policy (sent with the next flush, before its events)."""
        if self.sink is not None and hasattr(self.sink, "slates"):
            self.slates.append(cols)

    def add(self, cols: dict[str, np.ndarray]) -> None:
        if self.sink is None:
            return
        self.parts.append(cols)
        self.rows += len(cols["ts"])
        if self.rows >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        if self.sink is None or not self.parts:
            return
        if self.slates:
            parts, self.slates = self.slates, []
            self.sink.slates(  # type: ignore[attr-defined]
                pa.table(
                    {
                        "slate_id": pa.array(np.concatenate([p["slate_id"] for p in parts]), pa.int64()),
                        "model_version": pa.array(
                            [v for p in parts for v in p["model_version"]], pa.string()
                        ),
                        **{
                            c: pa.array([row for p in parts for row in p[c]], pa.list_(t))
                            for c, t in (
                                ("candidates", pa.int64()),
                                ("marginal_propensity", pa.float64()),
                                ("cascade_propensity", pa.float64()),
                            )
                        },
                    }
                )
            )
        cols = {k: np.concatenate([p[k] for p in self.parts]) for k in self.parts[0]}
        self.parts, self.rows = [], 0
        arrays = []
        for f in _PRODUCER_SCHEMA:
            if f.name == "policy":
                arrays.append(pa.DictionaryArray.from_arrays(pa.array(cols["arm"]), self.dictionary))
            else:
                arrays.append(pa.array(cols[f.name], type=f.type))
        fields = [
            pa.field("policy", pa.dictionary(pa.int16(), pa.string()), nullable=False)
            if f.name == "policy"
            else f
            for f in _PRODUCER_SCHEMA
        ]
        self.sink(pa.Table.from_arrays(arrays, schema=pa.schema(fields)))


class _Recorder:
    """An event buffer that only records its calls (a parallel arm's events, replayed in arm order)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def add_slates(self, cols: dict[str, Any]) -> None:
        self.calls.append(("slates", cols))

    def add(self, cols: dict[str, np.ndarray]) -> None:
        self.calls.append(("events", cols))


class Simulator:
    """Runs arms (policies) over a world's users; events go to a sink, per-user KPIs are accumulated."""

    def __init__(
        self,
        world: World,
        policies: Policy | Sequence[Policy] | Mapping[str, Policy],
        arms: np.ndarray | None = None,
        seed: int = 0,
        daily: bool = False,
        users: np.ndarray | None = None,
        workers: int = 1,
    ) -> None:
        """``daily``: keep an end-of-day snapshot of every user's counters (per-day KPIs, see
        :meth:`day_frame`; costs the KPI arrays' memory once per day). ``users``: simulate only these user
        ids (the others are never active); with a static catalogue and fixed policies, a shard made of
        whole id blocks of ``batch_users`` gets exactly its users' events of a run over everyone (the
        random streams are per (seed, day, arm, id block); see :mod:`intentrank.experiments.parallel`).
        ``workers`` > 1 (living world): a window's arms run in that many threads (torch releases the GIL
        while scoring; each arm has its own users, random streams and policy), their events and slate ids
        merged in arm order afterwards, so the events are those of one worker (see :meth:`_run_jobs`)."""
        if workers < 1:
            raise ConfigError(f"Simulator: workers must be at least 1, got {workers}")
        self.workers = int(workers)
        self._pool: ThreadPoolExecutor | None = None
        if isinstance(policies, Policy):
            policies = [policies]
        if isinstance(policies, Mapping):
            names, pols = list(policies), list(policies.values())
        else:
            pols = list(policies)
            names = [p.name for p in pols]
        if not pols:
            raise ConfigError("policies: at least one policy is needed")
        if len(set(names)) != len(names):
            raise ConfigError(f"policies: arm names must be unique, got {names}")
        n_users = len(world.users)
        if arms is None:
            arms = (
                np.zeros(n_users, dtype=np.int16)
                if len(pols) == 1
                else assign_arms(np.arange(n_users, dtype=np.int64), len(pols), salt=seed)
            )
        arms = np.asarray(arms)
        if arms.shape != (n_users,) or arms.min(initial=0) < 0 or arms.max(initial=0) >= len(pols):
            raise ConfigError(f"arms must give each of the {n_users} users an arm in 0..{len(pols) - 1}")
        cfg = world.config
        if cfg.candidates > len(world.catalogue):
            raise ConfigError(
                f"simulator.candidates ({cfg.candidates}) exceeds the catalogue size ({len(world.catalogue)})"
            )
        if world.catalogue.living and cfg.candidates > cfg.living.live_items:
            raise ConfigError(
                f"simulator.candidates ({cfg.candidates}) exceeds simulator.living.live_items "
                f"({cfg.living.live_items})"
            )
        self.world, self.policies, self.arm_names = world, pols, names
        self.arms = arms.astype(np.int16)
        self.only = np.ones(n_users, dtype=bool)
        if users is not None:
            ids = np.asarray(users, dtype=np.int64)
            if ids.size and (ids.min() < 0 or ids.max() >= n_users):
                raise ConfigError(f"users: ids must be in 0..{n_users - 1}")
            self.only = np.zeros(n_users, dtype=bool)
            self.only[ids] = True
        self.seed = int(seed)
        self.kpis = KPIAccumulator(n_users, cfg.days)
        #: end-of-day snapshots of ``kpis`` (per-day KPIs: ``snapshots[d].since(snapshots[d - 1])``)
        self.snapshots: list[KPIAccumulator] = []
        self.daily = daily
        self.first_day = 0
        self._coprimes_by_n: dict[int, np.ndarray] = {}
        self._session_counter = 0
        self._slate_counter = 0
        #: seconds spent in the policies' ``scores`` (ranking) so far
        self.seconds_scoring = 0.0
        self.cpu_scoring = 0.0  # the same in process CPU seconds
        self._cpu_clock = time.process_time  # a parallel job's copy reads its thread's CPU clock
        self._exam = bh.examination(cfg.slate_size, cfg.behaviour)
        #: Monte Carlo stream of the logged item-position propensities (apart from the world's draws)
        self._prop_rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x0BE]))
        self._positions = np.arange(cfg.slate_size, dtype=np.int16)

    # -- public ------------------------------------------------------------------------------
    def run(
        self,
        sink: EventSink | None = None,
        days: int | None = None,
        on_day: Callable[[DayResult], None] | None = None,
        on_window: Callable[[WindowResult], None] | None = None,
        first_day: int = 0,
    ) -> KPIAccumulator:
        """Simulate ``days`` days (default ``config.days``) from day ``first_day`` on; returns the per-user
        KPI accumulator.

        ``on_window`` (living world only) is called after each window's events reached ``sink``: the place
        where an online learner updates the policies' models before the next window."""
        for result in self.iter_days(sink, days, on_window, first_day):
            if on_day is not None:
                on_day(result)
        return self.kpis

    def iter_days(
        self,
        sink: EventSink | None = None,
        days: int | None = None,
        on_window: Callable[[WindowResult], None] | None = None,
        first_day: int = 0,
    ) -> Iterator[DayResult]:
        """Simulate day by day, yielding after each (events of the day already handed to ``sink``).

        Static catalogue: each day's users run arm by arm in batches. Living world: the day runs in
        windows of ``living.window_min`` minutes in time order (see :meth:`_run_windows`). ``first_day``
        continues a timeline (e.g. a loop after a logging phase on the same world): days, timestamps and
        random streams are those of days ``first_day …``; per-day snapshots count from it."""
        cfg = self.world.config
        n_days = cfg.days if days is None else days
        if n_days < 1:
            raise ConfigError(f"days must be at least 1, got {n_days}")
        for p in self.policies:
            p.bind(self.world)
        self.world.users.reset()
        buffer = _EventBuffer(sink, self.arm_names, cfg.flush_rows)
        users = self.world.users
        active = self.only.copy()
        all_items = np.arange(len(self.world.catalogue), dtype=np.int64)
        if first_day < 0:
            raise ConfigError(f"first_day must be ≥ 0, got {first_day}")
        self.first_day = first_day
        for day in range(first_day, first_day + n_days):
            imp0, clk0 = self.kpis.impressions.sum(), self.kpis.clicks.sum()
            n_active = int(active.sum())
            if self.world.catalogue.living:
                self._run_windows(np.flatnonzero(active).astype(np.int64), day, buffer, on_window)
            else:
                for arm in range(len(self.policies)):
                    ids = np.flatnonzero(active & (self.arms == arm)).astype(np.int64)
                    # batches are id blocks [b·batch_users, (b+1)·batch_users): a batch's users, and so
                    # its random stream's draws, do not depend on which other blocks are simulated
                    blocks = ids // cfg.batch_users
                    cuts = np.flatnonzero(np.diff(blocks)) + 1
                    for batch in np.split(ids, cuts) if len(ids) else []:
                        b = int(batch[0] // cfg.batch_users)
                        rng = np.random.default_rng(np.random.SeedSequence([self.seed, day, arm, b, 0x51]))
                        self._run_batch(batch, arm, day, rng, buffer, all_items)
            buffer.flush()
            self.kpis.active_days[active] += 1
            if day > first_day:
                self.kpis.returned_days[active] += 1
            # overnight: trust drifts back toward its long-run level, then each user decides to return
            bcfg = cfg.behaviour
            users.trust += np.float32(bcfg.trust_recovery) * (users.trust0 - users.trust)
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, day, 0x7E7]))
            active = self.only & (
                rng.random(len(users), dtype=np.float32)
                < bh.return_prob(users.trust, users.activity_offset, bcfg)
            )
            if self.daily:
                self.snapshots.append(self.kpis.snapshot())
            yield DayResult(
                day, n_active, int(self.kpis.impressions.sum() - imp0), int(self.kpis.clicks.sum() - clk0)
            )
        if self._pool is not None:  # the arms' threads end with the run
            self._pool.shutdown()
            self._pool = None

    def day_frame(self, day: int) -> pd.DataFrame:
        """Per-user KPIs of one simulated day (column ``arm``); ``return_rate`` is 1 for users active on
        that day who had been active before."""
        if not self.daily:
            raise IntentRankError("per-day KPIs need Simulator(..., daily=True)")
        d = day - self.first_day
        if not 0 <= d < len(self.snapshots):
            raise IntentRankError(f"day {day} has not been simulated (days so far: {len(self.snapshots)})")
        before = self.snapshots[d - 1] if d > 0 else None
        return self.snapshots[d].since(before, days=2).frame(self.arms, self.arm_names)

    # -- the living world: a day in windows ----------------------------------------------------
    def _run_windows(
        self,
        active: np.ndarray,
        day: int,
        buffer: _EventBuffer,
        on_window: Callable[[WindowResult], None] | None,
    ) -> None:
        """Sessions start uniformly in 06:00–23:00; the day's windows run in time order, each with the items
        live at its start; a window's events are flushed before ``on_window``."""
        cfg = self.world.config
        width = cfg.living.window_min * 60.0
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, day, 0x57A7]))
        start = day * DAY_S + rng.uniform(*SESSION_START_S, len(active))
        window = ((start - day * DAY_S) // width).astype(np.int64)
        order = np.argsort(window, kind="stable")
        active, start, window = active[order], start[order], window[order]
        bounds = np.flatnonzero(np.diff(window)) + 1
        for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(window)], strict=True):
            w = int(window[lo])
            t0 = day * DAY_S + w * width
            live = self.world.catalogue.live_at(t0)
            uids, clock = active[lo:hi], start[lo:hi]
            jobs: list[list[tuple[Any, ...]]] = []  # per arm: its batches, in order
            for arm in range(len(self.policies)):
                m = self.arms[uids] == arm
                ids, clk = uids[m], clock[m]
                jobs.append([])
                for b, s0 in enumerate(range(0, len(ids), cfg.batch_users)):
                    brng = np.random.default_rng(np.random.SeedSequence([self.seed, day, w, arm, b, 0x51]))
                    sl = slice(s0, s0 + cfg.batch_users)
                    jobs[-1].append((ids[sl], arm, day, brng, live, clk[sl]))
            if self._parallel() and sum(bool(j) for j in jobs) > 1:
                self._run_jobs(jobs, buffer)
            else:
                for job in jobs:
                    for ids_, arm, d, brng, pool, clk_ in job:
                        self._run_batch(ids_, arm, d, brng, buffer, pool, clock=clk_)
            buffer.flush()
            if on_window is not None:
                on_window(WindowResult(day, w, t0, t0 + width, hi - lo, len(live)))

    def _parallel(self) -> bool:
        """Whether a window's arms may run in threads: more than one worker, this class's own serving
        (a subclass may serve otherwise), one policy object per arm and none drawing from the shared
        propensity stream (an exploring policy's OPE log)."""
        pols = self.policies
        return (
            self.workers > 1
            and type(self)._serve is Simulator._serve
            and len({id(p) for p in pols}) == len(pols)
            and not any(p.logs_slates for p in pols)
        )

    def _run_jobs(self, jobs: list[list[tuple[Any, ...]]], buffer: _EventBuffer) -> None:
        """Run each arm's batches (``jobs[arm]``) in a thread, then hand their events to ``buffer`` in arm
        order with session and slate ids as one worker would have numbered them.

        Each arm runs on a shallow copy of the simulator (shared world, users, KPIs: the arms' users are
        disjoint) with its own session counter (known in advance: one session per user), a slate counter
        from 0 (shifted when merged: slates per session are known only after the run) and a private
        event buffer; its scoring CPU is read from its thread's clock."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="arm")
        views = []
        for job in jobs:
            view = copy.copy(self)
            view._session_counter = self._session_counter
            self._session_counter += sum(len(j[0]) for j in job)
            view._slate_counter = 0
            view.seconds_scoring = view.cpu_scoring = 0.0
            view._cpu_clock = time.thread_time
            views.append((view, _Recorder()))

        def run(k: int) -> float:
            view, rec = views[k]
            t = time.perf_counter()
            for ids, arm, day, brng, pool, clk in jobs[k]:
                view._run_batch(ids, arm, day, brng, rec, pool, clock=clk)  # type: ignore[arg-type]
            return time.perf_counter() - t

        t0 = time.perf_counter()
        busy = sum(self._pool.map(run, [k for k, job in enumerate(jobs) if job]))
        wall = time.perf_counter() - t0
        # the arms' scoring overlapped: its wall seconds are the section's wall × scoring's share of the
        # threads' busy time (scoring CPU: the threads' own clocks, summed)
        scoring = sum(v.seconds_scoring for v, _ in views)
        self.seconds_scoring += wall * scoring / busy if busy > 0 else 0.0
        for view, rec in views:
            offset = self._slate_counter
            for kind, cols in rec.calls:
                cols = {**cols, "slate_id": cols["slate_id"] + offset}
                (buffer.add_slates if kind == "slates" else buffer.add)(cols)
            self._slate_counter += view._slate_counter
            self.cpu_scoring += view.cpu_scoring

    def _coprimes_of(self, n: int) -> np.ndarray:
        if n not in self._coprimes_by_n:
            self._coprimes_by_n[n] = _coprimes(n)
        return self._coprimes_by_n[n]

    # -- one step: the slates of a batch's sessions ------------------------------------------
    def _serve(
        self,
        arm: int,
        user_ids: np.ndarray,
        sessions: np.ndarray,
        candidates: np.ndarray,
        slate_index: int,
        clock: np.ndarray,
        day: int,
        rng: np.random.Generator,
        buffer: _EventBuffer | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(slates (nb, S) item ids best first, propensities (nb, S), slate ids (nb,)) of the sessions'
        ``slate_index``-th slates: the arm's policy ranks ``candidates`` (nb, K); an exploring policy's
        slates (candidates, item-position and cascade propensities) go to ``buffer`` for off-policy
        evaluation. A subclass may serve them otherwise (the HTTP client asks a running service,
        :mod:`intentrank.simulator.http_client`)."""
        policy = self.policies[arm]
        nb, K = candidates.shape
        req = SlateRequest(user_ids, candidates, np.full(nb, slate_index, dtype=np.int16), clock, day)
        t_score, c_score = time.perf_counter(), self._cpu_clock()
        scores = np.asarray(policy.scores(req, self.world.catalogue), dtype=np.float32)
        self.seconds_scoring += time.perf_counter() - t_score
        self.cpu_scoring += self._cpu_clock() - c_score
        if scores.shape != (nb, K):
            raise IntentRankError(
                f"policy {policy.name!r} returned scores of shape {scores.shape}, expected {(nb, K)}"
            )
        order, propensity = select_slates(
            scores, self.world.config.slate_size, stochastic=policy.stochastic,
            temperature=policy.temperature, rng=rng, name=policy.name, epsilon=policy.epsilon,
        )  # fmt: skip
        slate_ids = self._slate_counter + np.arange(nb, dtype=np.int64)
        self._slate_counter += nb
        if policy.logs_slates and buffer is not None:  # OPE log
            probs = policy.probabilities(scores, order, self._prop_rng, getattr(policy, "n_samples", 64))
            buffer.add_slates(
                {
                    "slate_id": slate_ids,
                    "model_version": [policy.model_version or policy.name] * nb,
                    "candidates": list(candidates),
                    "marginal_propensity": list(np.clip(probs.marginal, 1e-12, 1.0)),
                    "cascade_propensity": list(np.clip(probs.cascade, 1e-300, 1.0)),
                }
            )
        return np.take_along_axis(candidates, order, axis=1), propensity, slate_ids

    # -- one batch of users through their sessions -------------------------------------------
    def _run_batch(
        self,
        uids: np.ndarray,
        arm: int,
        day: int,
        rng: np.random.Generator,
        buffer: _EventBuffer,
        pool: np.ndarray,
        clock: np.ndarray | None = None,
    ) -> None:
        """Sessions of users ``uids``: candidates are drawn from ``pool`` (item ids) without repeats within a
        session; ``clock`` gives the sessions' start times (default: drawn in 06:00–23:00 of ``day``)."""
        world, cfg = self.world, self.world.config
        bcfg = cfg.behaviour
        cat, users, policy = world.catalogue, world.users, self.policies[arm]
        n_items, S, K = len(pool), cfg.slate_size, cfg.candidates
        B = len(uids)
        if B == 0:
            return
        session = self._session_counter + np.arange(B, dtype=np.int64)
        self._session_counter += B
        self.kpis.sessions[uids] += 1
        coprimes = self._coprimes_of(n_items)
        offset = rng.integers(0, n_items, B, dtype=np.int64)
        stride = coprimes[rng.integers(0, len(coprimes), B)]
        if clock is None:
            clock = day * DAY_S + rng.uniform(*SESSION_START_S, B)
        else:
            clock = np.array(clock, dtype=np.float64)
        living = cat.living
        rows = np.arange(B)  # indices into this batch of the users still scrolling
        max_slates = min(cfg.max_slates, n_items // K)
        topic_of = cat.topic_id
        interest_flat = users.interest.reshape(-1)
        T = cat.n_topics
        for j in range(max_slates):
            if len(rows) == 0:
                break
            u = uids[rows]
            nb = len(rows)
            k = np.arange(j * K, (j + 1) * K, dtype=np.int64)
            cand = pool[(offset[rows, None] + stride[rows, None] * k[None, :]) % n_items]
            slate, propensity, slate_ids = self._serve(
                arm, u, session[rows], cand, j, clock[rows], day, rng, buffer
            )

            # --- outcomes -------------------------------------------------------------------
            interest = interest_flat[u[:, None] * T + topic_of[slate]]
            if living:  # interest fades with the item's age at the time of the slate
                interest = interest * freshness(clock[rows, None] - cat.publish_ts64[slate], cfg.living)
            b = cat.true_clickbait32[slate]
            trust = users.trust[u]
            p_click = self._exam * bh.click_prob(
                interest, users.susceptibility[u, None], b, trust[:, None], bcfg
            )
            click = rng.random((nb, S), dtype=np.float32) < p_click
            ci = np.flatnonzero(click)  # flat indices of clicks
            r_of = ci // S
            c_items = slate.reshape(-1)[ci]
            q = cat.quality32[c_items]
            cb = cat.true_clickbait32[c_items]
            ci_interest = interest.reshape(-1)[ci]
            bounce_c = rng.random(len(ci), dtype=np.float32) < bh.bounce_prob(cb, q, bcfg)
            read_dwell = np.exp(
                bh.dwell_log_mean(ci_interest, q, bcfg)
                + np.float32(bcfg.dwell_sd) * rng.standard_normal(len(ci), dtype=np.float32)
            )
            bounce_dwell = rng.uniform(1.0, bcfg.bounce_dwell_max_s, len(ci)).astype(np.float32)
            dwell_c = np.where(bounce_c, bounce_dwell, read_dwell)
            conv_c = ~bounce_c & (
                rng.random(len(ci), dtype=np.float32)
                < bh.conversion_prob(ci_interest, q, users.conversion_offset[u[r_of]], bcfg)
            )
            sat_c = ~bounce_c & (dwell_c >= np.float32(bcfg.satisfied_dwell_s))

            dwell = np.zeros(nb * S, dtype=np.float64)
            dwell[ci] = dwell_c
            bounce = np.zeros(nb * S, dtype=bool)
            bounce[ci] = bounce_c
            conv = np.zeros(nb * S, dtype=bool)
            conv[ci] = conv_c
            n_click = np.bincount(r_of, minlength=nb)
            n_bounce = np.bincount(r_of, weights=bounce_c, minlength=nb)
            n_conv = np.bincount(r_of, weights=conv_c, minlength=nb)
            n_sat = np.bincount(r_of, weights=sat_c, minlength=nb)
            dwell_row = np.bincount(r_of, weights=dwell_c, minlength=nb)

            # --- events: ts = slate start + scrolling + reading of the items above ----------
            d2 = dwell.reshape(nb, S)
            scroll = np.float64(bcfg.scroll_s_per_item)
            ts = clock[rows, None] + scroll * self._positions[None, :] + (np.cumsum(d2, axis=1) - d2)
            buffer.add(
                {
                    "ts": ts.reshape(-1),
                    "day": np.full(nb * S, day, dtype=np.int32),
                    "user_id": np.repeat(u, S),
                    "session_id": np.repeat(session[rows], S),
                    "slate_id": np.repeat(slate_ids, S),
                    "slate_index": np.full(nb * S, j, dtype=np.int16),
                    "position": np.tile(self._positions, nb),
                    "item_id": slate.reshape(-1),
                    "arm": np.full(nb * S, arm, dtype=np.int16),
                    "propensity": propensity.reshape(-1),
                    "click": click.reshape(-1),
                    "dwell_s": dwell,
                    "bounce": bounce,
                    "conversion": conv,
                }
            )
            self.kpis.add_slates(u, slate, click, n_click, n_bounce, n_conv, n_sat, dwell_row, cat.category)
            policy.update(slate, click)

            # --- state: trust, clock, who scrolls on --------------------------------------
            new_trust = np.clip(
                trust
                - np.float32(bcfg.trust_bounce_loss) * n_bounce.astype(np.float32)
                + np.float32(bcfg.trust_satisfied_gain) * n_sat.astype(np.float32),
                0.0,
                1.0,
            )
            users.trust[u] = new_trust
            clock[rows] += scroll * S + dwell_row
            p_cont = bh.continue_prob(new_trust, n_sat.astype(np.float32), n_bounce.astype(np.float32), bcfg)
            rows = rows[rng.random(nb, dtype=np.float32) < p_cont]
