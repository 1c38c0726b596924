"""`intentrank tune`: sweep a mitigation method's knobs, print the Pareto frontier, pick and confirm.

``intentrank tune --method heuristic --trials 24 --constraint "heavy_cb<=-50%,clicks>=-2%" --out DIR``
writes ``DIR/pareto.json`` (baseline, every trial, the frontier, the pick and its confirmation A/B) and
``DIR/pareto.svg``; the frontier table goes to stderr, the pick and confirmation as JSON to stdout.
The pick must meet the constraint at a one-sided confidence bound on the tuning cohort and again on a
holdout cohort (``--pick-by point --holdout-users 0``: the plain point-estimate rule); the confirmation
A/B's verdict is ``confirmed`` (point estimates and the CI within ``tuner.confirm_margin``).
The optuna study is kept in ``DIR/study.db``: the same command again resumes it up to ``--trials`` and
picks anew under the (possibly changed) ``--constraint``, without re-running stored trials.
Settings not on the command line come from the ``tuner`` section of ``--config``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from intentrank.cli.common import user_errors

_CONSTRAINT_HELP = 'Override tuner.constraint, e.g. "heavy_cb<=-50%,clicks>=-2%".'


@user_errors
def tune(
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file (YAML/JSON)."),
    out: Path = typer.Option(Path("runs/tune"), "--out", help="Output folder (pareto.json, pareto.svg)."),
    method: str | None = typer.Option(None, "--method", help="Override tuner.method."),
    trials: int | None = typer.Option(None, "--trials", min=2, help="Override tuner.trials."),
    constraint: str | None = typer.Option(None, "--constraint", help=_CONSTRAINT_HELP),
    users: int | None = typer.Option(None, "--users", min=10, help="Override tuner.users (tuning cohort)."),
    confirm_users: int | None = typer.Option(
        None, "--confirm-users", min=40, help="Override tuner.confirm_users."
    ),
    holdout_users: int | None = typer.Option(
        None, "--holdout-users", min=0, help="Override tuner.holdout_users (0: no holdout stage)."
    ),
    pick_by: str | None = typer.Option(None, "--pick-by", help="Override tuner.pick_by: ci or point."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Override the master seed."),
) -> None:
    """Tune a mitigation method's knobs: Pareto frontier, constrained pick, confirmation A/B."""
    from intentrank.config import load_config
    from intentrank.experiments.tuner import format_result, write_result
    from intentrank.experiments.tuner import tune as run_tuner
    from intentrank.runtime import torch_threads

    cfg = load_config(config, [
        ("tuner.method", method, "--method"), ("tuner.trials", trials, "--trials"),
        ("tuner.constraint", constraint, "--constraint"), ("tuner.users", users, "--users"),
        ("tuner.confirm_users", confirm_users, "--confirm-users"), ("seed", seed, "--seed"),
        ("tuner.holdout_users", holdout_users, "--holdout-users"), ("tuner.pick_by", pick_by, "--pick-by"),
    ])  # fmt: skip
    with torch_threads(cfg.ranker.train.threads):
        out.mkdir(parents=True, exist_ok=True)
        result = run_tuner(cfg, storage=out / "study.db")
    path = write_result(result, out)
    print(format_result(result), file=sys.stderr)
    print(f"\nwrote {path} and {path.with_suffix('.svg')}", file=sys.stderr)
    typer.echo(json.dumps({"pick": result.as_dict()["pick"], "confirm": result.confirm}, indent=2))
