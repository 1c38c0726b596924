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
        description="The DuckDB event store `intentrank train` reads when --events is not given "
        "(commands that write events always need an explicit --out). "
        "Export/import Parquet with EventStore.export_parquet / import_parquet.",
    )
