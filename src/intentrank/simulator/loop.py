"""The closed loop: the living world served by models that learn from their own traffic as it flows.

Time advances in windows (``simulator.living.window_min``); in each window the users whose sessions start
then are served by the policy current at the window's start, their events land in the event store, and
after the window each arm's online learner (:class:`~intentrank.serving.incremental.IncrementalTrainer`)
updates its model from the new events and swaps it in for the next window. An arm can own its learner
(trained on its own arm's traffic: the deployed-variant setting) or share one; arms without a learner
(oracles, a frozen model) just serve. Before the learners, every arm's user history (a policy's
``history``, e.g. :class:`~intentrank.serving.ranker.RankerPolicy`'s) consumes the window's events from
the store, so the next window is served with it.

The store is read once per window (the events since the last read, joined with the item table) and that
frame feeds every history and every learner (:class:`~intentrank.serving.incremental.EventBatch`); a
learner whose watermark lags (it skipped an update) reads the store itself.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from intentrank.errors import ConfigError
from intentrank.ranking.events import load_events
from intentrank.ranking.history import UserHistory
from intentrank.serving.incremental import EventBatch, IncrementalTrainer, UpdateReport
from intentrank.serving.policy import Policy
from intentrank.simulator.engine import DayResult, Simulator, WindowResult
from intentrank.simulator.kpis import KPIAccumulator
from intentrank.simulator.sinks import StoreSink
from intentrank.simulator.world import World


@dataclass
class LoopResult:
    """The loop's KPIs per user, its windows, the learners' updates and where the seconds went."""

    kpis: KPIAccumulator
    arms: np.ndarray
    arm_names: list[str]
    windows: list[WindowResult] = field(default_factory=list)
    days: list[DayResult] = field(default_factory=list)
    updates: dict[str, list[UpdateReport]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: int | None = None
    simulator: Simulator | None = None

    def per_user(self) -> pd.DataFrame:
        """Per-user KPIs over the whole loop (column ``arm``)."""
        return self.kpis.frame(self.arms, self.arm_names)

    def day_frame(self, day: int) -> pd.DataFrame:
        """Per-user KPIs of one day of the loop (column ``arm``)."""
        assert self.simulator is not None
        return self.simulator.day_frame(day)


def run_loop(
    world: World,
    policies: Mapping[str, Policy],
    store: object,
    learners: Mapping[str, IncrementalTrainer] | None = None,
    *,
    seed: int = 0,
    update_every: int | None = None,
    arms: np.ndarray | None = None,
    days: int | None = None,
    first_day: int = 0,
    on_window: Callable[[WindowResult], None] | None = None,
    on_day: Callable[[DayResult, LoopResult], None] | None = None,
    workers: int = 1,
) -> LoopResult:
    """Simulate ``world`` (a living catalogue) with ``policies`` as arms, writing events to a new run of
    the event store ``store``; after every ``update_every`` windows (default
    ``simulator.living.update_every_windows``) each learner in ``learners`` (keyed by arm; the same
    learner may serve several arms) updates from the events since its last update. ``days`` (default
    ``simulator.days``) from ``first_day`` on (continuing a logging phase's timeline on the same world).
    Returns the per-user KPIs and the record; ``seconds`` splits the wall time into simulation, scoring
    (the policies' ``scores``), reading events, user histories and training. ``on_day`` is called after
    each simulated day with the day and the result so far (``result.day_frame(day)`` works already: a
    long run can report its days as they finish). ``workers`` > 1 runs a window's arms
    (``Simulator(workers=)``)
    and the learners' updates (independent of each other: own model, history, replay and optimiser) in that
    many threads (torch releases the GIL in its ops; each keeps torch's intra-op thread count); the events
    and models are those of one worker."""
    if not world.catalogue.living:
        raise ConfigError("the loop needs the living world (simulator.living.enabled and a living catalogue)")
    if update_every is None:
        update_every = world.config.living.update_every_windows
    if update_every < 1:
        raise ConfigError(
            f"simulator.living.update_every_windows (update_every) must be at least 1, got {update_every}"
        )
    if workers < 1:
        raise ConfigError(f"run_loop: workers must be at least 1, got {workers}")
    learners = dict(learners or {})
    unknown = sorted(set(learners) - set(policies))
    if unknown:
        raise ConfigError(f"learners for unknown arms {unknown}; arms: {sorted(policies)}")
    sim = Simulator(world, dict(policies), arms=arms, seed=seed, daily=True, workers=workers)
    result = LoopResult(sim.kpis, sim.arms, sim.arm_names, updates={a: [] for a in learners}, simulator=sim)
    t_train = t_history = t_read = 0.0
    cpu = {"training": 0.0, "history": 0.0, "reading_events": 0.0}  # process CPU seconds (load-robust)
    distinct = list({id(lr): lr for lr in learners.values()}.values())
    arm_of = {id(lr): [a for a, x in learners.items() if x is lr] for lr in distinct}
    histories = list({id(h): h for p in policies.values()
                      if isinstance(h := getattr(p, "history", None), UserHistory)}.values())  # fmt: skip
    items = world.catalogue.items
    read_at = int(store.watermark())  # type: ignore[attr-defined]
    batch_since = read_at
    pending: list[pd.DataFrame] = []  # windows read since the learners' last update

    def hook(w: WindowResult) -> None:
        nonlocal t_train, t_history, t_read, read_at, batch_since
        result.windows.append(w)
        t0, c0 = time.perf_counter(), time.process_time()
        last = int(store.watermark())  # type: ignore[attr-defined]
        fresh = None
        if last > read_at:  # one read of the window's events for every history and learner
            # the window's impressions only (the item table is the world's: not re-read from the store
            # every window), joined and derived as load_events does for a store
            imp = store.read_impressions(read_at, last, "all")  # type: ignore[attr-defined]
            fresh = load_events(imp, items)
            pending.append(fresh)
        t_read += time.perf_counter() - t0
        cpu["reading_events"] += time.process_time() - c0
        t0, c0 = time.perf_counter(), time.process_time()
        for h in histories:
            if fresh is not None and h.watermark == read_at:
                h.update(fresh)
                h.watermark = last
            else:
                h.catch_up(store, items)
        read_at = last
        t_history += time.perf_counter() - t0
        cpu["history"] += time.process_time() - c0
        if len(result.windows) % update_every == 0:
            t0, c0 = time.perf_counter(), time.process_time()
            batch = None
            if pending:
                frame = pending[0] if len(pending) == 1 else pd.concat(pending, ignore_index=True)
                batch = EventBatch(frame, batch_since, last)
            pending.clear()
            batch_since = last
            # learners that start at the batch update in parallel; one that lags reads the store (one
            # connection: not from two threads), so it updates alone first. Wrappers without a watermark of
            # their own (an aligner over a learner another arm also serves) update in order, serially.
            if pool is None or not all(hasattr(lr, "watermark") for lr in distinct):
                lagging = list(distinct)
            else:
                lagging = [lr for lr in distinct if batch is None or lr.watermark != batch.since]
            reps = {id(lr): lr.update(store, batch) for lr in lagging}
            ready = [lr for lr in distinct if id(lr) not in reps]
            if pool is not None and len(ready) > 1:
                done = pool.map(lambda lr: lr.update(store, batch), ready)
                reps |= dict(zip(map(id, ready), done, strict=True))
            else:
                reps |= {id(lr): lr.update(store, batch) for lr in ready}
            for lr in distinct:
                rep = reps[id(lr)]
                if rep is not None:
                    for a in arm_of[id(lr)]:
                        result.updates[a].append(rep)
            t_train += time.perf_counter() - t0
            cpu["training"] += time.process_time() - c0
        if on_window is not None:
            on_window(w)

    t_report = c_report = 0.0
    t0, c_all = time.perf_counter(), time.process_time()
    pool = ThreadPoolExecutor(workers, thread_name_prefix="learner") if workers > 1 else None
    # one run of the store; the loop's users are the world's, so their ids are kept as they are
    with (
        pool if pool is not None else contextlib.nullcontext(),
        store.begin_run(  # type: ignore[attr-defined]
            seed=seed, policy=",".join(sim.arm_names), command="loop", on_existing="append",
            shared_users=True,
        ) as run,
    ):
        result.run_id = run.run_id
        for day in sim.iter_days(StoreSink(run), days, on_window=hook, first_day=first_day):
            result.days.append(day)
            if on_day is not None:  # the caller's reporting is not the loop's time
                t1, c1 = time.perf_counter(), time.process_time()
                on_day(day, result)
                t_report += time.perf_counter() - t1
                c_report += time.process_time() - c1
    total = time.perf_counter() - t0 - t_report
    cpu_total = time.process_time() - c_all - c_report
    cpu_rest = cpu_total - sum(cpu.values()) - sim.cpu_scoring
    scoring = sim.seconds_scoring
    result.seconds = {"total": round(total, 2), "training": round(t_train, 2),
                      "history": round(t_history, 2), "reading_events": round(t_read, 2),
                      "scoring": round(scoring, 2),
                      "simulation": round(total - t_train - t_history - t_read - scoring, 2),
                      "simulation_and_scoring": round(total - t_train - t_history - t_read, 2),
                      "cpu_total": round(cpu_total, 2), "cpu_scoring": round(sim.cpu_scoring, 2),
                      "cpu_simulation": round(cpu_rest, 2)}  # fmt: skip
    result.seconds |= {f"cpu_{k}": round(v, 2) for k, v in cpu.items()}
    return result
