"""Where simulated events go: a run of the DuckDB event store, a Parquet file, memory, or nowhere."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from intentrank.ranking.history import UserHistory
from intentrank.store.event_store import IMPRESSIONS_ARROW_SCHEMA, ITEMS_ARROW_SCHEMA, RunHandle
from intentrank.store.files import (
    AtomicParquetWriter,
    legacy_run,
    parquet_paths,
    runs_metadata,
    write_parquet_atomic,
)


class StoreSink:
    """Appends each batch to an open run of an event store (one committed transaction per batch)."""

    def __init__(self, run: RunHandle) -> None:
        self.run = run
        self.first: int | None = None
        self.last: int | None = None

    def slates(self, table: pa.Table) -> None:
        """Slate records of an exploring policy (the store's slates table, for off-policy evaluation)."""
        self.run.append_slates(table)

    def __call__(self, batch: pa.Table) -> None:
        first, last = self.run.append(batch)
        if last >= first:
            self.first = first if self.first is None else self.first
            self.last = last


class ParquetSink:
    """Streams batches into one Parquet file with the full impression schema (``event_id`` from 0).

    The file is one run (``run_id`` 0, recorded in the file's metadata) and appears only on
    :meth:`close`: until then rows go to a temporary file beside it, so a killed process leaves any
    previous file intact. ``items`` (the catalogue) is written beside it as ``X.items.parquet``.
    """

    def __init__(
        self,
        path: str | Path,
        start_event_id: int = 0,
        run: dict[str, Any] | None = None,
        items: pd.DataFrame | None = None,
    ) -> None:
        self.path = Path(path)
        self._writer = AtomicParquetWriter(self.path, IMPRESSIONS_ARROW_SCHEMA)
        self.next_id = start_event_id
        self.run = legacy_run(0) | {"config_hash": "", "command": "simulate", "note": None} | (run or {})
        self.run["started_at"] = datetime.now(UTC).replace(tzinfo=None)
        self.items = items

    def __call__(self, batch: pa.Table) -> None:
        n = len(batch)
        ids = pa.array(np.arange(self.next_id, self.next_id + n, dtype=np.int64))
        self.next_id += n
        run_ids = pa.array(np.full(n, self.run["run_id"], dtype=np.int64))
        cols = {
            "event_id": ids,
            "run_id": run_ids,
            **{name: batch.column(name) for name in batch.column_names},
        }
        arrays = [
            cols[f.name].cast(f.type) if cols[f.name].type != f.type else cols[f.name]
            for f in IMPRESSIONS_ARROW_SCHEMA
        ]
        self._writer.write(pa.Table.from_arrays(arrays, schema=IMPRESSIONS_ARROW_SCHEMA))

    def close(self) -> None:
        """Finish: write the items beside the file, then rename the complete impressions file into place."""
        if self.items is not None:
            table = pa.Table.from_pandas(self.items, preserve_index=False).cast(ITEMS_ARROW_SCHEMA)
            write_parquet_atomic(table, parquet_paths(self.path)[1])
        self.run |= {"status": "complete", "ended_at": datetime.now(UTC).replace(tzinfo=None)}
        self._writer.commit(runs_metadata([self.run]))

    def abort(self) -> None:
        """Drop the unfinished file (the previous file at the path, if any, stays)."""
        self._writer.abort()


class CollectSink:
    """Keeps every batch in memory (tests, small runs); :meth:`table` concatenates them."""

    def __init__(self) -> None:
        self.batches: list[pa.Table] = []
        self.slate_batches: list[pa.Table] = []

    def __call__(self, batch: pa.Table) -> None:
        self.batches.append(batch)

    def slates(self, table: pa.Table) -> None:
        """Keep the slate records of an exploring policy (see :meth:`slate_table`)."""
        self.slate_batches.append(table)

    def slate_table(self) -> pa.Table | None:
        """All slate records so far (None when no exploring policy logged any)."""
        return pa.concat_tables(self.slate_batches) if self.slate_batches else None

    def table(self) -> pa.Table:
        """All events so far as one table (policy as plain strings)."""
        if not self.batches:
            return pa.table(
                {
                    f.name: pa.array([], f.type)
                    for f in IMPRESSIONS_ARROW_SCHEMA
                    if f.name not in ("event_id", "run_id")
                }
            )
        t = pa.concat_tables(self.batches, promote_options="permissive")
        i = t.column_names.index("policy")
        return t.set_column(i, "policy", t.column("policy").cast(pa.string()))


class HistorySink(CollectSink):
    """Keeps a day's events and feeds them to a :class:`~intentrank.ranking.history.UserHistory` on
    :meth:`commit` (call it after each day: a session is served with the history of the days before it,
    as the training rows' point-in-time features assume). ``then``: another sink the batches go on to."""

    def __init__(self, history: UserHistory, items: pd.DataFrame, then: Any | None = None) -> None:
        super().__init__()
        self.history, self.then = history, then
        # the columns the history keys on (topic; source for the user × source counts)
        self._topics = items[[c for c in ("item_id", "topic", "source") if c in items.columns]]

    def __call__(self, batch: pa.Table) -> None:
        super().__call__(batch)
        if self.then is not None:
            self.then(batch)

    def slates(self, table: pa.Table) -> None:
        """Slate records go on to ``then`` when it takes them (the history needs only the events)."""
        if self.then is not None and hasattr(self.then, "slates"):
            self.then.slates(table)

    def commit(self, *_: Any) -> None:
        """Feed the kept events to the history and forget them."""
        if self.batches:
            events = self.table().to_pandas().merge(self._topics, on="item_id", how="left")
            self.history.update(events)
            self.batches = []
