"""Training events: the store's reader (DuckDB store, Parquet file or directory, EventStore) or a DataFrame.

Reading belongs to the store (:func:`intentrank.store.read_events`: run selection, watermark windows, the
Parquet layout); this module joins impressions with the item table on ``item_id`` (so item features
such as the clickbait score, topic and source are available) and adds the derived columns (hour, item
age).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from intentrank.errors import DataError
from intentrank.ranking.features import derive_event_columns
from intentrank.store import read_events

EventSource = str | Path | pd.DataFrame | Any


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
    runs: str | list[int] = "complete",
    shard: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Impressions (optionally ``since < event_id ≤ until``) joined with item features.

    ``source``: an :class:`~intentrank.store.EventStore`, the path of a DuckDB store, a Parquet
    directory or file (layout in docs/store.md), or an impressions DataFrame (with ``items`` or already
    joined). ``runs``: ``"complete"`` (default: events of killed or failed runs are skipped, with a
    warning), ``"all"`` or a list of run ids. ``shard=(rank, world)``: only the users with
    ``user_id % world == rank`` (a data-parallel worker's share, read by the store). Raises
    :class:`DataError` if there are no events.
    """
    if isinstance(source, pd.DataFrame):
        imp, what = source, "event frame"
        if shard is not None:
            imp = imp[imp["user_id"] % shard[1] == shard[0]]
        if "event_id" in imp.columns and (since_event_id is not None or until_event_id is not None):
            m = pd.Series(True, index=imp.index)
            if since_event_id is not None:
                m &= imp["event_id"] > since_event_id
            if until_event_id is not None:
                m &= imp["event_id"] <= until_event_id
            imp = imp[m]
    else:
        what = str(getattr(source, "path", source))
        data = read_events(source, since_event_id, until_event_id, runs, shard=shard)
        imp = data.impressions
        items = data.items if items is None else items
    if len(imp) == 0:
        raise DataError(f"{what}: the event set is empty (no impressions to train or evaluate on)")
    return derive_event_columns(_join(imp.reset_index(drop=True), items, what))
