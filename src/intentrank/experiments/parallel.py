"""Embarrassingly parallel experiment work fanned out as Ray tasks — or in one process, identically.

Every task gets its own seed, spawned from the run's seed with ``np.random.SeedSequence(seed).spawn``,
and is a pure function of its arguments, so the results do not depend on where or in which order the
tasks run: ``backend="ray"`` (``ray.init`` of a local or cluster Ray; ``pip install intentrank[ray]``),
``"process"`` (a ``concurrent.futures`` process pool) and ``"serial"`` (this process) give identical
results. ``"auto"`` uses Ray when it is installed and initialised (``ray.init`` called), else serial.

Applications:

* :func:`replicate_ab` — replicated A/B runs / multi-seed studies of fixed policies (one task a seed);
* :func:`sweep_heuristic` — a parameter sweep of the heuristic clickbait penalty's knobs (l, h, d, w)
  on the in-simulator A/B against its base policy (one task per grid point × replicate; within a
  replicate every grid point sees the same users and random streams: common random numbers);
* :func:`simulate_sharded` — one simulation of fixed policies split by users into shards of whole id
  blocks; the merged per-user KPIs and events equal the one-process run's exactly (ids renumbered as
  the one process numbers them). The engine draws per (seed, day, arm, id block), see
  :mod:`intentrank.simulator.engine`.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from intentrank.errors import ConfigError
from intentrank.serving.policy import Policy
from intentrank.serving.postprocess import PenalizedPolicy
from intentrank.simulator.ab import SimulationResult, compare_kpis, simulate
from intentrank.simulator.catalogue import Catalogue, build_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import DayResult, Simulator
from intentrank.simulator.registry import get_policy
from intentrank.simulator.world import World

Backend = Literal["auto", "ray", "process", "serial"]
PolicySpec = str | Policy | tuple[str, dict[str, Any]]


def spawn_seeds(seed: int, n: int) -> list[int]:
    """``n`` independent task seeds spawned from ``seed`` (``SeedSequence.spawn``), as ints."""
    return [int(c.generate_state(1, dtype=np.uint32)[0]) for c in np.random.SeedSequence(seed).spawn(n)]


def _ray_ready() -> bool:
    try:
        import ray
    except ImportError:
        return False
    return bool(ray.is_initialized())


def fan_out(
    fn: Callable[..., Any],
    tasks: Sequence[tuple[Any, ...]],
    backend: Backend = "auto",
    workers: int | None = None,
) -> list[Any]:
    """``[fn(*t) for t in tasks]``, run as Ray tasks, in a process pool or serially; results in task order.

    ``fn`` must be a module-level function (picklable) whose result depends only on its arguments."""
    if backend == "auto":
        backend = "ray" if _ray_ready() else "serial"
    if backend == "serial":
        return [fn(*t) for t in tasks]
    if backend == "process":
        with cf.ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(fn, *zip(*tasks, strict=True))) if tasks else []
    if backend != "ray":
        raise ConfigError(f"backend must be auto, ray, process or serial, got {backend!r}")
    try:
        import ray
    except ImportError:
        raise ConfigError("backend 'ray' needs Ray: pip install 'intentrank[ray]'") from None
    if not ray.is_initialized():
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    remote = ray.remote(num_cpus=1)(fn)
    return list(ray.get([remote.remote(*t) for t in tasks]))


def _policy(spec: PolicySpec) -> Policy:
    if isinstance(spec, Policy):
        return spec
    if isinstance(spec, tuple):
        return get_policy(spec[0], **spec[1])
    return get_policy(spec)


def _arms(policies: Mapping[str, PolicySpec]) -> dict[str, Policy]:
    return {name: _policy(spec) for name, spec in policies.items()}


# -- replicated A/B runs ------------------------------------------------------------------------------
def _ab_task(
    policies: Mapping[str, PolicySpec], config: SimulatorConfig, catalogue: Catalogue, seed: int
) -> dict[str, Any]:
    res = simulate(_arms(policies), config, seed=seed, catalogue=catalogue)
    names = res.arm_names
    out: dict[str, Any] = {"seed": seed, "summary": res.summary()}
    if len(names) >= 2:
        out["compare"] = compare_kpis(res.per_user, names[0], names[1]).to_dict(orient="list")
    return out


def replicate_ab(
    policies: Mapping[str, PolicySpec],
    config: SimulatorConfig,
    replicates: int,
    seed: int = 0,
    catalogue: Catalogue | None = None,
    backend: Backend = "auto",
) -> list[dict[str, Any]]:
    """``replicates`` A/B runs of ``policies`` (arm name → policy or registry name / (name, params)), each
    with its own spawned seed (fresh users and random streams); per replicate: per-arm KPI summary and
    the first two arms' comparison table (as columns)."""
    cat = catalogue if catalogue is not None else build_catalogue(config=config.catalogue, seed=seed)
    tasks = [(dict(policies), config, cat, s) for s in spawn_seeds(seed, replicates)]
    return fan_out(_ab_task, tasks, backend)


