"""Where simulated events go: the DuckDB event store, a Parquet file, memory, or nowhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from intentrank.errors import DataError
from intentrank.store.event_store import IMPRESSIONS_ARROW_SCHEMA, EventStore


class StoreSink:
    """Appends each batch to an :class:`EventStore` (one committed transaction per batch)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.first: int | None = None
        self.last: int | None = None

    def __call__(self, batch: pa.Table) -> None:
        first, last = self.store.append_impressions(batch)
        if last >= first:
            self.first = first if self.first is None else self.first
            self.last = last


class ParquetSink:
    """Streams batches into one Parquet file with the full impression schema (``event_id`` from 0)."""

    def __init__(self, path: str | Path, start_event_id: int = 0) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, IMPRESSIONS_ARROW_SCHEMA)
        except OSError as err:
            raise DataError(f"cannot write {self.path}: {err}") from None
        self.next_id = start_event_id

    def __call__(self, batch: pa.Table) -> None:
        n = len(batch)
        ids = pa.array(np.arange(self.next_id, self.next_id + n, dtype=np.int64))
        self.next_id += n
        cols = {"event_id": ids, **{name: batch.column(name) for name in batch.column_names}}
        arrays = [
            cols[f.name].cast(f.type) if cols[f.name].type != f.type else cols[f.name]
            for f in IMPRESSIONS_ARROW_SCHEMA
        ]
        self._writer.write_table(pa.Table.from_arrays(arrays, schema=IMPRESSIONS_ARROW_SCHEMA))

    def close(self) -> None:
        """Finish the file (writes the footer)."""
        self._writer.close()


class CollectSink:
    """Keeps every batch in memory (tests, small runs); :meth:`table` concatenates them."""

    def __init__(self) -> None:
        self.batches: list[pa.Table] = []

    def __call__(self, batch: pa.Table) -> None:
        self.batches.append(batch)

    def table(self) -> pa.Table:
        """All events so far as one table (policy as plain strings)."""
        if not self.batches:
            return pa.table(
                {f.name: pa.array([], f.type) for f in IMPRESSIONS_ARROW_SCHEMA if f.name != "event_id"}
            )
        t = pa.concat_tables(self.batches, promote_options="permissive")
        i = t.column_names.index("policy")
        return t.set_column(i, "policy", t.column("policy").cast(pa.string()))
