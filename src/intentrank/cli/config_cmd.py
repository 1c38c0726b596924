"""``intentrank config``: print the defaults or validate a config file.

``config check`` runs the same checks as ``intentrank run`` before it does any work
(:func:`check_run_config`): field values, the names, paths and columns the config refers to, and
the up-front resource estimates; plus the resource check of ``intentrank simulate`` on the
``simulator`` section. So a config that passes ``check`` is not refused by ``run``.
"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from intentrank.cli.common import user_errors
from intentrank.config import IntentRankConfig, load_config, validate_references
from intentrank.errors import ConfigError

config_app = typer.Typer(
    help="Show the default configuration or validate a config file.", no_args_is_help=True
)


def event_columns() -> dict[str, str]:
    """Every column an event frame can offer a feature: impressions, items, derived, user history
    (name → type)."""
    from intentrank.ranking.config import DERIVED_COLUMNS, HISTORY_COLUMNS
    from intentrank.store.schema import IMPRESSION_COLUMNS, ITEM_COLUMNS

    tables = (IMPRESSION_COLUMNS, ITEM_COLUMNS, DERIVED_COLUMNS, HISTORY_COLUMNS)
    return {name: duckdb_type for cols in tables for name, (duckdb_type, _) in cols.items()}


def check_references(cfg: IntentRankConfig) -> None:
    """Raise :class:`ConfigError` (one line per problem) if ``cfg`` names an unknown policy, a missing
    model, or a feature column no event frame has."""
    from intentrank.simulator.registry import default_registry

    # the logging policy is built by name alone ("ranker" needs a model directory)
    policies = set(default_registry().buildable_by_name())
    problems = validate_references(cfg, policies=policies, columns=event_columns())
    if problems:
        raise ConfigError("\n".join(problems))


def check_run_config(cfg: IntentRankConfig) -> None:
    """Everything ``intentrank run`` checks before work: references, then memory and days of both phases."""
    from intentrank.simulator.resources import check_main_job

    check_references(cfg)
    check_main_job(cfg)


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
    """Validate a config file as ``run`` and ``simulate`` would; exits 2 with one line per problem."""
    from intentrank.simulator.resources import check_simulation

    cfg = load_config(path)
    check_run_config(cfg)
    check_simulation(cfg)
    typer.echo(f"{path}: ok")
