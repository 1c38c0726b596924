"""The event schema: one row per impression (an item shown at a position of a slate), with its outcome.

This is the contract between the producers of events (the simulator, the feed service) and their
consumers (training, evaluation, experiments). Columns are listed with their DuckDB type; the
Arrow/pandas dtypes follow from them. ``event_id`` is assigned by the store, strictly increasing in
insertion order, and is the watermark that incremental training reads "events since X" by.

Runs: every impression belongs to a run (``run_id``, a row of :data:`RUN_COLUMNS`). Ids are global in
a store: a producer writes run-local ``user_id``/``session_id``/``slate_id`` and the store adds the
run's offsets (``user_offset``, ``session_offset``, ``slate_offset``: one more than the largest id
stored when the run began), so two runs never share a slate, session or (run-local) user.
"""

from __future__ import annotations

from typing import Final

#: Impression columns in table order: name -> (DuckDB type, meaning).
IMPRESSION_COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "event_id": ("BIGINT", "assigned by the store; strictly increasing in insertion order (the watermark)"),
    "run_id": ("BIGINT", "assigned by the store: the run that wrote the row (see the runs table)"),
    "ts": ("DOUBLE", "event time, seconds since the run's epoch (simulated or wall-clock)"),
    "day": ("INTEGER", "day index of the run (0-based)"),
    "user_id": ("BIGINT", "user id; run-local ids are offset by the run's user_offset (unique per store)"),
    "session_id": ("BIGINT", "session id; the producer's run-local id + the run's session_offset"),
    "slate_id": ("BIGINT", "slate id; run-local id + the run's slate_offset; a session has 20-item slates"),
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

#: Columns a producer supplies (the store assigns ``event_id`` and ``run_id``).
PRODUCER_COLUMNS: Final[tuple[str, ...]] = tuple(
    c for c in IMPRESSION_COLUMNS if c not in ("event_id", "run_id")
)

#: Columns of stores written before runs existed (no ``run_id``); read as one complete legacy run 0.
LEGACY_IMPRESSION_COLUMNS: Final[tuple[str, ...]] = tuple(c for c in IMPRESSION_COLUMNS if c != "run_id")

#: Run statuses: ``running`` until the producer marks the end; a killed process leaves it ``running``.
RUN_STATUSES: Final[tuple[str, ...]] = ("running", "complete", "failed")

#: Runs table columns in order: name -> (DuckDB type, meaning). Only these may be NULL: seed, policy,
#: command, note, ended_at, reason.
RUN_COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "run_id": ("BIGINT", "run id, 0, 1, 2, ... in order of begin"),
    "status": ("VARCHAR", "running | complete | failed; readers default to complete runs"),
    "config_hash": ("VARCHAR", "hash of the producer's settings (with the seed, the identity of a re-run)"),
    "seed": ("BIGINT", "random seed of the run (NULL if none)"),
    "policy": ("VARCHAR", "policy, or comma-separated arms, that produced the run"),
    "command": ("VARCHAR", "what wrote the run (e.g. 'simulate', 'run', 'append')"),
    "note": ("VARCHAR", "free text"),
    "started_at": ("TIMESTAMP", "UTC time the run began"),
    "ended_at": ("TIMESTAMP", "UTC time it was marked complete or failed (NULL while running)"),
    "reason": ("VARCHAR", "why it failed (NULL otherwise)"),
    "user_offset": ("BIGINT", "added to the producer's user ids (0 when users are shared across runs)"),
    "session_offset": ("BIGINT", "added to the producer's session ids"),
    "slate_offset": ("BIGINT", "added to the producer's slate ids"),
}

#: Runs columns that may hold NULL.
RUN_NULLABLE: Final[frozenset[str]] = frozenset({"seed", "policy", "command", "note", "ended_at", "reason"})

#: Slates table (off-policy evaluation logs), one row per slate of an exploring logging policy: the
#: candidates it chose from and, per position, the probabilities OPE needs (the impressions table keeps
#: the conditional pick probability in ``propensity``). Optional: stores written before it get an empty
#: table when next opened for writing; only policies with ``logs_slates`` write it.
SLATE_COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "run_id": ("BIGINT", "assigned by the store: the run that wrote the slate"),
    "slate_id": ("BIGINT", "slate id, as in the impressions (run-local id + the run's slate_offset)"),
    "model_version": ("VARCHAR", "version of the model (or name of the base policy) that scored it"),
    "candidates": ("BIGINT[]", "item ids the policy ranked (retrieval order), K per slate"),
    "marginal_propensity": ("DOUBLE[]", "per position: P(logger shows this item at this position)"),
    "cascade_propensity": ("DOUBLE[]", "per position: P(logger shows this slate's prefix down to here)"),
}

#: Columns a producer supplies for the slates table (the store assigns ``run_id``).
SLATE_PRODUCER_COLUMNS: Final[tuple[str, ...]] = tuple(c for c in SLATE_COLUMNS if c != "run_id")

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
