"""The event schema: one row per impression (an item shown at a position of a slate), with its outcome.

This is the contract between the producers of events (the simulator, the feed service) and their
consumers (training, evaluation, experiments). Columns are listed with their DuckDB type; the
Arrow/pandas dtypes follow from them. ``event_id`` is assigned by the store, strictly increasing in
insertion order, and is the watermark that incremental training reads "events since X" by.
"""

from __future__ import annotations

from typing import Final

#: Impression columns in table order: name -> (DuckDB type, meaning).
IMPRESSION_COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "event_id": ("BIGINT", "assigned by the store; strictly increasing in insertion order (the watermark)"),
    "ts": ("DOUBLE", "event time, seconds since the run's epoch (simulated or wall-clock)"),
    "day": ("INTEGER", "day index of the run (0-based)"),
    "user_id": ("BIGINT", "user id"),
    "session_id": ("BIGINT", "session id, unique within a run"),
    "slate_id": ("BIGINT", "slate id, unique within a run; a session has one or more 20-item slates"),
    "slate_index": ("SMALLINT", "0-based index of the slate within its session (how far the user scrolled)"),
    "position": ("SMALLINT", "0-based position of the item within its slate (0..slate_size-1)"),
    "item_id": ("BIGINT", "item id (catalogue)"),
    "policy": ("VARCHAR", "name of the policy (arm) that chose the slate"),
    "propensity": ("DOUBLE", "P(logging policy shows this item here); 1.0 if deterministic"),
    "click": ("BOOLEAN", "the user clicked"),
    "dwell_s": ("DOUBLE", "seconds spent on the item after the click (0 without a click)"),
    "bounce": ("BOOLEAN", "clicked and left at once (a short click); implies click"),
    "conversion": ("BOOLEAN", "clicked and converted (sign-up / add-to-cart); implies click"),
}

#: Columns a producer supplies (the store assigns ``event_id``).
PRODUCER_COLUMNS: Final[tuple[str, ...]] = tuple(c for c in IMPRESSION_COLUMNS if c != "event_id")

#: Item catalogue columns a store may also hold, so training can join item features.
ITEM_COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "item_id": ("BIGINT", "item id"),
    "title": ("VARCHAR", "headline"),
    "topic": ("VARCHAR", "topic label"),
    "source": ("VARCHAR", "publisher / outlet"),
    "publish_ts": ("DOUBLE", "publish time, seconds since the run's epoch"),
    "length": ("INTEGER", "title length in words"),
    "clickbait_score": ("DOUBLE", "the scorer's clickbait score c in [0, 1]"),
}
