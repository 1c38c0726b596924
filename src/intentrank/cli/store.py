"""``intentrank store export`` / ``intentrank store import``: the event store as (partitioned) Parquet.

``intentrank store export --events events.duckdb --out DIR --partition day,run`` writes hive-style
partitions ``DIR/impressions/day=D/run_id=R/*.parquet`` (+ ``DIR/items.parquet``) that ``intentrank
train --events DIR`` and :func:`intentrank.store.read_events` read lazily (only the asked days' files
are opened); without ``--partition`` it writes the one-file layout. ``intentrank store import --source
DIR --out copy.duckdb`` rebuilds a store (same event ids and runs) from either layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from intentrank.cli.common import user_errors

store_app = typer.Typer(help="Export and import the event store as (partitioned) Parquet.")


@store_app.command("export")
@user_errors
def export(
    out: Annotated[Path, typer.Option(help="Directory to write (items.parquet + impressions).")],
    events: Annotated[
        Path | None, typer.Option(help="DuckDB event store to export. Default: the config's store.path.")
    ] = None,
    partition: Annotated[
        str, typer.Option(help="Partition keys, e.g. 'day,run' (hive-style dirs); '' = one file.")
    ] = "day,run",
    config: Annotated[Path | None, typer.Option(help="intentrank config file (YAML/JSON).")] = None,
) -> None:
    """Export every run of the store (statuses kept) to OUT; prints what was written as JSON."""
    from intentrank.config import load_config
    from intentrank.store import EventStore

    source = events if events is not None else Path(load_config(config).store.path)
    with EventStore(source, read_only=True) as store:
        store.export_parquet(out, partition=partition)
        runs, n = len(store.runs()), store.count("all")
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet") if not p.name.startswith("."))
    typer.echo(json.dumps({"out": str(out), "events": n, "runs": runs, "files": len(files)}))


@store_app.command("import")
@user_errors
def import_(
    source: Annotated[Path, typer.Option(help="Export directory (partitioned or not) or Parquet file.")],
    out: Annotated[Path, typer.Option(help="New DuckDB event store to create (must hold no events).")],
) -> None:
    """Import Parquet events (event ids, runs and statuses kept) into a new store at OUT."""
    from intentrank.errors import DataError
    from intentrank.store import EventStore

    if not source.exists():
        raise DataError(f"--source {source}: not found")
    with EventStore.import_parquet(source, out) as store:
        typer.echo(json.dumps({"out": str(out), "events": store.count("all"), "runs": len(store.runs())}))
