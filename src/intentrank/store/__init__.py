"""The event store: an append-only impression log in runs (DuckDB by default, Parquet for exchange)."""

from intentrank.store.event_store import (
    IMPRESSIONS_ARROW_SCHEMA,
    ITEMS_ARROW_SCHEMA,
    EventData,
    EventStore,
    RunExistsError,
    RunHandle,
    arrow_schema,
    config_hash,
    read_events,
)
from intentrank.store.files import IncompleteRunsWarning, Skipped
from intentrank.store.schema import IMPRESSION_COLUMNS, ITEM_COLUMNS, PRODUCER_COLUMNS, RUN_COLUMNS

__all__ = [
    "IMPRESSIONS_ARROW_SCHEMA",
    "IMPRESSION_COLUMNS",
    "ITEMS_ARROW_SCHEMA",
    "ITEM_COLUMNS",
    "PRODUCER_COLUMNS",
    "RUN_COLUMNS",
    "EventData",
    "EventStore",
    "IncompleteRunsWarning",
    "RunExistsError",
    "RunHandle",
    "Skipped",
    "arrow_schema",
    "config_hash",
    "read_events",
]
