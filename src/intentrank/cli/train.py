"""``intentrank train`` and ``intentrank evaluate``: fit the multi-task ranker on logged events, score it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from intentrank.cli.common import user_errors

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
) -> None:
    """Train the ranker on EVENTS and save it to OUT; prints the validation metrics as JSON.

    The config's ``mitigation`` methods that act on training (shallow tower, plain feature, adversarial,
    aux loss, down-weighting, RL alignment) are applied; the serving-only ``heuristic`` is not part of a
    model and is applied where the model serves (``simulate --policy heuristic --base ranker``).
    """
    from intentrank.cli.common import check_output_dir
    from intentrank.config import load_config
    from intentrank.mitigation.pipeline import MitigationPlan
    from intentrank.ranking.checkpoint import check_resume_compatible
    from intentrank.ranking.trainer import Trainer

    flags = [("ranker.train.epochs", epochs, "--epochs"), ("ranker.train.threads", threads, "--threads")]
    full = load_config(config, flags)
    plan = MitigationPlan(full.mitigation)
    cfg = plan.ranker_config(full.ranker)
    check_output_dir(out, "--out")  # before any work: a file or an unwritable place is refused now
    if resume and config is not None:  # a config's architecture must be the checkpoint's
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
    result = plan.fit(trainer, events if events is not None else Path(full.store.path))
    trainer.save(out, result)
    _print(result | {"model_dir": str(out), "mitigation": plan.names})


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