# -- a sweep of the heuristic penalty's knobs -----------------------------------------------------------
def _sweep_task(
    base: str, params: dict[str, Any], config: SimulatorConfig, catalogue: Catalogue, seed: int
) -> dict[str, Any]:
    arms = {"base": get_policy(base), "heuristic": get_policy("heuristic", base=base, **params)}
    res = simulate(arms, config, seed=seed, catalogue=catalogue)
    table = compare_kpis(res.per_user, "base", "heuristic").set_index("metric")
    return {
        **params,
        "seed": seed,
        **{f"{m}_rel": float(table.loc[m, "rel_value"]) for m in table.index},
        "impressions_heavy_per_user": float(res.summary()["heuristic"].get("impressions_heavy_per_user", 0)),
    }


def sweep_heuristic(
    grid: Sequence[Mapping[str, Any]],
    config: SimulatorConfig,
    base: str = "ctr_oracle",
    replicates: int = 1,
    seed: int = 0,
    catalogue: Catalogue | None = None,
    backend: Backend = "auto",
) -> pd.DataFrame:
    """One in-simulator A/B per grid point (e.g. ``{"w": 0.3, "l": 0.4}``) × replicate: ``base`` against
    ``heuristic(base, **point)``; a row per task with the knobs, the seed and each KPI's relative change.

    Replicate r's seed is spawned from ``seed``; every grid point of a replicate shares it."""
    cat = catalogue if catalogue is not None else build_catalogue(config=config.catalogue, seed=seed)
    tasks = [(base, dict(p), config, cat, s) for s in spawn_seeds(seed, replicates) for p in grid]
    return pd.DataFrame(fan_out(_sweep_task, tasks, backend))


# -- user-sharded simulation of fixed policies ----------------------------------------------------------
def is_fixed(policy: Policy) -> bool:
    """A policy whose scores do not learn from the run (no ``update``): shardable by users."""
    if isinstance(policy, PenalizedPolicy):
        return is_fixed(policy.base)
    return type(policy).update is Policy.update


@dataclass
class ShardedResult:
    """A simulation merged from user shards: as :class:`SimulationResult`, plus the events if kept."""

    result: SimulationResult
    events: pa.Table | None
    shards: int


