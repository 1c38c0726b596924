"""The append-only DuckDB event store: ids, watermark, validation, durability, Parquet round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intentrank.errors import DataError
from intentrank.store import IMPRESSION_COLUMNS, ITEM_COLUMNS, EventStore


def events(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    click = rng.random(n) < 0.3
    bounce = click & (rng.random(n) < 0.3)
    return pd.DataFrame(
        {
            "ts": np.arange(n, dtype=float),
            "day": np.zeros(n, dtype=np.int32),
            "user_id": rng.integers(0, 9, n),
            "session_id": np.zeros(n, dtype=np.int64),
            "slate_id": np.arange(n) // 20,
            "slate_index": np.zeros(n, dtype=np.int16),
            "position": (np.arange(n) % 20).astype(np.int16),
            "item_id": rng.integers(0, 100, n),
            "policy": "p",
            "propensity": np.ones(n),
            "click": click,
            "dwell_s": np.where(click, 12.0, 0.0),
            "bounce": bounce,
            "conversion": click & ~bounce & (rng.random(n) < 0.2),
        }
    )


def items(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": np.arange(n),
            "title": [f"t{i}" for i in range(n)],
            "topic": "general",
            "source": "news-1",
            "publish_ts": -1.0,
            "length": 2,
            "clickbait_score": 0.5,
        }
    )


def test_append_assigns_increasing_ids_and_watermark(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.duckdb") as store:
        assert store.watermark() == -1
        assert store.append_impressions(events(30)) == (0, 29)
        assert store.append_impressions(events(10, 1)) == (30, 39)
        assert store.append_impressions(events(0)) == (40, 39)
        assert store.watermark() == 39
        since = store.read_impressions(since_event_id=29)
        assert list(since["event_id"]) == list(range(30, 40))
        window = store.read_impressions(since_event_id=5, until_event_id=9)
        assert list(window["event_id"]) == [6, 7, 8, 9]
        assert list(store.read_impressions().columns) == list(IMPRESSION_COLUMNS)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.drop(columns=["click"]), "missing column"),
        (lambda d: d.assign(extra=1), "unknown column"),
        (lambda d: d.assign(dwell_s=np.nan), "NaN|missing"),
        (lambda d: d.assign(user_id=1.5), "user_id"),
        (lambda d: d.assign(bounce=True, click=False), "bounce"),
        (lambda d: d.assign(propensity=0.0), "propensity"),
        (lambda d: d.assign(dwell_s=-1.0), "dwell_s"),
        (lambda d: d.assign(item_id="x"), "item_id"),
    ],
)
def test_bad_batches_are_rejected_whole(tmp_path: Path, mutate, message: str) -> None:
    with EventStore(tmp_path / "e.duckdb") as store:
        with pytest.raises(DataError, match=message):
            store.append_impressions(mutate(events(5)))
        assert store.watermark() == -1


def test_acknowledged_append_survives_a_crash(tmp_path: Path) -> None:
    """A process that appends and dies without closing loses nothing it was told was stored."""
    path = tmp_path / "e.duckdb"
    code = (
        f"import os, sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_event_store import events\n"
        "from intentrank.store import EventStore\n"
        f"s = EventStore({str(path)!r}); print(s.append_impressions(events(50)))\n"
        "sys.stdout.flush(); os._exit(0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "(0, 49)" in out.stdout
    with EventStore(path) as store:
        assert store.watermark() == 49
        assert store.count() == 50


def test_items_upsert_and_parquet_round_trip(tmp_path: Path) -> None:
    with EventStore(tmp_path / "a.duckdb") as store:
        store.append_impressions(events(40))
        store.write_items(items(5))
        store.write_items(items(3).assign(title="new"))
        got = store.read_items()
        assert list(got.columns) == list(ITEM_COLUMNS) and len(got) == 5
        assert list(got["title"]) == ["new", "new", "new", "t3", "t4"]
        store.export_parquet(tmp_path / "x")
        original = store.read_impressions()
    with EventStore.import_parquet(tmp_path / "x", tmp_path / "b.duckdb") as copy:
        pd.testing.assert_frame_equal(copy.read_impressions(), original)
        assert len(copy.read_items()) == 5
        assert copy.append_impressions(events(2)) == (40, 41)
    with pytest.raises(DataError, match="already holds events"):
        EventStore.import_parquet(tmp_path / "x", tmp_path / "b.duckdb")
    with pytest.raises(DataError, match=r"no impressions\.parquet"):
        EventStore.import_parquet(tmp_path / "nothing", tmp_path / "c.duckdb")


def test_duplicate_item_ids_and_missing_store(tmp_path: Path) -> None:
    with EventStore(tmp_path / "a.duckdb") as store, pytest.raises(DataError, match="unique"):
        store.write_items(pd.concat([items(2), items(2)]))
    with pytest.raises(DataError, match="not found"):
        EventStore(tmp_path / "missing.duckdb", read_only=True)
