"""Typed configuration of the store part (a section of the one intentrank config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StoreConfig(BaseModel):
    """Settings of the store part."""

    model_config = ConfigDict(extra="forbid")
