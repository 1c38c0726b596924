"""A user's own catalogue and events for ``intentrank serve``: CSV or Parquet files, validated.

Catalogue (``--items FILE``), one row per item:

==================  ========  ===================================================================
column              required  meaning
==================  ========  ===================================================================
title               yes       the headline (non-empty)
topic               yes       topic label
source              yes       publisher / outlet
publish_ts          yes       publish time, seconds relative to the service's start (negative = past)
item_id             no        0..n-1 in any order (default: the row number)
length              no        title length in words (default: counted)
clickbait_score     no        0..1 (default: scored by the shipped model on load)
==================  ========  ===================================================================

Events (``--events FILE``), one row per impression, what a quick model is trained on at start:

==================  ========  ===================================================================
column              required  meaning
==================  ========  ===================================================================
user_id             yes       integer ≥ 0
item_id             yes       an item of the catalogue
click               yes       true/false (or 1/0)
ts                  no        seconds (default 0); ``day`` = ts // 86,400
slate_id            no        which impressions were shown together (default: one slate per row)
position            no        position in the slate, 0-based (default 0)
session_id          no        default: the user id
slate_index         no        how far the user had scrolled (default 0)
dwell_s             no        seconds read after a click (default 0)
bounce, conversion  no        true/false; need click (default false)
policy, propensity  no        the logging policy's name and P(shown) (default "imported", 1.0)
==================  ========  ===================================================================

Every problem is a one-line :class:`~intentrank.errors.DataError` naming the file, the column and a bad
value (the CLI prints it and exits 2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from intentrank.clickbait.config import ClickbaitConfig
from intentrank.errors import DataError
from intentrank.store.event_store import conform, validate_outcomes
from intentrank.store.schema import ITEM_COLUMNS, PRODUCER_COLUMNS

ITEM_REQUIRED = ("title", "topic", "source", "publish_ts")
EVENT_REQUIRED = ("user_id", "item_id", "click")


def read_table(path: Path, what: str = "data") -> pd.DataFrame:
    """A CSV (``.csv``) or Parquet (``.parquet``/``.pq``) file as a DataFrame; DataError when unreadable."""
    if not path.is_file():
        raise DataError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as err:
        raise DataError(f"{path}: not a readable {suffix[1:].upper()} file ({str(err)[:200]})") from None
    raise DataError(f"{path}: unknown file type {suffix!r} (use .csv or .parquet)")


def _need(df: pd.DataFrame, cols: tuple[str, ...], path: Path) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        has = ", ".join(map(str, df.columns))[:200]
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (has: {has})")


def _bools(df: pd.DataFrame, col: str, path: Path) -> None:
    s = df[col]
    if s.dtype == bool:
        return
    mapped = s.map(
        lambda v: {True: True, False: False, "1": True, "0": False, "true": True, "false": False}.get(
            v.strip().lower() if isinstance(v, str) else v
        )
    )
    bad = mapped.isna()
    if bad.any():
        raise DataError(f"{path}: column {col!r} must be true/false or 1/0, got {s[bad].iloc[0]!r}")
    df[col] = mapped.astype(bool)


def read_items(path: Path, score: bool = True, clickbait: ClickbaitConfig | None = None) -> pd.DataFrame:
    """The catalogue in ``path`` (see the module docstring), with every column of the item table; a
    missing ``clickbait_score`` is computed (``score``) by the model the ``clickbait`` config selects."""
    df = read_table(path, "items")
    _need(df, ITEM_REQUIRED, path)
    if df.empty:
        raise DataError(f"{path}: no items")
    for col in ("title", "topic", "source"):
        s = df[col]
        bad = s.isna() | (s.astype(str).str.strip() == "")
        if bad.any():
            raise DataError(f"{path}: column {col!r} is empty in row {int(np.flatnonzero(bad)[0])}")
        df[col] = s.astype(str)
    if "item_id" not in df.columns:
        df.insert(0, "item_id", np.arange(len(df), dtype=np.int64))
    ids = pd.to_numeric(df["item_id"], errors="coerce")
    if ids.isna().any() or sorted(ids.astype(np.int64)) != list(range(len(df))):
        raise DataError(f"{path}: item_id must be the numbers 0..{len(df) - 1} (each once)")
    df = df.assign(item_id=ids.astype(np.int64)).sort_values("item_id").reset_index(drop=True)
    if "length" not in df.columns:
        df["length"] = df["title"].str.split().str.len().astype(np.int32)
    if "clickbait_score" not in df.columns:
        if not score:
            raise DataError(f"{path}: missing column clickbait_score")
        from intentrank.clickbait import load_default_scorer

        scores = load_default_scorer(clickbait).score(df["title"].tolist())
        df["clickbait_score"] = np.asarray(scores, np.float64)
    cb = pd.to_numeric(df["clickbait_score"], errors="coerce")
    if cb.isna().any() or ((cb < 0) | (cb > 1)).any():
        raise DataError(f"{path}: clickbait_score must be numbers in [0, 1]")
    extra = [c for c in df.columns if c not in ITEM_COLUMNS]
    table = pa.Table.from_pandas(df.drop(columns=extra), preserve_index=False)
    return conform(table, ITEM_COLUMNS, tuple(ITEM_COLUMNS), str(path)).to_pandas()


def read_events(path: Path, n_items: int) -> pd.DataFrame:
    """The impressions in ``path`` (see the module docstring) with every producer column, checked
    against a catalogue of ``n_items`` items."""
    df = read_table(path, "events")
    _need(df, EVENT_REQUIRED, path)
    if df.empty:
        raise DataError(f"{path}: no events")
    n = len(df)
    for col in ("click", "bounce", "conversion"):
        if col in df.columns:
            _bools(df, col, path)
    for col in ("user_id", "item_id"):
        v = pd.to_numeric(df[col], errors="coerce")
        bad = v.isna() | (v < 0) | (v != np.floor(v))
        if bad.any():
            raise DataError(f"{path}: column {col!r} must be integers >= 0, got {df[col][bad].iloc[0]!r}")
        df[col] = v.astype(np.int64)
    unknown = df["item_id"] >= n_items
    if unknown.any():
        raise DataError(
            f"{path}: {int(unknown.sum())} event(s) refer to items not in the catalogue "
            f"(e.g. item_id {int(df['item_id'][unknown].iloc[0])}; the catalogue has 0..{n_items - 1})"
        )
    defaults = {
        "ts": 0.0,
        "slate_id": np.arange(n, dtype=np.int64),
        "position": 0,
        "slate_index": 0,
        "dwell_s": 0.0,
        "bounce": False,
        "conversion": False,
        "policy": "imported",
        "propensity": 1.0,
    }
    for col, value in defaults.items():
        if col not in df.columns:
            df[col] = value
    if "session_id" not in df.columns:
        df["session_id"] = df["user_id"]
    if "day" not in df.columns:
        ts = pd.to_numeric(df["ts"], errors="coerce")
        df["day"] = (ts // 86_400).fillna(0).astype(np.int32)
    extra = [c for c in df.columns if c not in PRODUCER_COLUMNS]
    table = pa.Table.from_pandas(df.drop(columns=extra)[list(PRODUCER_COLUMNS)], preserve_index=False)
    from intentrank.store.schema import IMPRESSION_COLUMNS

    checked = conform(table, IMPRESSION_COLUMNS, PRODUCER_COLUMNS, str(path))
    validate_outcomes(checked, str(path))
    return checked.to_pandas()
