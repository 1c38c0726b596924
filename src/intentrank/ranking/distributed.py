"""Data-parallel training of the ranker under ``torchrun`` (PyTorch DDP: gloo on CPU, nccl on CUDA).

``torchrun --standalone --nproc_per_node=N -m intentrank.cli.main train --events SRC --out DIR`` (or
``intentrank train --nproc N ...``, which launches that) runs N copies of the batch trainer, one per rank:

* **Data.** Rank r reads only its users' events, ``user_id % N == r``, through the store
  (``read_events(..., shard=(r, N))``: a DuckDB filter, or a filter pushed into the Parquet scan of a
  partitioned export). A user's whole history lives on one rank, so the point-in-time user-history
  features are the ones one process computes.
* **Batches.** ``ranker.train.batch_size`` is the *global* batch: each rank draws ``ceil(B / N)`` rows
  of its shard per step (its own seeded permutation per epoch, cycled so every rank runs the same number
  of equal-sized steps). DDP averages the ranks' gradients, so a step's gradient is the mean of the N
  local batch losses' gradients — exactly what :func:`fit_data_parallel` computes in one process given
  the N shards (``ctx=None``), the reference the equality test compares against. (The losses are
  weighted means per batch, so this is the mean of N per-shard means, not one mean over all rows.)
* **Sparse embeddings.** With gloo, the id-embedding tables keep sparse gradients: DDP all-reduces them
  as sparse tensors (only the rows the ranks touched) and SparseAdam updates those rows. NCCL has no
  sparse all-reduce, so under nccl the tables use dense gradients (``sparse_embeddings`` off, AdamW).
* **Rank 0** logs (progress bar), writes the checkpoint (the model directory ``intentrank evaluate``
  reads) and, after every epoch, ``ddp_state.pt`` (weights, optimiser states, epoch, history, early
  stopping state) — ``--resume`` continues an interrupted run from the next epoch, exactly.
* Validation: every rank holds out its share of slates (the trainer's slate hash); the validation loss
  is all-reduced (early stopping decides the same on every rank); the held-out rows are gathered on rank
  0 for the final metrics.

Not supported under DDP (refused with a ConfigError): mitigation methods with extra trained modules
(``adversarial``) or a post-training step (``rl_alignment``). The incremental (warm-start) trainer runs
one process: see docs/scale.md for what DDP would take there.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from intentrank.errors import ConfigError, DataError
from intentrank.ranking.events import EventSource, load_events
from intentrank.ranking.models.multitask import RANKER_TASKS
from intentrank.ranking.trainer import EncodedEvents, ExtraLoss, Trainer
from intentrank.runtime import torch_seed, torch_threads

STATE_FILE = "ddp_state.pt"
Hooks = Callable[[nn.Module], dict[str, Any]]


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun job."""

    rank: int
    world: int
    local_rank: int
    backend: str
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs and writes checkpoints."""
        return self.rank == 0


def context_from_env(env: dict[str, str] | None = None) -> DistContext | None:
    """The torchrun context from ``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK``, or None outside torchrun.

    Backend: nccl with the process's CUDA device when CUDA is available, gloo on CPU otherwise."""
    env = dict(os.environ) if env is None else env
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        rank, world, local = int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError(f"torchrun environment: RANK/WORLD_SIZE not integers ({env['RANK']!r})") from None
    if torch.cuda.is_available():
        return DistContext(rank, world, local, "nccl", torch.device("cuda", local))
    return DistContext(rank, world, local, "gloo", torch.device("cpu"))


@contextlib.contextmanager
def process_group(ctx: DistContext) -> Iterator[None]:
    """Join the job's process group (torchrun's rendezvous env) for the block, and leave it after."""
    import torch.distributed as dist

    if ctx.device.type == "cuda":
        torch.cuda.set_device(ctx.device)
    dist.init_process_group(ctx.backend, rank=ctx.rank, world_size=ctx.world)
    try:
        yield
    finally:
        dist.destroy_process_group()


