"""Parquet files of the event store: the one layout, atomic writing, and reading with the run filter.

Layout (both forms are read by :func:`read_parquet_events` and by ``intentrank train --events``):

* a directory ``D/`` holding ``impressions.parquet`` and ``items.parquet`` (what
  ``EventStore.export_parquet`` writes);
* a file ``X.parquet`` with ``X.items.parquet`` beside it (what ``intentrank simulate --out X.parquet``
  writes); a file named ``impressions.parquet`` pairs with ``items.parquet`` beside it.

The runs travel inside the impressions file, as JSON under the Parquet key-value metadata key
``intentrank.runs`` (the runs table rows), so a file and its runs cannot be separated. A file without
that key or without a ``run_id`` column (written by an older version) is read as one complete run 0.

Writers write ``.NAME.tmp-PID`` in the target's directory and rename it over the target only when the
file is complete, so a kill mid-write leaves the previous file intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from intentrank.errors import DataError
from intentrank.store.schema import IMPRESSION_COLUMNS, LEGACY_IMPRESSION_COLUMNS, RUN_COLUMNS

RUNS_METADATA_KEY = "intentrank.runs"

RunSelection = str | list[int] | tuple[int, ...]


class IncompleteRunsWarning(UserWarning):
    """A reader skipped events of runs that are not complete (killed or failed)."""


@dataclass
class Skipped:
    """What a read left out: the incomplete runs in the window and their event count."""

    runs: list[int] = field(default_factory=list)
    events: int = 0


def warn_skipped(what: str, skipped: Skipped) -> None:
    """One warning line on stderr saying which incomplete runs a default read left out."""
    if skipped.events:
        warnings.warn(
            f"{what}: skipped {skipped.events} event(s) of {len(skipped.runs)} incomplete run(s) "
            f"{skipped.runs} (killed or failed); read them with runs='all'",
            IncompleteRunsWarning,
            stacklevel=3,
        )


def temp_path(path: Path) -> Path:
    """The temporary name a file is written under before it is renamed to ``path``."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


class AtomicParquetWriter:
    """A Parquet writer that produces ``path`` only on :meth:`commit` (temp file + rename)."""

    def __init__(self, path: str | Path, schema: pa.Schema) -> None:
        self.path = Path(path)
        self.tmp = temp_path(self.path)
        if self.path.is_dir():
            raise DataError(f"cannot write {self.path}: it is a directory")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, schema)
        except OSError as err:
            raise DataError(f"cannot write {self.path}: {err}") from None

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        """Append rows (a table or a record batch) to the temporary file."""
        try:
            if isinstance(table, pa.RecordBatch):
                self._writer.write_batch(table)
            else:
                self._writer.write_table(table)
        except OSError as err:
            self.abort()
            raise DataError(f"cannot write {self.path}: {err}") from None

    def commit(self, metadata: dict[str, str] | None = None) -> Path:
        """Finish the file (footer with ``metadata``), flush it to disk and rename it over the target."""
        try:
            if metadata:
                self._writer.add_key_value_metadata(metadata)
            self._writer.close()
            with open(self.tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self.tmp, self.path)
        except OSError as err:
            self.abort()
            raise DataError(f"cannot write {self.path}: {err}") from None
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; the target is untouched (idempotent)."""
        with contextlib.suppress(Exception):
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


def write_parquet_atomic(table: pa.Table, path: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write one table to ``path`` through a temporary file and a rename."""
    writer = AtomicParquetWriter(path, table.schema)
    try:
        writer.write(table)
    except BaseException:
        writer.abort()
        raise
    return writer.commit(metadata)


def runs_metadata(runs: list[dict[str, Any]]) -> dict[str, str]:
    """The key-value metadata that carries ``runs`` (rows of the runs table) in an impressions file."""
    rows = [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in runs]
    return {RUNS_METADATA_KEY: json.dumps(rows)}


def legacy_run(events: int, policy: str | None = None) -> dict[str, Any]:
    """The run that stands for rows written before runs existed: id 0, complete, zero offsets."""
    run: dict[str, Any] = {c: None for c in RUN_COLUMNS}
    run.update(
        run_id=0,
        status="complete",
        config_hash="legacy",
        policy=policy,
        command="legacy",
        note=f"{events} event(s) written before runs existed",
        user_offset=0,
        session_offset=0,
        slate_offset=0,
    )
    return run


def parquet_paths(source: str | Path) -> tuple[Path, Path]:
    """(impressions file, items file) of a Parquet event source in the single-file layout."""
    p = Path(source)
    if p.is_dir():
        return p / "impressions.parquet", p / "items.parquet"
    if p.name == "impressions.parquet":
        return p, p.with_name("items.parquet")
    return p, p.with_name(p.stem + ".items.parquet")


