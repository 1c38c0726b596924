"""`intentrank run`: the main job on the embedded defaults (or a config file).

Logs simulated traffic into the event store, trains the multi-task ranker on it, and A/B-tests
click-optimised vs intent-optimised vs mitigated ranking on fresh simulated users (with an A/A arm).
Progress and the KPI tables go to stderr; the JSON summary goes to stdout.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from intentrank.cli.common import user_errors


@user_errors
def run(
    config: Path | None = typer.Option(None, "--config", "-c", help="Config file (YAML/JSON)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: experiment.out_dir)."),
    users: int | None = typer.Option(None, "--users", min=40, help="Override experiment.ab_users."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Override the master seed."),
) -> None:
    """Run the end-to-end experiment and print its JSON summary."""
    from intentrank.cli.config_cmd import check_run_config
    from intentrank.config import load_config
    from intentrank.experiments.main_job import run_main_job

    cfg = load_config(config, [("experiment.ab_users", users, "--users"), ("seed", seed, "--seed")])
    check_run_config(cfg)  # the same checks as `config check`, before anything is written
    result = run_main_job(cfg, out)
    typer.echo(json.dumps(result.summary(), indent=2))
