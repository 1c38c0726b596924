"""The closed loop: the living world served by models that learn from their own traffic as it flows.

Time advances in windows (``simulator.living.window_min``); in each window the users whose sessions start
then are served by the policy current at the window's start, their events land in the event store, and
after the window each arm's online learner (:class:`~intentrank.serving.incremental.IncrementalTrainer`)
updates its model from the new events and swaps it in for the next window. An arm can own its learner
(trained on its own arm's traffic: the deployed-variant setting) or share one; arms without a learner
(oracles, a frozen model) just serve.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from intentrank.errors import ConfigError
from intentrank.serving.incremental import IncrementalTrainer, UpdateReport
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
    update_every: int = 1,
    arms: np.ndarray | None = None,
    days: int | None = None,
    first_day: int = 0,
    on_window: Callable[[WindowResult], None] | None = None,
) -> LoopResult:
    """Simulate ``world`` (a living catalogue) with ``policies`` as arms, writing events to a new run of
    the event store ``store``;
    after every ``update_every`` windows each learner in ``learners`` (keyed by arm; the same learner may
    serve several arms) updates from the store. ``days`` (default ``simulator.days``) from ``first_day`` on
    (continuing a logging phase's timeline on the same world). Returns the per-user KPIs and the record."""
    if not world.catalogue.living:
        raise ConfigError("the loop needs the living world (simulator.living.enabled and a living catalogue)")
    if update_every < 1:
        raise ConfigError(f"update_every must be at least 1 window, got {update_every}")
    learners = dict(learners or {})
    unknown = sorted(set(learners) - set(policies))
    if unknown:
        raise ConfigError(f"learners for unknown arms {unknown}; arms: {sorted(policies)}")
    sim = Simulator(world, dict(policies), arms=arms, seed=seed, daily=True)
    result = LoopResult(sim.kpis, sim.arms, sim.arm_names, updates={a: [] for a in learners}, simulator=sim)
    t_train = 0.0
    distinct = list({id(lr): lr for lr in learners.values()}.values())
    arm_of = {id(lr): [a for a, x in learners.items() if x is lr] for lr in distinct}

    def hook(w: WindowResult) -> None:
        nonlocal t_train
        result.windows.append(w)
        if len(result.windows) % update_every == 0:
            t0 = time.perf_counter()
            for lr in distinct:
                rep = lr.update(store)
                if rep is not None:
                    for a in arm_of[id(lr)]:
                        result.updates[a].append(rep)
            t_train += time.perf_counter() - t0
        if on_window is not None:
            on_window(w)

    t0 = time.perf_counter()
    # one run of the store; the loop's users are the world's, so their ids are kept as they are
    with store.begin_run(  # type: ignore[attr-defined]
        seed=seed, policy=",".join(sim.arm_names), command="loop", on_existing="append", shared_users=True
    ) as run:
        result.run_id = run.run_id
        result.days = list(sim.iter_days(StoreSink(run), days, on_window=hook, first_day=first_day))
    total = time.perf_counter() - t0
    result.seconds = {"total": round(total, 2), "training": round(t_train, 2),
                      "simulation_and_scoring": round(total - t_train, 2)}  # fmt: skip
    return result
