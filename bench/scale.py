"""Scale-out on this machine: 2 workers vs 1, for DDP training (torchrun, gloo) and a Ray sweep.

Training: a random-logging simulator log (``--users`` × 2 days) in a DuckDB store; ``intentrank train``
under ``torchrun --nproc_per_node=1`` and ``=2`` with the same global batch and ``--max-steps``; prints
rows/s of the training loop (startup and reading excluded), the scaling ratio and where each rank's time
goes: reading + encoding its shard (load), assembling batches (data), forward/backward/all-reduce/step
(compute), plus a measured all-reduce of the model's gradient size (communication, one step's worth).
Sweep: ``sweep_heuristic`` over ``--grid`` points of the heuristic's w, serially vs Ray tasks
(``ray.init(num_cpus=2)``); prints tasks/s, the ratio and Ray's startup and per-task overhead.

Not a test: figures depend on the machine and its load (printed; the cores are shared).

    .venv/bin/python bench/scale.py [--users 600] [--steps 60] [--batch 1024] [--grid 4] [--skip sweep]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml


def load() -> str:
    """The 1-minute load average and the cores (the machine is shared)."""
    return f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"


def make_log(path: Path, users: int) -> int:
    """A random-logging simulator log of ``users`` × 2 days in a DuckDB store; returns its events."""
    from intentrank.simulator.ab import simulate
    from intentrank.simulator.catalogue import synthetic_catalogue
    from intentrank.simulator.config import SimulatorConfig
    from intentrank.store import EventStore

    cat = synthetic_catalogue(3000, seed=0)
    with EventStore(path) as store:
        store.write_items(cat.items)
        with store.begin_run(policy="random", command="bench") as run:
            simulate("random", SimulatorConfig(users=users, days=2), seed=0, catalogue=cat, sink=run.append)
        return store.count()


def ddp_worker(events: str, config: str, out: str, steps: int) -> None:
    """Under torchrun: train data-parallel (as ``intentrank train`` does), then time an all-reduce of a
    tensor the size of the model's dense gradients (the sparse tables' rows travel separately)."""
    import torch
    import torch.distributed as dist
    from torch import nn

    from intentrank.config import load_config
    from intentrank.ranking.distributed import context_from_env, process_group, train_distributed
    from intentrank.ranking.trainer import Trainer

    ctx = context_from_env()
    assert ctx is not None, "run under torchrun"
    with process_group(ctx):
        trainer = Trainer(load_config(Path(config)).ranker)
        rep = train_distributed(trainer, events, out, ctx=ctx, max_steps=steps)
        model = trainer.model_
        sparse = {id(p) for m in model.modules() if isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse
                  for p in m.parameters()}  # fmt: skip
        dense = sum(p.numel() for p in model.parameters() if id(p) not in sparse)
        t = torch.zeros(dense)
        for _ in range(3):
            dist.all_reduce(t)
        n = 20
        start = time.perf_counter()
        for _ in range(n):
            dist.all_reduce(t)
        rep["allreduce_ms"] = (time.perf_counter() - start) / n * 1000
        rep["dense_params"] = dense
        if ctx.is_main:
            print(json.dumps(rep, default=float))


def torchrun(nproc: int, args: list[str]) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"torchrun failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout[r.stdout.index("{") :]), wall


def bench_training(args: argparse.Namespace, tmp: Path) -> None:
    t0 = time.perf_counter()
    n = make_log(tmp / "ev.duckdb", args.users)
    print(f"log: {n:,} events ({args.users} users × 2 days) in {time.perf_counter() - t0:.1f}s ({load()})")
    cfg = tmp / "c.yaml"
    train = {"epochs": 50, "batch_size": args.batch, "progress": False, "valid_fraction": 0.0}
    cfg.write_text(yaml.safe_dump({"ranker": {"train": train}}))
    rows, comm = {}, {}
    print(
        "| workers | rows/s (loop) | wall s (+ startup) | load s | data s | compute s | all-reduce | note |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for nproc in (1, 2):
        rep, wall = torchrun(nproc, [__file__, "--ddp-worker", str(tmp / "ev.duckdb"), str(cfg),
                                     str(tmp / f"m{nproc}"), str(args.steps)])  # fmt: skip
        ts = rep["time_split_s"]
        loop = ts["data_s"] + ts["compute_s"]
        rows[nproc] = rep["steps"] * args.batch / loop
        comm[nproc] = rep["allreduce_ms"]
        print(f"| {nproc} | {rows[nproc]:,.0f} | {wall:.1f} | {ts['load_s']:.2f} | {ts['data_s']:.2f} | "
              f"{ts['compute_s']:.2f} | {rep['allreduce_ms']:.1f} ms × {rep['steps']} = "
              f"{rep['allreduce_ms'] * rep['steps'] / 1000:.2f} s | rank 0; {rep['steps']} steps of "
              f"{args.batch} rows; {rep['dense_params']:,} dense grad floats; {load()} |")  # fmt: skip
    print(f"\ntraining scaling 2 vs 1 worker: {rows[2] / rows[1]:.2f}× ({load()})")


def bench_sweep(args: argparse.Namespace) -> None:
    import ray

    from intentrank.experiments.parallel import sweep_heuristic
    from intentrank.simulator.catalogue import synthetic_catalogue
    from intentrank.simulator.config import SimulatorConfig

    cat = synthetic_catalogue(3000, seed=0)
    cfg = SimulatorConfig(users=args.sweep_users, days=2)
    grid = [{"w": float(w)} for w in np.linspace(0, 0.8, args.grid)]
    sweep_heuristic(grid[:1], cfg, seed=0, catalogue=cat, backend="serial")  # warm: imports, first calls
    t0 = time.perf_counter()
    one = sweep_heuristic(grid, cfg, seed=0, catalogue=cat, backend="serial")
    serial = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0
    t0 = time.perf_counter()
    sweep_heuristic(grid[:2], cfg, seed=0, catalogue=cat, backend="ray")  # warm the workers
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    par = sweep_heuristic(grid, cfg, seed=0, catalogue=cat, backend="ray")
    on_ray = time.perf_counter() - t0
    t0 = time.perf_counter()
    ray.get([ray.remote(lambda: None).remote() for _ in range(20)])
    per_task = (time.perf_counter() - t0) / 20
    ray.shutdown()
    assert par.equals(one), "Ray and serial sweeps differ"
    print(f"\nsweep: {args.grid} A/B runs of {args.sweep_users} users × 2 days (heuristic w grid), "
          f"Ray result == serial: True")  # fmt: skip
    print("| run | seconds | tasks/s | note |")
    print("|---|---|---|---|")
    print(f"| serial (1 process) | {serial:.1f} | {args.grid / serial:.2f} | {load()} |")
    print(f"| Ray, 2 CPUs, warm workers | {on_ray:.1f} | {args.grid / on_ray:.2f} | "
          f"ray.init {startup:.1f}s, first 2 tasks (worker start, imports) {warm:.1f}s, "
          f"empty task round trip {per_task * 1000:.0f} ms; {load()} |")  # fmt: skip
    print(f"sweep scaling Ray 2 CPUs vs 1 process: {serial / on_ray:.2f}×")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=600, help="users of the training log (2 days)")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=1024, help="global batch (split over the workers)")
    ap.add_argument("--grid", type=int, default=4, help="sweep points")
    ap.add_argument("--sweep-users", type=int, default=1000)
    ap.add_argument("--skip", choices=["train", "sweep"], default=None)
    ap.add_argument("--ddp-worker", nargs=4, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ddp_worker:
        events, config, out, steps = args.ddp_worker
        ddp_worker(events, config, out, int(steps))
        return
    print(f"start: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.skip != "train":
            bench_training(args, Path(tmp))
    if args.skip != "sweep":
        bench_sweep(args)


if __name__ == "__main__":
    main()