def _read_schema(path: Path) -> pa.Schema:
    try:
        return pq.read_schema(path)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None


def parquet_runs(path: Path) -> list[dict[str, Any]]:
    """The runs recorded in an impressions file (one legacy run for files from older versions)."""
    schema = _read_schema(path)
    meta = pq.ParquetFile(path).metadata
    raw = (meta.metadata or {}).get(RUNS_METADATA_KEY.encode())
    if raw is None or "run_id" not in schema.names:
        return [legacy_run(meta.num_rows)]
    try:
        runs = json.loads(raw)
        assert isinstance(runs, list) and all(isinstance(r, dict) and "run_id" in r for r in runs)
    except (ValueError, AssertionError):
        raise DataError(f"{path}: the '{RUNS_METADATA_KEY}' metadata is not a list of runs") from None
    return runs


def select_run_ids(runs: list[dict[str, Any]], selection: RunSelection, what: str) -> list[int] | None:
    """Run ids a read keeps: ``None`` for all, the complete ones, or the given ids (each must exist)."""
    if selection == "all":
        return None
    if selection == "complete":
        return [int(r["run_id"]) for r in runs if r["status"] == "complete"]
    if isinstance(selection, str):
        raise DataError(f"runs must be 'complete', 'all' or a list of run ids, got {selection!r}")
    known = {int(r["run_id"]) for r in runs}
    wanted = [int(i) for i in selection]
    unknown = sorted(set(wanted) - known)
    if unknown:
        raise DataError(f"{what}: no run(s) {unknown} (runs: {sorted(known)})")
    return wanted


def read_parquet_events(
    source: str | Path,
    since_event_id: int | None = None,
    until_event_id: int | None = None,
    runs: RunSelection = "complete",
    days: list[int] | None = None,
    shard: Shard | None = None,
) -> tuple[pa.Table, pa.Table | None, Skipped]:
    """Impressions (window, run, day and user-shard filters applied, in event order), items (or None) and
    what was skipped. A directory in the partitioned layout is read lazily
    (:func:`read_partitioned_events`)."""
    shard = check_shard(shard)
    if partitioned_dir(source) is not None:
        return read_partitioned_events(source, since_event_id, until_event_id, runs, days, shard)
    imp_file, items_file = parquet_paths(source)
    if not imp_file.is_file():
        where = "in this directory" if Path(source).is_dir() else "file"
        raise DataError(f"{source}: no impressions Parquet {where} ({imp_file.name})")
    schema = _read_schema(imp_file)
    legacy = "run_id" not in schema.names
    expected = list(LEGACY_IMPRESSION_COLUMNS if legacy else IMPRESSION_COLUMNS)
    if schema.names != expected:
        raise DataError(f"{imp_file}: columns {schema.names}, expected {list(IMPRESSION_COLUMNS)}")
    all_runs = parquet_runs(imp_file)
    keep = select_run_ids(all_runs, runs, str(imp_file))
    if not legacy and all_runs[0]["config_hash"] == "legacy" and runs == "complete":
        keep = None  # a run_id column without runs metadata (not written by us): every row counts
    filters: list[tuple[str, str, Any]] = []
    if since_event_id is not None:
        filters.append(("event_id", ">", int(since_event_id)))
    if until_event_id is not None:
        filters.append(("event_id", "<=", int(until_event_id)))
    try:
        table = pq.read_table(imp_file, filters=filters or None)
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise DataError(f"{imp_file}: not a readable Parquet file ({err})") from None
    if legacy:
        table = table.add_column(1, "run_id", pa.array([0] * len(table), pa.int64()))
    skipped = Skipped()
    if keep is not None:
        ids = table.column("run_id").to_numpy()
        mask = np.isin(ids, np.asarray(keep, dtype=np.int64))
        if runs == "complete" and not mask.all():
            skipped = Skipped(runs=sorted({int(i) for i in np.unique(ids[~mask])}), events=int((~mask).sum()))
        table = table.filter(pa.array(mask))
    table = shard_mask(table, days, shard).sort_by("event_id")
    items = None
    if items_file.is_file() and items_file != imp_file:
        try:
            items = pq.read_table(items_file)
        except Exception as err:  # pyarrow raises several types for a damaged file
            raise DataError(f"{items_file}: not a readable Parquet file ({err})") from None
    return table, items, skipped


