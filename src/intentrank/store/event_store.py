"""The append-only event store: impressions, the runs that wrote them and the item catalogue, in DuckDB.

Runs: every impression belongs to a run (:meth:`EventStore.begin_run` → :class:`RunHandle`), marked
``complete`` only at its end; a killed run stays ``running``. Readers default to complete runs and warn
about (and record in :attr:`EventStore.skipped`) what they left out. A producer's user, session and
slate ids are run-local; the store adds the run's offsets so ids never collide across runs.
Durability: :meth:`EventStore.append_impressions` runs one transaction and returns only after
``COMMIT``; DuckDB writes the commit to its write-ahead log before returning, so an acknowledged
batch survives a crash of the process (it is replayed when the file is next opened).
Watermark: ``event_id`` is assigned here, strictly increasing in insertion order;
``read_impressions(since_event_id=w)`` returns exactly the (selected runs') events appended after ``w``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from intentrank.errors import DataError
from intentrank.store.files import (
    PARTITIONED_DIR,
    AtomicParquetWriter,
    RunSelection,
    Shard,
    Skipped,
    legacy_run,
    parquet_paths,
    parquet_runs,
    partition_columns,
    partitioned_dir,
    partitioned_runs,
    read_parquet_events,
    runs_metadata,
    select_run_ids,
    warn_skipped,
    window_conditions,
    write_parquet_atomic,
)
from intentrank.store.schema import (
    IMPRESSION_COLUMNS,
    ITEM_COLUMNS,
    LEGACY_IMPRESSION_COLUMNS,
    PRODUCER_COLUMNS,
    RUN_COLUMNS,
    RUN_NULLABLE,
    SLATE_COLUMNS,
    SLATE_PRODUCER_COLUMNS,
)

_ARROW_TYPES: dict[str, pa.DataType] = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "SMALLINT": pa.int16(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
    "BIGINT[]": pa.list_(pa.int64()),
    "DOUBLE[]": pa.list_(pa.float64()),
}

IMPRESSIONS_TABLE = "impressions"
ITEMS_TABLE = "items"
RUNS_TABLE = "runs"
SLATES_TABLE = "slates"
OUR_TABLES = (IMPRESSIONS_TABLE, ITEMS_TABLE, RUNS_TABLE, SLATES_TABLE)

OnExisting = Literal["refuse", "append", "replace"]


def arrow_schema(columns: dict[str, tuple[str, str]]) -> pa.Schema:
    """Arrow schema of a table of the event schema (for Parquet writers and readers)."""
    return pa.schema([pa.field(name, _ARROW_TYPES[t], nullable=False) for name, (t, _) in columns.items()])


IMPRESSIONS_ARROW_SCHEMA = arrow_schema(IMPRESSION_COLUMNS)
ITEMS_ARROW_SCHEMA = arrow_schema(ITEM_COLUMNS)


def _ddl(table: str, columns: dict[str, tuple[str, str]], nullable: frozenset[str] = frozenset()) -> str:
    cols = ", ".join(f'"{n}" {t}{"" if n in nullable else " NOT NULL"}' for n, (t, _) in columns.items())
    return f"CREATE TABLE {table} ({cols})"


def config_hash(settings: Any) -> str:
    """A short stable hash of JSON-able settings: with the seed, what identifies a re-run of a command."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _cols(columns: Any) -> str:
    return ", ".join(f'"{c}"' for c in columns)


def _to_arrow(data: Any, what: str) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, dict):
        return pa.table(data)
    raise DataError(f"{what}: expected a pandas DataFrame or Arrow table, got {type(data).__name__}")


def conform(
    table: pa.Table, columns: dict[str, tuple[str, str]], required: tuple[str, ...], what: str
) -> pa.Table:
    """Check ``table`` has exactly the ``required`` columns without nulls/NaN and cast them to the schema.

    Raises DataError naming the missing/unknown column, the bad value or the failed cast.
    """
    names = set(table.column_names)
    missing = [c for c in required if c not in names]
    if missing:
        raise DataError(f"{what}: missing column(s) {', '.join(missing)}")
    extra = [c for c in table.column_names if c not in required]
    if extra:
        raise DataError(f"{what}: unknown column(s) {', '.join(extra)} (schema: {', '.join(required)})")
    arrays = []
    for name in required:
        col = table.column(name)
        target = _ARROW_TYPES[columns[name][0]]
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if col.null_count:
            raise DataError(f"{what}: column {name!r} has {col.null_count} missing value(s)")
        try:
            if pa.types.is_floating(col.type) and not pa.types.is_floating(target):
                raise pa.ArrowInvalid("float to non-float")
            col = col.cast(target, safe=True)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
            raise DataError(
                f"{what}: column {name!r} of type {col.type} cannot be stored as {columns[name][0]} ({err})"
            ) from None
        if pa.types.is_floating(target) and len(col) and pc.any(pc.is_nan(col)).as_py():
            raise DataError(f"{what}: column {name!r} contains NaN")
        arrays.append(col)
    return pa.Table.from_arrays(arrays, schema=arrow_schema({n: columns[n] for n in required}))


