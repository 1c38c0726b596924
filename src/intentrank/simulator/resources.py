"""Up-front resource checks: estimate a simulation's peak memory from the config, refuse before work.

A run that cannot fit should fail in a second with the setting to change, not after minutes in a
numpy ``MemoryError`` traceback (or by swapping the machine to a halt). Only arithmetic on the config
here: nothing is allocated, read or written, so the CLI calls these before building anything.

The model (bytes, measured with ``tracemalloc`` on numpy allocations, 12 topics; see
``docs/config.md``, "Resource checks"):

* per user, for the whole run: traits and trust (``users.py``), the KPI accumulators (``kpis.py``),
  the per-user KPI table and the arm-comparison copies — measured 374 B (1 arm) and 408 B (4 arms);
* per (batch user × candidate) of one vectorised step (``engine.py``, ``batch_users`` users at a
  time): candidates, scores, outcomes — measured 27 B (random) to 49 B (intent oracle); a learned
  ranker also encodes a feature row per candidate (not measured; bounded by :data:`MODEL_CANDIDATE_BYTES`);
* per buffered event row before it is handed to the sink (``flush_rows``): measured 121–133 B;
* a fixed base: interpreter, libraries and the catalogue (about 230 MiB RSS before any user).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from intentrank.config import IntentRankConfig, ResourcesConfig, problem, source_of
from intentrank.errors import ConfigError
from intentrank.simulator.config import SimulatorConfig

MIB = 1 << 20
GIB = 1 << 30
#: Bytes per simulated user for the whole run (measured 374–408 B, plus a margin).
USER_BYTES = 448
#: Bytes per (user × candidate) of a batch step under an oracle or heuristic policy (measured ≤ 49 B).
CANDIDATE_BYTES = 56
#: Bytes per (user × candidate) of a batch step under a learned ranker (feature rows; an upper guess).
MODEL_CANDIDATE_BYTES = 256
#: Bytes per event row held in the sink buffer (measured 121–133 B).
BUFFERED_ROW_BYTES = 144
#: Bytes per logged event kept in memory for training by the main job (frame + encoded features).
TRAINING_ROW_BYTES = 512
#: Interpreter, libraries and catalogue.
BASE_BYTES = 300 * MIB
#: Budget when ``resources.memory_budget_gib`` is unset: this, or less on a smaller machine.
DEFAULT_BUDGET_BYTES = 8 * GIB
#: Share of physical memory the default budget may use.
PHYSICAL_SHARE = 0.8


@dataclass(frozen=True)
class Estimate:
    """Estimated peak memory of a simulation (``bytes``) with its parts, and its size in events."""

    bytes: int
    users: int
    days: int
    max_events: int  # upper bound: every user active every day, every session scrolls max_slates
    parts: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """``1.2 GiB (users 0.4, batch 0.3, ...)``."""
        inner = ", ".join(f"{k} {v / GIB:.2f}" for k, v in self.parts.items())
        return f"{self.bytes / GIB:,.1f} GiB ({inner} GiB)"


def estimate_simulation(
    config: SimulatorConfig | IntentRankConfig,
    users: int | None = None,
    days: int | None = None,
    writes_events: bool = True,
    model_policy: bool = False,
) -> Estimate:
    """Peak memory of simulating ``users`` × ``days`` (default: the config's) — arithmetic only.

    ``writes_events``: events go to a sink (the buffer counts); ``model_policy``: a learned ranker
    scores the candidates (feature rows per candidate).
    """
    sim = config.simulator if isinstance(config, IntentRankConfig) else config
    n = sim.users if users is None else users
    d = sim.days if days is None else days
    batch = min(sim.batch_users, n)
    day_events = n * sim.max_slates * sim.slate_size
    parts = {
        "base": BASE_BYTES,
        "users": n * USER_BYTES,
        "batch": batch * sim.candidates * (MODEL_CANDIDATE_BYTES if model_policy else CANDIDATE_BYTES),
    }
    if writes_events:
        parts["event_buffer"] = min(sim.flush_rows + batch * sim.slate_size, day_events) * BUFFERED_ROW_BYTES
    return Estimate(bytes=sum(parts.values()), users=n, days=d, max_events=day_events * d, parts=parts)


def memory_budget(resources: ResourcesConfig) -> int:
    """The budget in bytes: ``resources.memory_budget_gib``, else min(8 GiB, 80% of physical memory)."""
    if resources.memory_budget_gib is not None:
        return int(resources.memory_budget_gib * GIB)
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return DEFAULT_BUDGET_BYTES
    return min(DEFAULT_BUDGET_BYTES, int(physical * PHYSICAL_SHARE)) if physical > 0 else DEFAULT_BUDGET_BYTES


def _check(cfg: IntentRankConfig, est: Estimate, users_key: str, days_key: str, what: str) -> None:
    limits = cfg.resources
    if est.days > limits.max_days:
        raise ConfigError(
            problem(
                cfg,
                days_key,
                f"{est.days:,} days is more than resources.max_days ({limits.max_days:,}); "
                f"{what} would hold up to {est.max_events:,} events",
            )
        )
    budget = memory_budget(limits)
    if est.bytes > budget:
        budget_src = source_of(cfg, "resources.memory_budget_gib")
        raise ConfigError(
            problem(
                cfg,
                users_key,
                f"{est.users:,} users need an estimated {est.describe()} of memory for {what}, over the "
                f"budget of {budget / GIB:.1f} GiB (resources.memory_budget_gib, {budget_src}); "
                "use fewer users or raise the budget",
            )
        )


def check_simulation(cfg: IntentRankConfig, writes_events: bool = True) -> Estimate:
    """Refuse (:class:`ConfigError` naming the setting, its source and the estimate) a ``simulate`` run of
    ``simulator.users`` × ``simulator.days`` over the limits; returns the estimate otherwise."""
    est = estimate_simulation(cfg, writes_events=writes_events)
    _check(cfg, est, "simulator.users", "simulator.days", "the simulation")
    return est


def check_main_job(cfg: IntentRankConfig) -> list[Estimate]:
    """Refuse a main job whose logging or A/B phase is over the limits; returns both estimates.

    The logging phase also keeps its events in memory for training (an upper bound of rows); the A/B
    phase scores candidates with the learned ranker.
    """
    ex = cfg.experiment
    log = estimate_simulation(cfg, users=ex.log_users, days=ex.log_days)
    log_rows = log.max_events
    log = Estimate(
        bytes=log.bytes + log_rows * TRAINING_ROW_BYTES,
        users=log.users,
        days=log.days,
        max_events=log.max_events,
        parts=log.parts | {"training_rows": log_rows * TRAINING_ROW_BYTES},
    )
    _check(cfg, log, "experiment.log_users", "experiment.log_days", "the logging phase")
    ab = estimate_simulation(cfg, users=ex.ab_users, days=ex.ab_days, writes_events=False, model_policy=True)
    _check(cfg, ab, "experiment.ab_users", "experiment.ab_days", "the A/B phase")
    return [log, ab]