# -- partitioned Parquet (hive-style directories, read lazily) ----------------------------------------
#: Partition names users give (``--partition day,run``) → the impressions column of the directory level.
PARTITION_KEYS: dict[str, str] = {"day": "day", "run": "run_id", "run_id": "run_id"}
_PARTITION_TYPES = {"day": "INTEGER", "run_id": "BIGINT"}
#: The sub-directory of an export directory that holds the partitioned impressions.
PARTITIONED_DIR = "impressions"

Shard = tuple[int, int]


def partition_columns(partition: str | list[str] | tuple[str, ...]) -> list[str]:
    """Columns of a partition spec (``"day,run"`` or ``["day", "run"]``), in directory order."""
    names = [p.strip() for p in partition.split(",")] if isinstance(partition, str) else list(partition)
    names = [n for n in names if n]
    bad = [n for n in names if n not in PARTITION_KEYS]
    if bad or not names:
        raise DataError(f"partition: unknown key(s) {bad or names}; use day and/or run (e.g. 'day,run')")
    cols = [PARTITION_KEYS[n] for n in names]
    if len(set(cols)) != len(cols):
        raise DataError(f"partition: {names} names a key twice")
    return cols


def window_conditions(
    since_event_id: int | None,
    until_event_id: int | None,
    days: list[int] | None = None,
    shard: Shard | None = None,
) -> list[str]:
    """SQL conditions selecting an event-id window ``(since, until]``, the given days and a user shard
    (``user_id % world == rank``): the one place both the store and the partitioned reader build them."""
    where = []
    if since_event_id is not None:
        where.append(f"event_id > {int(since_event_id)}")
    if until_event_id is not None:
        where.append(f"event_id <= {int(until_event_id)}")
    if days is not None:
        where.append(f"day IN ({', '.join(str(int(d)) for d in days) or 'NULL'})")
    shard = check_shard(shard)
    if shard is not None:
        where.append(f"user_id % {int(shard[1])} = {int(shard[0])}")
    return where


def check_shard(shard: Shard | None) -> Shard | None:
    """``(rank, world)`` with 0 ≤ rank < world, or DataError."""
    if shard is None:
        return None
    rank, world = (int(x) for x in shard)
    if world < 1 or not 0 <= rank < world:
        raise DataError(f"shard: rank {rank} of world {world} is not in 0..world-1")
    return rank, world


def partitioned_dir(source: str | Path) -> Path | None:
    """``D/impressions/`` if ``source`` is an export directory in the partitioned layout, else None."""
    p = Path(source)
    sub = p / PARTITIONED_DIR
    if not (p.is_dir() and sub.is_dir()):
        return None
    if (p / "impressions.parquet").exists():
        raise DataError(f"{p}: holds both impressions.parquet and a partitioned impressions/ directory")
    return sub


def partition_files(
    imp_dir: Path, days: list[int] | None = None, run_ids: list[int] | None = None
) -> tuple[list[Path], list[str], int]:
    """(files to read, partition columns, files in all) of a partitioned impressions directory.

    Files whose ``day=`` / ``run_id=`` directories fall outside ``days`` / ``run_ids`` are pruned here,
    before anything is opened: a read of two days opens only those days' files."""
    files = sorted(f for f in imp_dir.rglob("*.parquet") if not f.name.startswith("."))
    if not files:
        raise DataError(f"{imp_dir}: no Parquet files in the partitioned impressions directory")
    keys: list[str] | None = None
    keep = []
    for f in files:
        values: dict[str, int] = {}
        for part in f.relative_to(imp_dir).parts[:-1]:
            key, sep, value = part.partition("=")
            if not sep or key not in _PARTITION_TYPES or not value.lstrip("-").isdigit():
                raise DataError(f"{f}: directory {part!r} is not a partition (expected day=N or run_id=N)")
            values[key] = int(value)
        if keys is None:
            keys = list(values)
        elif list(values) != keys:
            raise DataError(f"{f}: partitioned by {list(values)}, other files by {keys}")
        if days is not None and "day" in values and values["day"] not in days:
            continue
        if run_ids is not None and "run_id" in values and values["run_id"] not in run_ids:
            continue
        keep.append(f)
    return keep, keys or [], len(files)


