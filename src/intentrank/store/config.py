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
        description="Event store location: a DuckDB file, or a Parquet file/directory when it ends in "
        "'.parquet' (write-only export format used by `intentrank simulate --out`).",
    )
    flush_rows: int = Field(
        2_000_000,
        ge=1_000,
        description="Producers hand events to the store in batches of about this many rows "
        "(one committed transaction per batch; bounds the producer's memory).",
    )