def validate_outcomes(table: pa.Table, what: str) -> None:
    """Outcome consistency: a bounce or a conversion implies a click; dwell and propensity ranges."""
    click = table.column("click")
    for name in ("bounce", "conversion"):
        bad = pc.and_(table.column(name), pc.invert(click))
        if pc.any(bad).as_py():
            raise DataError(f"{what}: column {name!r} is true on a row without a click")
    if len(table) and pc.min(table.column("dwell_s")).as_py() < 0:
        raise DataError(f"{what}: column 'dwell_s' has negative values")
    prop = table.column("propensity")
    if len(table) and (pc.min(prop).as_py() <= 0 or pc.max(prop).as_py() > 1):
        raise DataError(f"{what}: column 'propensity' must be in (0, 1]")


class RunExistsError(DataError):
    """A complete run with the same config hash and seed is already stored (re-run refused)."""


@dataclass
class RunHandle:
    """An open run of an :class:`EventStore`: append batches to it, then complete or fail it.

    As a context manager it completes the run on a normal exit and marks it failed on an exception
    (a killed process does neither: the run stays ``running`` and readers skip it).
    """

    store: EventStore
    run_id: int
    config_hash: str
    seed: int | None
    policy: str | None
    user_offset: int
    session_offset: int
    slate_offset: int
    replaces: tuple[int, ...] = ()

    def append(self, events: Any) -> tuple[int, int]:
        """Append a batch to this run (see :meth:`EventStore.append_impressions`)."""
        return self.store.append_impressions(events, run_id=self.run_id)

    def append_slates(self, slates: Any) -> int:
        """Append slate records to this run (see :meth:`EventStore.append_slates`)."""
        return self.store.append_slates(slates, run_id=self.run_id)

    def complete(self) -> None:
        """Mark the run complete (and delete the runs it replaces, in the same transaction)."""
        self.store.complete_run(self.run_id)

    def fail(self, reason: str) -> None:
        """Mark the run failed with ``reason``; its events stay but readers skip them by default."""
        self.store.fail_run(self.run_id, reason)

    def __enter__(self) -> RunHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is None:
            self.complete()
        elif self.run_id in self.store._active:
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{exc_type.__name__}: {exc}"
            with contextlib.suppress(Exception):  # never mask the real error
                self.fail(reason[:500])


