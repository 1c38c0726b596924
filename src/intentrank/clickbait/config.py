"""Typed configuration of the clickbait part (a section of the one intentrank config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ClickbaitConfig(BaseModel):
    """Settings of the clickbait part."""

    model_config = ConfigDict(extra="forbid")
