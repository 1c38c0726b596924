"""Typed configuration of the store part (a section of the one intentrank config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class StoreConfig(BaseModel):
    """Settings of the event store."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(
        "events.duckdb",
        min_length=1,
        description="The DuckDB event store file (append-only impressions + items). "
        "Export/import Parquet with EventStore.export_parquet / import_parquet.",
    )
