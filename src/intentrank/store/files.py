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
    """(impressions file, items file) of a Parquet event source in the documented layout."""
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
) -> tuple[pa.Table, pa.Table | None, Skipped]:
    """Impressions (window and run filter applied, in event order), items (or None) and what was skipped."""
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
    table = table.sort_by("event_id")
    items = None
    if items_file.is_file() and items_file != imp_file:
        try:
            items = pq.read_table(items_file)
        except Exception as err:  # pyarrow raises several types for a damaged file
            raise DataError(f"{items_file}: not a readable Parquet file ({err})") from None
    return table, items, skipped
