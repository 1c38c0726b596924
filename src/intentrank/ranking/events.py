"""Reading training events: the store's DuckDB file, a Parquet export, a DataFrame or an EventStore.

Impressions are joined with the item table on ``item_id`` (so item features such as the clickbait
score, topic and source are available), then the derived columns (hour, item age) are added.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from intentrank.errors import DataError
from intentrank.ranking.features import derive_event_columns

EventSource = str | Path | pd.DataFrame | Any


def _sql_path(p: Path) -> str:
    return str(p).replace("'", "''")


def _join(imp: pd.DataFrame, items: pd.DataFrame | None, what: str) -> pd.DataFrame:
    if items is None or items.empty:
        return imp
    if "item_id" not in imp.columns:
        raise DataError(f"{what}: impressions have no 'item_id' column to join items on")
    if "item_id" not in items.columns:
        raise DataError(f"{what}: the item table has no 'item_id' column")
    extra = [c for c in items.columns if c == "item_id" or c not in imp.columns]
    return imp.merge(items[extra], on="item_id", how="left", validate="many_to_one")


def load_events(
    source: EventSource,
    items: pd.DataFrame | None = None,
    since_event_id: int | None = None,
    until_event_id: int | None = None,
) -> pd.DataFrame:
    """Impressions (optionally ``since < event_id ≤ until``) joined with item features.

    ``source``: path of a DuckDB store, a directory with ``impressions.parquet`` (+ ``items.parquet``),
    a Parquet file, an impressions DataFrame (with ``items`` or already joined), or an object with
    ``read_impressions``/``read_items`` (the EventStore). Raises :class:`DataError` if there are no events.
    """
    what = "events"
    if isinstance(source, pd.DataFrame):
        imp, what = source, "event frame"
        if "event_id" in imp.columns and (since_event_id is not None or until_event_id is not None):
            m = pd.Series(True, index=imp.index)
            if since_event_id is not None:
                m &= imp["event_id"] > since_event_id
            if until_event_id is not None:
                m &= imp["event_id"] <= until_event_id
            imp = imp[m]
    elif hasattr(source, "read_impressions"):
        imp = source.read_impressions(since_event_id, until_event_id)
        if items is None and hasattr(source, "read_items"):
            items = source.read_items()
    else:
        p = Path(source)
        what = str(p)
        if not p.exists():
            raise DataError(f"event source not found: {p}")
        where = []
        if since_event_id is not None:
            where.append(f"event_id > {int(since_event_id)}")
        if until_event_id is not None:
            where.append(f"event_id <= {int(until_event_id)}")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        try:
            if p.is_dir() or p.suffix == ".parquet":
                imp_file = p / "impressions.parquet" if p.is_dir() else p
                items_file = (p if p.is_dir() else p.parent) / "items.parquet"
                if not imp_file.is_file():
                    raise DataError(f"{p}: no impressions.parquet in this directory")
                imp = duckdb.sql(f"SELECT * FROM read_parquet('{_sql_path(imp_file)}'){clause}").df()
                if items is None and items_file.is_file() and items_file != imp_file:
                    items = duckdb.sql(f"SELECT * FROM read_parquet('{_sql_path(items_file)}')").df()
            else:
                with duckdb.connect(str(p), read_only=True) as con:
                    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
                    if "impressions" not in tables:
                        raise DataError(f"{p}: no 'impressions' table (tables: {sorted(tables)})")
                    imp = con.execute(f"SELECT * FROM impressions{clause} ORDER BY event_id").df()
                    if items is None and "items" in tables:
                        items = con.execute("SELECT * FROM items").df()
        except duckdb.Error as err:
            raise DataError(f"{p}: cannot read events ({err})") from None
    if len(imp) == 0:
        raise DataError(f"{what}: the event set is empty (no impressions to train or evaluate on)")
    return derive_event_columns(_join(imp.reset_index(drop=True), items, what))
