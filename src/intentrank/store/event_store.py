"""The append-only event store: impressions (and the item catalogue) in one DuckDB file.

Durability: :meth:`EventStore.append_impressions` runs one transaction and returns only after
``COMMIT``; DuckDB writes the commit to its write-ahead log before returning, so an acknowledged
batch survives a crash of the process (it is replayed when the file is next opened).
Watermark: ``event_id`` is assigned here, strictly increasing in insertion order with no gaps;
``read_impressions(since_event_id=w)`` returns exactly the events appended after watermark ``w``.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from intentrank.errors import DataError
from intentrank.store.schema import IMPRESSION_COLUMNS, ITEM_COLUMNS, PRODUCER_COLUMNS

_ARROW_TYPES: dict[str, pa.DataType] = {
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "SMALLINT": pa.int16(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "VARCHAR": pa.string(),
}

IMPRESSIONS_TABLE = "impressions"
ITEMS_TABLE = "items"


def arrow_schema(columns: dict[str, tuple[str, str]]) -> pa.Schema:
    """Arrow schema of a table of the event schema (for Parquet writers and readers)."""
    return pa.schema([pa.field(name, _ARROW_TYPES[t], nullable=False) for name, (t, _) in columns.items()])


IMPRESSIONS_ARROW_SCHEMA = arrow_schema(IMPRESSION_COLUMNS)
ITEMS_ARROW_SCHEMA = arrow_schema(ITEM_COLUMNS)


def _ddl(table: str, columns: dict[str, tuple[str, str]]) -> str:
    cols = ", ".join(f'"{n}" {t} NOT NULL' for n, (t, _) in columns.items())
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


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


class EventStore:
    """Append-only impression log and item table in a DuckDB file (see module docstring)."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.is_file():
            raise DataError(f"event store not found: {self.path}")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.Error as err:
            raise DataError(f"cannot open event store {self.path}: {err}") from None
        if not read_only:
            self._con.execute(_ddl(IMPRESSIONS_TABLE, IMPRESSION_COLUMNS))
            self._con.execute(_ddl(ITEMS_TABLE, ITEM_COLUMNS))
        self._check_schema()

    def _check_schema(self) -> None:
        for table, columns in ((IMPRESSIONS_TABLE, IMPRESSION_COLUMNS), (ITEMS_TABLE, ITEM_COLUMNS)):
            rows = self._con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position",
                [table],
            ).fetchall()
            have = [r[0] for r in rows]
            if have and have[: len(columns)] != list(columns):
                raise DataError(f"{self.path}: table {table!r} has columns {have}, expected {list(columns)}")
            if not have:
                raise DataError(f"{self.path}: not an event store (no table {table!r})")

    # -- writing -----------------------------------------------------------------------------
    def append_impressions(self, events: Any) -> tuple[int, int]:
        """Append impressions (DataFrame/Arrow with :data:`PRODUCER_COLUMNS`); returns (first, last) event_id.

        One transaction: either every row is stored or none; durable when this returns.
        An empty batch stores nothing and returns ``(w + 1, w)`` for the current watermark ``w``.
        """
        table = conform(_to_arrow(events, "impressions"), IMPRESSION_COLUMNS, PRODUCER_COLUMNS, "impressions")
        validate_outcomes(table, "impressions")
        con = self._con
        con.execute("BEGIN TRANSACTION")
        try:
            first = int(
                con.execute(f"SELECT COALESCE(MAX(event_id), -1) + 1 FROM {IMPRESSIONS_TABLE}").fetchall()[0][
                    0
                ]
            )
            n = len(table)
            if n:
                ids = pa.array(np.arange(first, first + n, dtype=np.int64))
                con.register("_incoming", table.add_column(0, "event_id", ids))
                cols = ", ".join(f'"{c}"' for c in IMPRESSION_COLUMNS)
                con.execute(f"INSERT INTO {IMPRESSIONS_TABLE} ({cols}) SELECT {cols} FROM _incoming")
                con.unregister("_incoming")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return first, first + n - 1

    def write_items(self, items: Any) -> int:
        """Insert or replace catalogue rows (by ``item_id``); returns the number of rows written."""
        batch = conform(_to_arrow(items, "items"), ITEM_COLUMNS, tuple(ITEM_COLUMNS), "items")
        ids = batch.column("item_id")
        if len(pc.unique(ids)) != len(ids):
            raise DataError("items: item_id values must be unique")
        con = self._con
        con.register("_incoming", batch)
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(f"DELETE FROM {ITEMS_TABLE} WHERE item_id IN (SELECT item_id FROM _incoming)")
            cols = ", ".join(f'"{c}"' for c in ITEM_COLUMNS)
            con.execute(f"INSERT INTO {ITEMS_TABLE} ({cols}) SELECT {cols} FROM _incoming")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_incoming")
        return len(batch)

    # -- reading -----------------------------------------------------------------------------
    def watermark(self) -> int:
        """The largest stored event_id, or -1 for an empty store."""
        return int(
            self._con.execute(f"SELECT COALESCE(MAX(event_id), -1) FROM {IMPRESSIONS_TABLE}").fetchall()[0][0]
        )

    def count(self) -> int:
        """Number of stored impressions."""
        return int(self._con.execute(f"SELECT COUNT(*) FROM {IMPRESSIONS_TABLE}").fetchall()[0][0])

    @staticmethod
    def _impressions_query(since_event_id: int | None, until_event_id: int | None) -> str:
        where = []
        if since_event_id is not None:
            where.append(f"event_id > {int(since_event_id)}")
        if until_event_id is not None:
            where.append(f"event_id <= {int(until_event_id)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT * FROM {IMPRESSIONS_TABLE}{clause} ORDER BY event_id"

    def read_impressions(
        self, since_event_id: int | None = None, until_event_id: int | None = None
    ) -> pd.DataFrame:
        """Impressions with ``since_event_id < event_id <= until_event_id`` (bounds optional), in order."""
        return self.read_impressions_arrow(since_event_id, until_event_id).to_pandas()

    def read_impressions_arrow(
        self, since_event_id: int | None = None, until_event_id: int | None = None
    ) -> pa.Table:
        """As :meth:`read_impressions`, as an Arrow table (no pandas copy)."""
        return self._con.sql(self._impressions_query(since_event_id, until_event_id)).to_arrow_table()

    def read_items(self) -> pd.DataFrame:
        """The item table, ordered by item_id."""
        return self._con.execute(f"SELECT * FROM {ITEMS_TABLE} ORDER BY item_id").df()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """The underlying DuckDB connection, for ad-hoc SQL (read-only use, please)."""
        return self._con

    # -- Parquet -----------------------------------------------------------------------------
    def export_parquet(self, directory: str | Path) -> Path:
        """Write ``impressions.parquet`` and ``items.parquet`` into ``directory`` (created); returns it."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for table, order in ((IMPRESSIONS_TABLE, "event_id"), (ITEMS_TABLE, "item_id")):
            target = str(out / f"{table}.parquet").replace("'", "''")
            self._con.execute(f"COPY (SELECT * FROM {table} ORDER BY {order}) TO '{target}' (FORMAT parquet)")
        return out

    @classmethod
    def import_parquet(cls, directory: str | Path, path: str | Path) -> EventStore:
        """Create a store at ``path`` from an exported directory (event_ids kept); the store must be empty."""
        src = Path(directory)
        imp = src / f"{IMPRESSIONS_TABLE}.parquet"
        if not imp.is_file():
            raise DataError(f"{src}: no {IMPRESSIONS_TABLE}.parquet to import")
        store = cls(path)
        try:
            if store.count():
                raise DataError(f"cannot import into {path}: the store already holds events")
            try:
                table = pq.read_table(imp)
            except Exception as err:  # pyarrow raises several types for a corrupt file
                raise DataError(f"{imp}: not a readable Parquet file ({err})") from None
            imported = conform(table, IMPRESSION_COLUMNS, tuple(IMPRESSION_COLUMNS), str(imp))
            validate_outcomes(imported, str(imp))
            ids = imported.column("event_id").to_numpy()
            if len(ids) and (ids[0] < 0 or np.any(np.diff(ids) <= 0)):
                raise DataError(f"{imp}: event_id must be non-negative and strictly increasing")
            con = store._con
            con.register("_incoming", imported)
            con.execute(f"INSERT INTO {IMPRESSIONS_TABLE} SELECT * FROM _incoming")
            con.unregister("_incoming")
            items = src / f"{ITEMS_TABLE}.parquet"
            if items.is_file():
                store.write_items(pq.read_table(items))
        except BaseException:
            store.close()
            raise
        return store

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._con.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
