"""``intentrank train`` and ``intentrank evaluate``: fit the multi-task ranker on logged events, score it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from intentrank.cli.common import user_errors
from intentrank.errors import ConfigError, IntentRankError

_EVENTS_HELP = (
    "DuckDB event store, Parquet file (X.parquet + X.items.parquet) or export directory; complete runs "
    "only. Default: the config's store.path."
)


def _print(obj: object) -> None:
    typer.echo(json.dumps(obj, indent=2, default=float))


@user_errors
def train(
    out: Annotated[Path, typer.Option(help="Model directory to write (weights, config, feature spec).")],
    events: Annotated[Path | None, typer.Option(help=_EVENTS_HELP)] = None,
    config: Annotated[Path | None, typer.Option(help="intentrank config file (YAML/JSON).")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override ranker.train.epochs.")] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the model already in --out.")] = False,
    threads: Annotated[
        int | None, typer.Option(min=1, help="Override ranker.train.threads (torch threads).")
    ] = None,
    nproc: Annotated[
        int, typer.Option(min=1, help="Data-parallel processes on this machine (launches torchrun; DDP).")
    ] = 1,
    max_steps: Annotated[
        int | None, typer.Option(min=1, help="Multi-process mode: stop after this many optimiser steps.")
    ] = None,
) -> None:
    """Train the ranker on EVENTS and save it to OUT; prints the validation metrics as JSON.

    Multi-process (PyTorch DDP, docs/scale.md): ``--nproc N`` runs N ranks on this machine via torchrun,
    or run ``torchrun ... -m intentrank.cli.main train ...`` yourself (any node count); each rank reads
    its users' share of the events, rank 0 logs and writes OUT (and OUT/ddp_state.pt after every epoch,
    which ``--resume`` continues from).

    The config's ``mitigation`` methods that act on training (shallow tower, plain feature, adversarial,
    aux loss, down-weighting, RL alignment) are applied; the serving-only ``heuristic`` is not part of a
    model and is applied where the model serves (``simulate --policy heuristic --base ranker``).
    """
    from intentrank.cli.common import check_output_dir
    from intentrank.config import load_config
    from intentrank.mitigation.pipeline import MitigationPlan
    from intentrank.ranking import distributed as D
    from intentrank.ranking.checkpoint import check_resume_compatible
    from intentrank.ranking.trainer import Trainer

    flags = [("ranker.train.epochs", epochs, "--epochs"), ("ranker.train.threads", threads, "--threads")]
    full = load_config(config, flags)
    plan = MitigationPlan(full.mitigation)
    cfg = plan.ranker_config(full.ranker)
    check_output_dir(out, "--out")  # before any work: a file or an unwritable place is refused now
    source = events if events is not None else Path(full.store.path)
    ctx = D.context_from_env()
    if nproc > 1 and ctx is None:  # launch the ranks; each runs this command again under torchrun
        _launch(nproc, source, out, config, epochs, resume, threads, max_steps, plan.names)
        return
    exact_resume = ctx is not None and resume and (out / D.STATE_FILE).is_file()
    if exact_resume:  # an interrupted distributed run: weights and optimisers from OUT/ddp_state.pt
        trainer = plan.make_trainer(full.ranker)
    elif resume and config is not None:  # a config's architecture must be the checkpoint's
        check_resume_compatible(out, cfg)
        trainer = Trainer.load(out, cfg, warm_start=True)
        trainer.model_factory = plan.build_model
    elif resume:  # no config: continue with the checkpoint's own settings, the flags over them
        trainer = Trainer.load(out, warm_start=True)
        saved = trainer.config_
        train_over = {k: v for k, v in (("epochs", epochs), ("threads", threads)) if v is not None}
        trainer.config = saved.model_copy(update={"train": saved.train.model_copy(update=train_over)})
    else:
        trainer = plan.make_trainer(full.ranker)
    if ctx is not None:
        if "rl_alignment" in plan.names:
            raise ConfigError("mitigation rl_alignment is not supported under torchrun (train, then align)")
        with D.process_group(ctx):
            result = D.train_distributed(
                trainer, source, out, ctx=ctx, resume=exact_resume, max_steps=max_steps,
                hooks_for=lambda m: plan.trainer_hooks(m).as_kwargs(),
            )  # fmt: skip
        if ctx.is_main:
            _print(result | {"model_dir": str(out), "mitigation": plan.names})
        return
    result = plan.fit(trainer, source)
    trainer.save(out, result)
    _print(result | {"model_dir": str(out), "mitigation": plan.names})


def _launch(
    nproc: int,
    source: Path,
    out: Path,
    config: Path | None,
    epochs: int | None,
    resume: bool,
    threads: int | None,
    max_steps: int | None,
    mitigation: list[str],
) -> None:
    """Run ``intentrank train`` in ``nproc`` processes (torchrun --standalone) and wait for them."""
    import subprocess

    from intentrank.errors import DataError
    from intentrank.ranking.distributed import torchrun_command

    if "rl_alignment" in mitigation:
        raise ConfigError("mitigation rl_alignment is not supported with --nproc > 1 (train, then align)")
    if not source.exists():
        raise DataError(f"event source not found: {source}")
    args = ["train", "--out", str(out), "--events", str(source)]
    for flag, value in (("--config", config), ("--epochs", epochs), ("--threads", threads),
                        ("--max-steps", max_steps)):  # fmt: skip
        if value is not None:
            args += [flag, str(value)]
    if resume:
        args.append("--resume")
    rc = subprocess.call(torchrun_command(nproc, args))
    if rc != 0:
        raise IntentRankError(
            f"distributed training failed (torchrun exit status {rc}; see the ranks' output)"
        )


@user_errors
def evaluate(
    model: Annotated[Path, typer.Option(help="Model directory written by `intentrank train`.")],
    events: Annotated[Path, typer.Option(help="DuckDB event store, Parquet file or export directory.")],
    config: Annotated[
        Path | None, typer.Option(help="Config whose feature spec must match the model's.")
    ] = None,
) -> None:
    """Evaluate a saved ranker on EVENTS: per-task AUC / log-loss, dwell RMSE, NDCG@20 (JSON)."""
    from intentrank.config import load_config
    from intentrank.ranking.trainer import Trainer

    cfg = load_config(config).ranker if config is not None else None
    trainer = Trainer.load(model, cfg)
    _print(trainer.evaluate(events))