def shard_users(n_users: int, block: int, shards: int) -> list[np.ndarray]:
    """User ids of each shard: whole id blocks of ``block`` users, dealt round-robin."""
    n_blocks = -(-n_users // block)
    if shards < 1 or shards > n_blocks:
        raise ConfigError(
            f"shards must be in 1..{n_blocks} (the {n_users} users make {n_blocks} id block(s) of "
            f"simulator.batch_users = {block})"
        )
    ids = np.arange(n_users, dtype=np.int64)
    return [ids[(ids // block) % shards == k] for k in range(shards)]


def _shard_task(
    policies: Mapping[str, PolicySpec],
    config: SimulatorConfig,
    catalogue: Catalogue,
    seed: int,
    users: np.ndarray,
    keep_events: bool,
) -> tuple[pd.DataFrame, pa.Table | None, list[DayResult]]:
    world = World.create(catalogue, config, seed=seed)
    sim = Simulator(world, _arms(policies), seed=seed, users=users)
    parts: list[pa.Table] = []
    days: list[DayResult] = []
    kpis = sim.run(parts.append if keep_events else None, on_day=days.append)
    frame = kpis.frame(sim.arms, sim.arm_names).iloc[users].reset_index(drop=True)
    return frame, plain_events(parts) if keep_events else None, days


def plain_events(parts: Sequence[pa.Table]) -> pa.Table:
    """The simulator's event batches as one table, the dictionary-encoded ``policy`` as plain strings."""
    out = []
    for p in parts:
        i = p.schema.get_field_index("policy")
        out.append(p.set_column(i, pa.field("policy", pa.string()), p.column(i).cast(pa.string())))
    return pa.concat_tables(out)


def _renumber(events: pa.Table, arm_names: list[str], block: int) -> pa.Table:
    """Session and slate ids as one process numbers them: sessions in (day, arm, user) order, slates in
    (day, arm, id block, slate index, user) order (see the engine's batch loop)."""
    df = events.to_pandas()
    arm = df["policy"].map({n: i for i, n in enumerate(arm_names)}).to_numpy()
    day, user = df["day"].to_numpy(), df["user_id"].to_numpy()
    skey = pd.DataFrame({"d": day, "a": arm, "u": user})
    df["session_id"] = _dense_rank(skey)
    lkey = pd.DataFrame(
        {"d": day, "a": arm, "b": user // block, "j": df["slate_index"].to_numpy(), "u": user}
    )
    df["slate_id"] = _dense_rank(lkey)
    order = np.lexsort((df["position"].to_numpy(), df["slate_id"].to_numpy()))
    return pa.Table.from_pandas(
        df.iloc[order].reset_index(drop=True), schema=events.schema, preserve_index=False
    )


def _dense_rank(keys: pd.DataFrame) -> np.ndarray:
    """0-based dense rank of each row's key tuple (lexicographic over the columns)."""
    _, inverse = np.unique(keys.to_numpy(np.int64), axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def simulate_sharded(
    policies: Mapping[str, PolicySpec],
    config: SimulatorConfig,
    seed: int = 0,
    shards: int = 2,
    catalogue: Catalogue | None = None,
    keep_events: bool = False,
    backend: Backend = "auto",
) -> ShardedResult:
    """One simulation of fixed ``policies`` over ``config.users`` users, run as ``shards`` user shards
    (whole id blocks of ``simulator.batch_users``) and merged: the per-user KPIs (and, with
    ``keep_events``, the events, ids renumbered, in (slate, position) order) equal the one-process
    ``Simulator`` run's exactly. A static catalogue only (the living world's windows run in time order
    across all users); policies must not learn during the run (see :func:`is_fixed`)."""
    cat = catalogue if catalogue is not None else build_catalogue(config=config.catalogue, seed=seed)
    if cat.living:
        raise ConfigError("simulate_sharded: the living world runs windows across all users; not shardable")
    arms = _arms(policies)
    learning = [n for n, p in arms.items() if not is_fixed(p)]
    if learning:
        raise ConfigError(
            f"simulate_sharded: policies {learning} learn during the run (update); not shardable"
        )
    parts = shard_users(config.users, config.batch_users, shards)
    tasks = [(dict(policies), config, cat, seed, users, keep_events) for users in parts]
    out = fan_out(_shard_task, tasks, backend)
    per_user = pd.concat([f for f, _, _ in out]).sort_values("user_id", kind="stable").reset_index(drop=True)
    days = [
        DayResult(
            d[0].day, *(sum(getattr(x, f) for x in d) for f in ("active_users", "impressions", "clicks"))
        )
        for d in zip(*(days for _, _, days in out), strict=True)
    ]
    names = list(arms)
    events = None
    if keep_events:
        events = _renumber(
            pa.concat_tables([e for _, e, _ in out if e is not None]), names, config.batch_users
        )
    return ShardedResult(SimulationResult(per_user, names, days), events, shards)