class _Comm:
    """Sums and maxima over the ranks (torch.distributed), or over the local shards without a job."""

    def __init__(self, ctx: DistContext | None) -> None:
        self.ctx = ctx

    def sum(self, values: Sequence[float]) -> list[float]:
        if self.ctx is None:
            return [float(v) for v in values]
        import torch.distributed as dist

        t = torch.tensor(list(values), dtype=torch.float64, device=self.ctx.device)
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return [float(v) for v in t.cpu()]

    def max(self, value: int) -> int:
        if self.ctx is None:
            return int(value)
        import torch.distributed as dist

        t = torch.tensor([value], dtype=torch.int64, device=self.ctx.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` on rank 0 (None elsewhere); without a job, ``[obj]``."""
        if self.ctx is None:
            return [obj]
        import torch.distributed as dist

        out: list[Any] | None = [None] * self.ctx.world if self.ctx.is_main else None
        dist.gather_object(obj, out, dst=0)
        return out


def concat_events(parts: Sequence[EncodedEvents]) -> EncodedEvents:
    """Rows of several encoded sets as one (text tables stacked, row indices shifted)."""
    if len(parts) == 1:
        return parts[0]
    text_idx = text_table = None
    if parts[0].text_table is not None:
        shift = np.cumsum([0, *[len(p.text_table) for p in parts[:-1]]])  # type: ignore[arg-type]
        text_idx = torch.cat([p.text_idx + int(s) for p, s in zip(parts, shift, strict=True)])  # type: ignore[operator]
        text_table = torch.cat([p.text_table for p in parts])  # type: ignore[misc]
    return EncodedEvents(
        torch.cat([p.cat for p in parts]),
        torch.cat([p.dense for p in parts]),
        {k: torch.cat([p.labels[k] for p in parts]) for k in parts[0].labels},
        np.concatenate([p.slate_id for p in parts]),
        text_idx,
        text_table,
    )


def load_shards(
    trainer: Trainer, source: EventSource, ranks: Sequence[int], world: int
) -> list[EncodedEvents]:
    """Encoded events of the user shards ``ranks`` of ``world`` (each read by the store on its own)."""
    out = []
    for r in ranks:
        df = load_events(source, shard=(r, world))
        out.append(trainer.encode_frame(df))
    return out


def _state_path(directory: str | Path | None) -> Path | None:
    return None if directory is None else Path(directory) / STATE_FILE


def _save_state(path: Path, state: dict[str, Any]) -> None:
    """torch.save to a temporary name, renamed over ``path`` when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _to(batch: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    if device.type == "cpu":
        return batch
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _seed(seed: int, epoch: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, epoch, rank, 0xDD9]).generate_state(1)[0])


@torch.no_grad()
def _loss_sum(
    trainer: Trainer,
    data: EncodedEvents,
    device: torch.device,
    extra_losses: Sequence[ExtraLoss],
    sample_weight_fn: Callable[[dict[str, Tensor]], Tensor] | None,
) -> float:
    """Σ over chunks of (mean loss × rows) in eval mode, as ``Trainer.validation_loss`` (on ``device``)."""
    trainer.model_.eval()
    total = 0.0
    bs = max(trainer.config_.train.batch_size, 8192)
    for s in range(0, len(data), bs):
        idx = torch.arange(s, min(s + bs, len(data)))
        loss, _ = trainer.loss(_to(trainer._batch(data, idx), device), extra_losses, sample_weight_fn)
        total += float(loss) * len(idx)
    return total


def fit_data_parallel(
    trainer: Trainer,
    shards: Sequence[EncodedEvents],
    *,
    ctx: DistContext | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    max_steps: int | None = None,
    hooks_for: Hooks | None = None,
) -> dict[str, Any]:
    """Train ``trainer``'s model data-parallel; returns the fit report (also ``trainer.fit_report_``).

    Under torchrun (``ctx`` given) ``shards`` is this rank's one shard and the model runs wrapped in
    DDP. Without ``ctx``, one process trains on all ``shards`` with the same global batches (each step's
    gradient is the mean of the shards' batch losses' gradients): the single-process reference of a
    DDP run, and a way to train a sharded log in one process. ``checkpoint_dir``: rank 0 writes
    ``ddp_state.pt`` there after every epoch; ``resume=True`` continues from it. ``max_steps``: stop
    after this many optimiser steps (tests, benchmarks)."""
    if ctx is not None and len(shards) != 1:
        raise ConfigError(f"under torchrun each rank trains on one shard, got {len(shards)}")
    world = ctx.world if ctx is not None else len(shards)
    ranks = [ctx.rank] if ctx is not None else list(range(len(shards)))
    main = ctx is None or ctx.is_main
    device = ctx.device if ctx is not None else torch.device("cpu")
    comm = _Comm(ctx)
    cfg0 = trainer.config_
    if device.type == "cuda" and cfg0.train.sparse_embeddings:  # nccl: no sparse all-reduce
        trainer.config = cfg0.model_copy(
            update={"train": cfg0.train.model_copy(update={"sparse_embeddings": False})}
        )
    cfg = trainer.config_
    t = cfg.train
    state_file = _state_path(checkpoint_dir)
    state = None
    if resume:
        if state_file is None or not state_file.is_file():
            raise DataError(
                f"--resume: no {STATE_FILE} in {checkpoint_dir} (written by distributed training)"
            )
        state = torch.load(state_file, map_location="cpu", weights_only=False)
    split = [trainer.split(s) for s in shards]
    train = [tr for tr, _ in split]
    valid = [va for _, va in split]
    has_valid = comm.sum([float(sum(len(v) for v in valid if v is not None))])[0] > 0
    with torch_threads(trainer._threads()):
        fresh = not (trainer.warm_start and hasattr(trainer, "model_")) or state is not None
        with torch_seed(t.seed + (0 if fresh else len(trainer.history_))):
            if fresh:
                trainer._init_model()
            hooks = hooks_for(trainer.model_) if hooks_for is not None else {}
        if hooks.get("extra_modules"):
            raise ConfigError(
                "mitigation with extra trained modules (adversarial) is not supported under DDP"
            )
        extra_losses: list[ExtraLoss] = list(hooks.get("extra_losses", []))
        sample_weight_fn = hooks.get("sample_weight_fn")
        model = trainer.model_
        if state is not None:
            model.load_state_dict(state["model"])
            trainer.history_ = list(state["history"])
            trainer._heads_initialised = True
        if not trainer._heads_initialised:  # the dwell head's bias: the global mean over clicked rows
            s, n = 0.0, 0.0
            for tr in train:
                clicked = tr.labels["clicked"] > 0
                s += float(tr.labels["y_dwell"][clicked].double().sum())
                n += float(clicked.sum())
            s, n = comm.sum([s, n])
            if n > 0:
                with torch.no_grad():
                    model.towers.output_bias(RANKER_TASKS.index("dwell")).fill_(s / n)
            trainer._heads_initialised = True
        model.to(device)
        module: nn.Module = model
        if ctx is not None:
            from torch.nn.parallel import DistributedDataParallel

            module = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        opts = trainer._optimizers(())
        best, best_state, best_epoch, bad, start_epoch = math.inf, None, 0, 0, 0
        if state is not None:
            for o, st in zip(opts, state["optimizers"], strict=True):
                o.load_state_dict(st)
            best, best_epoch, bad, start_epoch = (
                state["best"],
                state["best_epoch"],
                state["bad"],
                state["epoch"],
            )
            best_state = state["best_state"]
        local_b = math.ceil(t.batch_size / world)
        n_max = comm.max(max(len(tr) for tr in train))
        steps = math.ceil(n_max / local_b)
        n_train = int(comm.sum([float(sum(len(tr) for tr in train))])[0])
        done_steps = start_epoch * steps
        start = time.perf_counter()
        timing = {"data_s": 0.0, "compute_s": 0.0}
        epoch = start_epoch
        for epoch in range(start_epoch + 1, t.epochs + 1):
            if max_steps is not None and done_steps >= max_steps:
                break
            module.train()
            perms = [
                torch.randperm(len(tr), generator=torch.Generator().manual_seed(_seed(t.seed, epoch, r)))
                for tr, r in zip(train, ranks, strict=True)
            ]
            run_loss = 0.0
            bar = tqdm(range(steps), desc=f"train epoch {epoch}/{t.epochs} ({world} ranks)",
                       disable=not (t.progress and main), leave=False)  # fmt: skip
            for s in bar:
                if max_steps is not None and done_steps >= max_steps:
                    break
                t0 = time.perf_counter()
                batches = []
                for tr, perm in zip(train, perms, strict=True):
                    idx = perm[(s * local_b + torch.arange(local_b)) % len(tr)]
                    batches.append(_to(trainer._batch(tr, idx), device))
                t1 = time.perf_counter()
                losses = [trainer.loss(b, extra_losses, sample_weight_fn, module=module)[0] for b in batches]
                total = losses[0] if len(losses) == 1 else torch.stack(losses).sum() / len(losses)
                for o in opts:
                    o.zero_grad(set_to_none=True)
                total.backward()  # under DDP: the ranks' gradients are averaged here
                for o in opts:
                    o.step()
                run_loss += float(sum(float(x.detach()) for x in losses))
                done_steps += 1
                timing["data_s"] += t1 - t0
                timing["compute_s"] += time.perf_counter() - t1
            rec = {"epoch": float(epoch), "train_loss": comm.sum([run_loss])[0] / world / max(steps, 1)}
            if has_valid:
                num = sum(_loss_sum(trainer, v, device, extra_losses, sample_weight_fn) for v in valid if v)
                cnt = sum(len(v) for v in valid if v)
                num, cnt = comm.sum([num, float(cnt)])
                rec["valid_loss"] = num / max(cnt, 1.0)
            trainer.history_.append(rec)
            monitor = rec.get("valid_loss", rec["train_loss"])
            if monitor < best - 1e-6:
                best, best_epoch, bad = monitor, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                bad += 1
            if main and state_file is not None:
                _save_state(state_file, {
                    "epoch": epoch, "model": model.state_dict(), "optimizers": [o.state_dict() for o in opts],
                    "history": trainer.history_, "best": best, "best_epoch": best_epoch, "bad": bad,
                    "best_state": best_state, "world": world, "steps_per_epoch": steps,
                })  # fmt: skip
            if has_valid and bad > t.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.to("cpu").eval()
        result: dict[str, Any] = {
            "epochs": epoch,
            "best_epoch": best_epoch,
            "train_seconds": round(time.perf_counter() - start, 2),
            "n_train": n_train,
            "n_valid": int(comm.sum([float(sum(len(v) for v in valid if v))])[0]),
            "steps": done_steps,
            "world": world,
            "backend": ctx.backend if ctx is not None else "none (one process, shards as ranks)",
            "local_batch": local_b,
            "time_split_s": {k: round(v, 3) for k, v in timing.items()},
        }
        gathered = comm.gather([v for v in valid if v is not None])
        if main and gathered is not None and has_valid:
            parts = [p for g in gathered for p in g if len(p)]
            result["valid"] = trainer.evaluate(concat_events(parts))
        trainer.fit_report_ = result
    return result


def train_distributed(
    trainer: Trainer,
    source: EventSource,
    out: str | Path,
    *,
    ctx: DistContext | None,
    world: int = 1,
    resume: bool = False,
    max_steps: int | None = None,
    hooks_for: Hooks | None = None,
) -> dict[str, Any]:
    """Read this rank's share of ``source``, train data-parallel, and (rank 0) save the model to ``out``.

    Without ``ctx``: one process reads the ``world`` shards and trains on them as ranks (the reference)."""
    ranks = [ctx.rank] if ctx is not None else list(range(world))
    n_world = ctx.world if ctx is not None else world
    t0 = time.perf_counter()
    shards = load_shards(trainer, source, ranks, n_world)
    load_s = time.perf_counter() - t0
    result = fit_data_parallel(
        trainer, shards, ctx=ctx, checkpoint_dir=out, resume=resume, max_steps=max_steps, hooks_for=hooks_for
    )
    result["time_split_s"]["load_s"] = round(load_s, 3)  # this rank's read + encode of its shard(s)
    if ctx is None or ctx.is_main:
        trainer.save(out, result)
    return result


def torchrun_command(nproc: int, args: Sequence[str]) -> list[str]:
    """The command that runs ``intentrank <args>`` in ``nproc`` processes on this machine (torchrun)."""
    import sys

    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "intentrank.cli.main", *args]  # fmt: skip
