"""The event store: an append-only impression log (DuckDB by default, Parquet for export)."""

from intentrank.store.event_store import (
    IMPRESSIONS_ARROW_SCHEMA,
    ITEMS_ARROW_SCHEMA,
    EventStore,
    arrow_schema,
)
from intentrank.store.schema import IMPRESSION_COLUMNS, ITEM_COLUMNS, PRODUCER_COLUMNS

__all__ = [
    "IMPRESSIONS_ARROW_SCHEMA",
    "IMPRESSION_COLUMNS",
    "ITEMS_ARROW_SCHEMA",
    "ITEM_COLUMNS",
    "PRODUCER_COLUMNS",
    "EventStore",
    "arrow_schema",
]