def partitioned_runs(imp_dir: Path) -> list[dict[str, Any]]:
    """The runs recorded in a partitioned export (every part file carries the same runs metadata)."""
    first = min((f for f in imp_dir.rglob("*.parquet") if not f.name.startswith(".")), default=None)
    if first is None:
        raise DataError(f"{imp_dir}: no Parquet files in the partitioned impressions directory")
    try:
        meta = pq.ParquetFile(first).metadata
    except Exception as err:  # pyarrow raises several types for a damaged file
        raise DataError(f"{first}: not a readable Parquet file ({err})") from None
    raw = (meta.metadata or {}).get(RUNS_METADATA_KEY.encode())
    if raw is None:
        raise DataError(
            f"{first}: no '{RUNS_METADATA_KEY}' metadata (not written by `intentrank store export`)"
        )
    try:
        runs = json.loads(raw)
        assert isinstance(runs, list) and all(isinstance(r, dict) and "run_id" in r for r in runs)
    except (ValueError, AssertionError):
        raise DataError(f"{first}: the '{RUNS_METADATA_KEY}' metadata is not a list of runs") from None
    return runs


def read_partitioned_events(
    source: str | Path,
    since_event_id: int | None = None,
    until_event_id: int | None = None,
    runs: RunSelection = "complete",
    days: list[int] | None = None,
    shard: Shard | None = None,
) -> tuple[pa.Table, pa.Table | None, Skipped]:
    """As :func:`read_parquet_events` for the partitioned layout, read lazily with DuckDB.

    Partition pruning happens on the directory names (only the files of the selected days and runs are
    opened); the event window and the user shard are pushed down into DuckDB's Parquet scan."""
    import duckdb  # the store's engine; imported here so that files.py stays light for writers

    root = Path(source)
    imp_dir = partitioned_dir(root)
    assert imp_dir is not None
    all_runs = partitioned_runs(imp_dir)
    keep = select_run_ids(all_runs, runs, str(imp_dir))
    files, keys, _ = partition_files(imp_dir, days, keep)
    where = window_conditions(since_event_id, until_event_id, days, shard)
    skip_where = None
    if keep is not None:
        ids = ", ".join(str(i) for i in keep) or "NULL"
        skip_where = [*where, f"run_id NOT IN ({ids})"]
        where.append(f"run_id IN ({ids})")
    cols = ", ".join(f'"{c}"' for c in IMPRESSION_COLUMNS)
    con = duckdb.connect()
    try:
        table = None
        if files:
            hive = ", ".join(f"'{k}': {_PARTITION_TYPES[k]}" for k in keys)
            scan = f"read_parquet({[str(f) for f in files]!r}, hive_partitioning = true" + (
                f", hive_types = {{{hive}}})" if keys else ")"
            )
            clause = f" WHERE {' AND '.join(where)}" if where else ""
            table = con.sql(f"SELECT {cols} FROM {scan}{clause} ORDER BY event_id").to_arrow_table()
        skipped = Skipped()
        if skip_where is not None and runs == "complete":
            other, _, _ = partition_files(imp_dir, days, None)
            other = [f for f in other if f not in set(files)]
            if other:
                hive = ", ".join(f"'{k}': {_PARTITION_TYPES[k]}" for k in keys)
                scan = f"read_parquet({[str(f) for f in other]!r}, hive_partitioning = true" + (
                    f", hive_types = {{{hive}}})" if keys else ")"
                )
                rows = con.sql(
                    f"SELECT run_id, COUNT(*) FROM {scan} WHERE {' AND '.join(skip_where)} "
                    "GROUP BY run_id ORDER BY run_id"
                ).fetchall()
                skipped = Skipped(runs=[int(r) for r, _ in rows], events=int(sum(n for _, n in rows)))
    except duckdb.Error as err:
        raise DataError(f"{imp_dir}: cannot read the partitioned events ({err})") from None
    finally:
        con.close()
    schema = pa.schema([pa.field(f.name, f.type) for f in _impressions_schema()])
    table = schema.empty_table() if table is None else table.cast(schema)
    items_file = root / "items.parquet"
    items = None
    if items_file.is_file():
        try:
            items = pq.read_table(items_file)
        except Exception as err:  # pyarrow raises several types for a damaged file
            raise DataError(f"{items_file}: not a readable Parquet file ({err})") from None
    return table, items, skipped


def _impressions_schema() -> pa.Schema:
    from intentrank.store.event_store import IMPRESSIONS_ARROW_SCHEMA  # one schema, defined there

    return IMPRESSIONS_ARROW_SCHEMA


def shard_mask(table: pa.Table, days: list[int] | None, shard: Shard | None) -> pa.Table:
    """Rows of ``table`` on ``days`` and in the user shard ``(rank, world)`` (user_id % world == rank)."""
    if days is None and shard is None:
        return table
    mask = np.ones(len(table), dtype=bool)
    if days is not None:
        mask &= np.isin(table.column("day").to_numpy(), np.asarray(days, dtype=np.int64))
    if shard is not None:
        mask &= table.column("user_id").to_numpy() % shard[1] == shard[0]
    return table.filter(pa.array(mask))