class EventStore:
    """Append-only impression log, its runs and the item table in a DuckDB file (see module docstring).

    Opening for writing creates the tables in a new or empty file, migrates a store written before runs
    existed (one legacy complete run 0 holding all rows, in one transaction), and refuses a file that
    is not a DuckDB database, a database with tables that are not ours, or our tables with the wrong
    columns. ``read_only=True`` never changes the file (a legacy store reads as one complete run 0).
    """

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        self.read_only = read_only
        self._legacy = False
        self._has_items = True
        self._has_slates = False
        self._active: dict[int, RunHandle] = {}
        #: the next event_id to assign, counted in memory after this object's first append (saves a
        #: MAX(event_id) scan per batch; this object is the file's one writer: DuckDB locks it)
        self._next_event_id: int | None = None
        #: What the last default (``runs="complete"``) read left out.
        self.skipped = Skipped()
        if read_only and not self.path.is_file():
            raise DataError(f"event store not found: {self.path}")
        if self.path.is_dir():
            raise DataError(f"{self.path}: is a directory, not an event store file")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as err:
            raise DataError(f"cannot open event store {self.path}: {err}") from None
        try:
            self._open()
        except BaseException:
            self._con.close()
            raise

    # -- opening: check, create, migrate ------------------------------------------------------
    def _tables(self) -> dict[str, list[str]]:
        rows = self._con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_schema = 'main' "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        tables: dict[str, list[str]] = {}
        for table, column in rows:
            tables.setdefault(table, []).append(column)
        return tables

    def _open(self) -> None:
        tables = self._tables()
        foreign = sorted(set(tables) - set(OUR_TABLES))
        if foreign:
            raise DataError(
                f"{self.path}: not an intentrank event store (it holds table(s) {', '.join(foreign)}); "
                "refusing to use it"
            )
        if not tables:
            if self.read_only:
                raise DataError(f"{self.path}: not an event store (no tables)")
            self._transaction(
                lambda con: [
                    con.execute(_ddl(IMPRESSIONS_TABLE, IMPRESSION_COLUMNS)),
                    con.execute(_ddl(ITEMS_TABLE, ITEM_COLUMNS)),
                    con.execute(_ddl(RUNS_TABLE, RUN_COLUMNS, RUN_NULLABLE)),
                    con.execute(_ddl(SLATES_TABLE, SLATE_COLUMNS)),
                ],
                "create the tables",
            )
            self._has_slates = True
            return
        imp = tables.get(IMPRESSIONS_TABLE)
        legacy = imp == list(LEGACY_IMPRESSION_COLUMNS) and RUNS_TABLE not in tables
        expected = {IMPRESSIONS_TABLE: list(IMPRESSION_COLUMNS), ITEMS_TABLE: list(ITEM_COLUMNS)}
        if not legacy:
            expected[RUNS_TABLE] = list(RUN_COLUMNS)
        if legacy and ITEMS_TABLE not in tables:  # hand-made old stores: impressions only
            del expected[ITEMS_TABLE]
            if not self.read_only:
                self._con.execute(_ddl(ITEMS_TABLE, ITEM_COLUMNS))
        self._has_items = ITEMS_TABLE in expected or not self.read_only
        for table, columns in expected.items():
            have = tables.get(table)
            if have is None:
                raise DataError(f"{self.path}: damaged event store: no table {table!r}")
            if have != columns and not (legacy and table == IMPRESSIONS_TABLE):
                raise DataError(
                    f"{self.path}: damaged event store: table {table!r} has columns {have}, "
                    f"expected {columns}"
                )
        self._legacy = legacy
        if legacy and not self.read_only:
            self._migrate()
        self._open_slates(tables.get(SLATES_TABLE))

    def _open_slates(self, have: list[str] | None) -> None:
        """Check the slates table, or add it (empty) to a store written before it existed (a migration)."""
        if have is None:
            if not self.read_only:
                self._transaction(lambda con: con.execute(_ddl(SLATES_TABLE, SLATE_COLUMNS)), "add slates")
            self._has_slates = not self.read_only
            return
        if have != list(SLATE_COLUMNS):
            raise DataError(
                f"{self.path}: damaged event store: table {SLATES_TABLE!r} has columns {have}, "
                f"expected {list(SLATE_COLUMNS)}"
            )
        self._has_slates = True

    def _migrate(self) -> None:
        """Give a pre-runs store a runs table and a run_id column: all old rows become complete run 0."""
        n, policies = self._con.execute(
            f"SELECT COUNT(*), string_agg(DISTINCT policy, ',' ORDER BY policy) FROM {IMPRESSIONS_TABLE}"
        ).fetchall()[0]

        def work(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(_ddl(RUNS_TABLE, RUN_COLUMNS, RUN_NULLABLE))
            if n:
                run = legacy_run(int(n), policies) | {"started_at": _now(), "ended_at": _now()}
                con.execute(
                    f"INSERT INTO {RUNS_TABLE} VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                    [run[c] for c in RUN_COLUMNS],
                )
            con.execute(_ddl("impressions_v2", IMPRESSION_COLUMNS))
            src = ", ".join("0" if c == "run_id" else f'"{c}"' for c in IMPRESSION_COLUMNS)
            con.execute(f"INSERT INTO impressions_v2 SELECT {src} FROM {IMPRESSIONS_TABLE} ORDER BY event_id")
            con.execute(f"DROP TABLE {IMPRESSIONS_TABLE}")
            con.execute(f"ALTER TABLE impressions_v2 RENAME TO {IMPRESSIONS_TABLE}")

        self._transaction(work, "migrate the store to runs")
        self._legacy = False

    def _transaction(self, work: Any, doing: str) -> Any:
        """Run ``work(con)`` in one transaction; on any error roll back and raise the real error.

        A database error (disk full, I/O) becomes a one-line :class:`DataError`; a rollback that fails
        because DuckDB already aborted the transaction is not raised on top of it.
        """
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            result = work(con)
            con.execute("COMMIT")
        except BaseException as err:
            with contextlib.suppress(duckdb.Error):  # "no transaction is active" after an abort
                con.execute("ROLLBACK")
            if isinstance(err, duckdb.Error):
                raise DataError(f"{self.path}: cannot {doing}: {err}") from err
            raise
        return result

    def _writable(self) -> None:
        if self.read_only:
            raise DataError(f"{self.path}: opened read-only")

    # -- runs --------------------------------------------------------------------------------
    def begin_run(
        self,
        *,
        config_hash: str = "",
        seed: int | None = None,
        policy: str | None = None,
        command: str | None = None,
        note: str | None = None,
        on_existing: OnExisting = "refuse",
        shared_users: bool = False,
    ) -> RunHandle:
        """Start a run (status ``running``) and return its handle.

        ``on_existing`` decides what happens when a complete run with the same non-empty
        ``config_hash`` and ``seed`` is stored: ``"refuse"`` raises :class:`RunExistsError`,
        ``"append"`` adds a new run alongside, ``"replace"`` deletes the old run(s) with that hash and
        seed in the same transaction that marks the new run complete (never before). ``shared_users``
        keeps the producer's user ids as they are (users that persist across runs); otherwise user ids
        are run-local and offset like session and slate ids.
        """
        self._writable()
        if on_existing not in ("refuse", "append", "replace"):
            raise DataError(f"on_existing must be refuse, append or replace, got {on_existing!r}")
        if self._active:
            raise DataError(f"{self.path}: run {next(iter(self._active))} is still open on this store")
        replaces: tuple[int, ...] = ()
        if config_hash and on_existing != "append":
            same = self._con.execute(
                f"SELECT run_id, status FROM {RUNS_TABLE} "
                "WHERE config_hash = ? AND seed IS NOT DISTINCT FROM ? ORDER BY run_id",
                [config_hash, seed],
            ).fetchall()
            complete = [int(r) for r, status in same if status == "complete"]
            if complete and on_existing == "refuse":
                n = self.count(runs=complete)
                raise RunExistsError(
                    f"{self.path} already holds complete run(s) {complete} with config hash "
                    f"{config_hash} and seed {seed} ({n} events); refusing to write them again: "
                    "append a new run alongside (--append) or replace the old one (--replace)"
                )
            if on_existing == "replace":
                replaces = tuple(int(r) for r, _ in same)

        def work(con: duckdb.DuckDBPyConnection) -> RunHandle:
            run_id = int(
                con.execute(f"SELECT COALESCE(MAX(run_id), -1) + 1 FROM {RUNS_TABLE}").fetchall()[0][0]
            )
            users, sessions, slates = (
                int(v)
                for v in con.execute(
                    f"SELECT COALESCE(MAX(user_id) + 1, 0), COALESCE(MAX(session_id) + 1, 0), "
                    f"COALESCE(MAX(slate_id) + 1, 0) FROM {IMPRESSIONS_TABLE}"
                ).fetchall()[0]
            )
            users = 0 if shared_users else max(users, 0)
            row = {c: None for c in RUN_COLUMNS} | {
                "run_id": run_id,
                "status": "running",
                "config_hash": config_hash,
                "seed": seed,
                "policy": policy,
                "command": command,
                "note": note,
                "started_at": _now(),
                "user_offset": users,
                "session_offset": max(sessions, 0),
                "slate_offset": max(slates, 0),
            }
            con.execute(
                f"INSERT INTO {RUNS_TABLE} VALUES ({', '.join('?' * len(RUN_COLUMNS))})",
                [row[c] for c in RUN_COLUMNS],
            )
            return RunHandle(
                self,
                run_id,
                config_hash,
                seed,
                policy,
                row["user_offset"],
                row["session_offset"],
                row["slate_offset"],
                replaces,
            )

        handle = self._transaction(work, "begin a run")
        self._active[handle.run_id] = handle
        return handle

    def _open_run(self, run_id: int) -> RunHandle:
        run = self._active.get(run_id)
        if run is None:
            raise DataError(f"{self.path}: run {run_id} is not open on this store (begin_run first)")
        return run

    def complete_run(self, run_id: int) -> None:
        """Mark an open run complete; deletes the runs it replaces in the same transaction."""
        run = self._open_run(run_id)

        def work(con: duckdb.DuckDBPyConnection) -> None:
            if run.replaces:
                old = ", ".join(str(r) for r in run.replaces)
                con.execute(f"DELETE FROM {IMPRESSIONS_TABLE} WHERE run_id IN ({old})")
                con.execute(f"DELETE FROM {SLATES_TABLE} WHERE run_id IN ({old})")
                con.execute(f"DELETE FROM {RUNS_TABLE} WHERE run_id IN ({old})")
            con.execute(
                f"UPDATE {RUNS_TABLE} SET status = 'complete', ended_at = ? WHERE run_id = ?",
                [_now(), run_id],
            )

        self._transaction(work, f"complete run {run_id}")
        del self._active[run_id]

    def fail_run(self, run_id: int, reason: str) -> None:
        """Mark an open run failed (its events stay, readers skip them by default)."""
        self._open_run(run_id)
        self._transaction(
            lambda con: con.execute(
                f"UPDATE {RUNS_TABLE} SET status = 'failed', ended_at = ?, reason = ? WHERE run_id = ?",
                [_now(), reason, run_id],
            ),
            f"mark run {run_id} failed",
        )
        del self._active[run_id]

    def runs(self) -> pd.DataFrame:
        """The runs table with each run's event count (``events``), ordered by run_id."""
        if self._legacy:
            runs = pd.DataFrame(self._run_records(), columns=list(RUN_COLUMNS))
            return runs.assign(events=self.count("all"))
        return self._con.execute(
            f"SELECT r.*, COALESCE(c.n, 0) AS events FROM {RUNS_TABLE} r LEFT JOIN "
            f"(SELECT run_id, COUNT(*) AS n FROM {IMPRESSIONS_TABLE} GROUP BY run_id) c USING (run_id) "
            "ORDER BY r.run_id"
        ).df()

    def _run_records(self) -> list[dict[str, Any]]:
        """Rows of the runs table as dicts (NULL as None); no scan of the impressions."""
        if self._legacy:
            n, policies = self._con.execute(
                f"SELECT COUNT(*), string_agg(DISTINCT policy, ',' ORDER BY policy) FROM {IMPRESSIONS_TABLE}"
            ).fetchall()[0]
            return [legacy_run(int(n), policies)]
        runs = self._con.execute(f"SELECT * FROM {RUNS_TABLE} ORDER BY run_id").df().astype(object)
        return runs.where(runs.notna(), None).to_dict(orient="records")

    # -- writing -----------------------------------------------------------------------------
    def append_impressions(self, events: Any, run_id: int | None = None) -> tuple[int, int]:
        """Append impressions (DataFrame/Arrow with :data:`PRODUCER_COLUMNS`); returns (first, last) event_id.

        ``run_id``: an open run of this store (ids are offset by the run's offsets). Without it the
        batch is a run of its own (begun, written and completed here). One transaction: either every
        row is stored or none; durable when this returns. An empty batch stores nothing and returns
        ``(w + 1, w)`` for the current watermark ``w``.
        """
        self._writable()
        table = conform(_to_arrow(events, "impressions"), IMPRESSION_COLUMNS, PRODUCER_COLUMNS, "impressions")
        validate_outcomes(table, "impressions")
        if run_id is None:
            if self._active:
                raise DataError(f"{self.path}: run {next(iter(self._active))} is open: pass its run_id")
            policies = ",".join(sorted(pc.unique(table.column("policy")).to_pylist()))
            with self.begin_run(policy=policies or None, command="append_impressions") as run:
                return run.append(table)
        run = self._open_run(run_id)

        def work(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
            first = self._next_event_id
            if first is None:  # the first append of this object: from the table (afterwards counted here)
                query = f"SELECT COALESCE(MAX(event_id), -1) + 1 FROM {IMPRESSIONS_TABLE}"
                first = int(con.execute(query).fetchall()[0][0])
            n = len(table)
            if n:
                ids = pa.array(np.arange(first, first + n, dtype=np.int64))
                # read by DuckDB's replacement scan of this frame's locals (a registered view is a catalog
                # change in the transaction: ~1.5 ms more per 1,000-row batch)
                _incoming = table.add_column(0, "event_id", ids)
                offsets = {
                    "run_id": str(run.run_id),
                    "user_id": f'"user_id" + {run.user_offset}',
                    "session_id": f'"session_id" + {run.session_offset}',
                    "slate_id": f'"slate_id" + {run.slate_offset}',
                }
                src = ", ".join(offsets.get(c, f'"{c}"') for c in IMPRESSION_COLUMNS)
                into = f"{IMPRESSIONS_TABLE} ({_cols(IMPRESSION_COLUMNS)})"
                con.execute(f"INSERT INTO {into} SELECT {src} FROM _incoming")
            return first, first + n - 1

        try:
            first, last = self._transaction(work, "append impressions")
        except BaseException:
            self._next_event_id = None  # read from the table again
            raise
        self._next_event_id = last + 1  # committed
        return first, last

    def append_slates(self, slates: Any, run_id: int) -> int:
        """Append slate records (:data:`SLATE_PRODUCER_COLUMNS`) to the open run ``run_id``; slate ids are
        offset like the impressions'. One transaction; returns the number of slates written."""
        self._writable()
        table = conform(_to_arrow(slates, "slates"), SLATE_COLUMNS, SLATE_PRODUCER_COLUMNS, "slates")
        run = self._open_run(run_id)
        for name in ("marginal_propensity", "cascade_propensity"):
            flat = pc.list_flatten(table.column(name))
            if len(flat) and (pc.min(flat).as_py() <= 0 or pc.max(flat).as_py() > 1):
                raise DataError(f"slates: column {name!r} must be in (0, 1]")

        def work(con: duckdb.DuckDBPyConnection) -> None:
            con.register("_incoming", table)
            src = ", ".join(
                str(run.run_id) if c == "run_id" else f'"slate_id" + {run.slate_offset}' if c == "slate_id"
                else f'"{c}"'
                for c in SLATE_COLUMNS
            )  # fmt: skip
            try:
                cols = _cols(SLATE_COLUMNS)
                con.execute(f"INSERT INTO {SLATES_TABLE} ({cols}) SELECT {src} FROM _incoming")
            finally:
                con.unregister("_incoming")

        if len(table):
            self._transaction(work, "append slates")
        return len(table)

    def read_slates(self, runs: RunSelection = "complete") -> pd.DataFrame:
        """Slate records (candidates and OPE propensities) of the selected runs, by slate_id; empty when
        the store holds none (a store written before the slates table, or only non-exploring policies)."""
        if not self._has_slates:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in SLATE_COLUMNS})
        keep = select_run_ids(self._run_records(), runs, str(self.path))
        clause = "" if keep is None else f" WHERE run_id IN ({', '.join(str(i) for i in keep) or 'NULL'})"
        return self._con.execute(f"SELECT * FROM {SLATES_TABLE}{clause} ORDER BY slate_id").df()

    def write_items(self, items: Any) -> int:
        """Insert or replace catalogue rows (by ``item_id``); returns the number of rows written."""
        self._writable()
        batch = conform(_to_arrow(items, "items"), ITEM_COLUMNS, tuple(ITEM_COLUMNS), "items")
        ids = batch.column("item_id")
        if len(pc.unique(ids)) != len(ids):
            raise DataError("items: item_id values must be unique")
        con = self._con
        con.register("_incoming", batch)

        def work(con: duckdb.DuckDBPyConnection) -> None:
            con.execute(f"DELETE FROM {ITEMS_TABLE} WHERE item_id IN (SELECT item_id FROM _incoming)")
            cols = _cols(ITEM_COLUMNS)
            con.execute(f"INSERT INTO {ITEMS_TABLE} ({cols}) SELECT {cols} FROM _incoming")

        try:
            self._transaction(work, "write items")
        finally:
            con.unregister("_incoming")
        return len(batch)

    # -- reading -----------------------------------------------------------------------------
    def watermark(self) -> int:
        """The largest stored event_id (any run), or -1 for an empty store."""
        return int(
            self._con.execute(f"SELECT COALESCE(MAX(event_id), -1) FROM {IMPRESSIONS_TABLE}").fetchall()[0][0]
        )

    def _source(self) -> str:
        if not self._legacy:
            return IMPRESSIONS_TABLE
        cols = ", ".join("0::BIGINT AS run_id" if c == "run_id" else f'"{c}"' for c in IMPRESSION_COLUMNS)
        return f"(SELECT {cols} FROM {IMPRESSIONS_TABLE})"

    @staticmethod
    def _window(
        since_event_id: int | None,
        until_event_id: int | None,
        days: list[int] | None = None,
        shard: Shard | None = None,
    ) -> list[str]:
        return window_conditions(since_event_id, until_event_id, days, shard)

    def _where(
        self,
        since_event_id: int | None,
        until_event_id: int | None,
        runs: RunSelection,
        days: list[int] | None = None,
        shard: Shard | None = None,
    ) -> tuple[str, str | None]:
        """(WHERE clause of the selected rows, WHERE clause of the skipped rows or None)."""
        where = self._window(since_event_id, until_event_id, days, shard)
        keep = select_run_ids(self._run_records(), runs, str(self.path))
        skipped = None
        if keep is not None:
            ids = ", ".join(str(i) for i in keep) or "NULL"
            skipped = " AND ".join([*where, f"run_id NOT IN ({ids})"])
            where.append(f"run_id IN ({ids})")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return clause, (f" WHERE {skipped}" if skipped and runs == "complete" else None)

    def _note_skipped(self, skipped_where: str | None) -> None:
        self.skipped = Skipped()
        if skipped_where is None:
            return
        rows = self._con.execute(
            f"SELECT run_id, COUNT(*) FROM {self._source()}{skipped_where} GROUP BY run_id ORDER BY run_id"
        ).fetchall()
        self.skipped = Skipped(runs=[int(r) for r, _ in rows], events=int(sum(n for _, n in rows)))
        warn_skipped(str(self.path), self.skipped)

    def count(self, runs: RunSelection = "complete") -> int:
        """Number of stored impressions of the selected runs (default: complete runs)."""
        clause, _ = self._where(None, None, runs)
        return int(self._con.execute(f"SELECT COUNT(*) FROM {self._source()}{clause}").fetchall()[0][0])

    def read_impressions(
        self,
        since_event_id: int | None = None,
        until_event_id: int | None = None,
        runs: RunSelection = "complete",
        days: list[int] | None = None,
        shard: Shard | None = None,
    ) -> pd.DataFrame:
        """Impressions with ``since_event_id < event_id <= until_event_id`` (bounds optional), in order.

        ``runs``: ``"complete"`` (default; events of running/failed runs are skipped, with a warning and
        a record in :attr:`skipped`), ``"all"``, or a list of run ids. ``days``: only these day indices.
        ``shard=(rank, world)``: only users with ``user_id % world == rank`` (a data-parallel worker's
        share: a user's whole history stays on one worker).
        """
        return self.read_impressions_arrow(since_event_id, until_event_id, runs, days, shard).to_pandas()

    def read_impressions_arrow(
        self,
        since_event_id: int | None = None,
        until_event_id: int | None = None,
        runs: RunSelection = "complete",
        days: list[int] | None = None,
        shard: Shard | None = None,
    ) -> pa.Table:
        """As :meth:`read_impressions`, as an Arrow table (no pandas copy)."""
        clause, skipped = self._where(since_event_id, until_event_id, runs, days, shard)
        self._note_skipped(skipped)
        return self._con.sql(f"SELECT * FROM {self._source()}{clause} ORDER BY event_id").to_arrow_table()

    def read_items(self) -> pd.DataFrame:
        """The item table, ordered by item_id."""
        if not self._has_items:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in ITEM_COLUMNS})
        return self._con.execute(f"SELECT * FROM {ITEMS_TABLE} ORDER BY item_id").df()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection, for ad-hoc SQL (read-only use, please)."""
        return self._con

    # -- Parquet -----------------------------------------------------------------------------
    def export_parquet(
        self, directory: str | Path, partition: str | list[str] | tuple[str, ...] = ()
    ) -> Path:
        """Write ``impressions.parquet`` (every run, runs in its metadata) and ``items.parquet``.

        ``partition`` (e.g. ``"day,run"``): write the impressions as hive-style partitions instead,
        ``impressions/day=D/run_id=R/*.parquet`` (the partition columns live in the directory names;
        every file carries the runs metadata), read lazily by :func:`read_events` with partition pruning.
        Each file (the partition tree as a whole) is written to a temporary name and renamed when
        complete; returns the directory.
        """
        out = Path(directory)
        if out.exists() and not out.is_dir():
            raise DataError(f"cannot export to {out}: it is a file, not a directory")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DataError(f"cannot export to {out}: {err}") from None
        imp_file, items_file = parquet_paths(out)
        keys = partition_columns(partition) if partition else []
        if (out / (PARTITIONED_DIR if not keys else imp_file.name)).exists():
            have = "a partitioned impressions/ tree" if not keys else "impressions.parquet"
            raise DataError(f"cannot export to {out}: it already holds {have} (another layout)")
        write_parquet_atomic(
            self._con.sql(f"SELECT * FROM {ITEMS_TABLE} ORDER BY item_id")
            .to_arrow_table()
            .cast(ITEMS_ARROW_SCHEMA),
            items_file,
        )
        if keys:
            self._export_partitioned(out / PARTITIONED_DIR, keys)
            return out
        writer = AtomicParquetWriter(imp_file, IMPRESSIONS_ARROW_SCHEMA)
        try:
            reader = self._con.sql(f"SELECT * FROM {self._source()} ORDER BY event_id").to_arrow_reader(
                1_000_000
            )
            for batch in reader:
                writer.write(pa.Table.from_batches([batch]).cast(IMPRESSIONS_ARROW_SCHEMA))
        except BaseException:
            writer.abort()
            raise
        writer.commit(runs_metadata(self._run_records()))
        return out

    def _export_partitioned(self, target: Path, keys: list[str]) -> None:
        """DuckDB's hive-partitioned COPY into a temporary tree, renamed over ``target`` when complete."""
        import os
        import shutil

        meta = runs_metadata(self._run_records())
        kv = ", ".join(f"'{k}': '{v.replace(chr(39), chr(39) * 2)}'" for k, v in meta.items())
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        cols = ", ".join(f'"{c}"::{t} AS "{c}"' for c, (t, _) in IMPRESSION_COLUMNS.items())
        try:
            self._con.execute(
                f"COPY (SELECT {cols} FROM {self._source()} ORDER BY event_id) TO '{tmp}' "
                f"(FORMAT PARQUET, PARTITION_BY ({', '.join(keys)}), KV_METADATA {{{kv}}})"
            )
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            if target.exists():
                os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        except (duckdb.Error, OSError) as err:
            shutil.rmtree(tmp, ignore_errors=True)
            raise DataError(f"cannot export to {target}: {err}") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def import_parquet(cls, source: str | Path, path: str | Path) -> EventStore:
        """Create a store at ``path`` from Parquet events (directory or file layout), keeping ids and runs.

        The store must hold no events; all runs (with their statuses) are imported.
        """
        imp_file, _ = parquet_paths(source)
        part_dir = partitioned_dir(source)
        if part_dir is not None:
            imp_file = part_dir
        elif not imp_file.is_file():
            raise DataError(
                f"{source}: no impressions.parquet or impressions/ partitions (directory) or Parquet "
                "file to import"
            )
        store = cls(path)
        try:
            if store.watermark() >= 0:
                raise DataError(f"cannot import into {path}: the store already holds events")
            table, items, _ = read_parquet_events(source, runs="all")
            imported = conform(table, IMPRESSION_COLUMNS, tuple(IMPRESSION_COLUMNS), str(imp_file))
            validate_outcomes(imported, str(imp_file))
            ids = imported.column("event_id").to_numpy()
            if len(ids) and (ids[0] < 0 or np.any(np.diff(ids) <= 0)):
                raise DataError(f"{imp_file}: event_id must be non-negative and strictly increasing")
            runs = parquet_runs(imp_file) if part_dir is None else partitioned_runs(part_dir)
            unknown = set(pc.unique(imported.column("run_id")).to_pylist()) - {int(r["run_id"]) for r in runs}
            if unknown:
                raise DataError(f"{imp_file}: rows of run(s) {sorted(unknown)} not in its runs metadata")

            def work(con: duckdb.DuckDBPyConnection) -> None:
                con.execute(f"DELETE FROM {RUNS_TABLE}")
                for run in runs:
                    row = [run.get(c) for c in RUN_COLUMNS]
                    con.execute(f"INSERT INTO {RUNS_TABLE} VALUES ({', '.join('?' * len(row))})", row)
                con.register("_incoming", imported)
                con.execute(f"INSERT INTO {IMPRESSIONS_TABLE} SELECT * FROM _incoming")
                con.unregister("_incoming")

            store._transaction(work, "import events")
            if items is not None:
                store.write_items(items)
        except BaseException:
            store.close()
            raise
        return store

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent). Runs still open stay ``running`` (reported incomplete)."""
        self._con.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@dataclass
class EventData:
    """Events read from a source: impressions (selected runs, in event order), items, and what was skipped."""

    impressions: pd.DataFrame
    items: pd.DataFrame | None
    skipped: Skipped


def read_events(
    source: EventStore | str | Path,
    since_event_id: int | None = None,
    until_event_id: int | None = None,
    runs: RunSelection = "complete",
    days: list[int] | None = None,
    shard: Shard | None = None,
) -> EventData:
    """Read events from an open store, a DuckDB store file, a Parquet file or a Parquet directory (one
    file or hive-style partitions by day and/or run, read lazily: only the asked days' files are opened).

    ``since_event_id < event_id <= until_event_id`` (bounds optional); ``runs`` as in
    :meth:`EventStore.read_impressions` (default: complete runs, with a warning about what was skipped);
    ``days``: only these day indices; ``shard=(rank, world)``: only users with ``user_id % world == rank``
    (a data-parallel worker's share). The Parquet layouts are described in :mod:`intentrank.store.files`.
    """
    if isinstance(source, EventStore):
        imp = source.read_impressions(since_event_id, until_event_id, runs, days, shard)
        return EventData(imp, source.read_items(), source.skipped)
    p = Path(source)
    if not p.exists():
        raise DataError(f"event source not found: {p}")
    if p.is_dir() or p.suffix == ".parquet":
        table, items, skipped = read_parquet_events(p, since_event_id, until_event_id, runs, days, shard)
        warn_skipped(str(p), skipped)
        return EventData(table.to_pandas(), None if items is None else items.to_pandas(), skipped)
    with EventStore(p, read_only=True) as store:
        return read_events(store, since_event_id, until_event_id, runs, days, shard)
