"""``intentrank config``: print the defaults or validate a config file."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from intentrank.cli.common import user_errors
from intentrank.config import IntentRankConfig, load_config

config_app = typer.Typer(
    help="Show the default configuration or validate a config file.", no_args_is_help=True
)


@config_app.command("show")
@user_errors
def show(
    path: Path | None = typer.Argument(None, help="Config file (YAML/JSON); omitted: the defaults."),
) -> None:
    """Print the full configuration (defaults merged with PATH) as YAML."""
    cfg = load_config(path) if path is not None else IntentRankConfig()
    typer.echo(yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False), nl=False)


@config_app.command("check")
@user_errors
def check(path: Path = typer.Argument(..., help="Config file (YAML/JSON) to validate.")) -> None:
    """Validate a config file; exits 2 with one line per invalid field."""
    load_config(path)
    typer.echo(f"{path}: ok")
