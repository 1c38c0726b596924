"""Partitioned Parquet export/import (hive-style day=/run_id= directories): round trip, pruning, shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intentrank.errors import DataError
from intentrank.store import EventStore, IncompleteRunsWarning, read_events
from tests.store.test_event_store import events, items

pytestmark = pytest.mark.filterwarnings("ignore::intentrank.store.IncompleteRunsWarning")


def _store(path: Path) -> EventStore:
    """A store of two complete runs over three days and one failed run."""
    store = EventStore(path)
    store.write_items(items(100))
    for seed, n in ((0, 60), (1, 45)):
        with store.begin_run(config_hash="x", seed=seed, policy="p") as run:
            ev = events(n, seed)
            ev["day"] = (np.arange(n) * 3 // n).astype(np.int32)  # days 0, 1, 2
            run.append(ev)
    failed = store.begin_run(config_hash="y")
    failed.append(events(10, 5))
    failed.fail("stopped")
    return store


def test_partitioned_round_trip_equals_the_store(tmp_path: Path) -> None:
    with _store(tmp_path / "a.duckdb") as store:
        store.export_parquet(tmp_path / "exp", partition="day,run")
        want = store.read_impressions(runs="all")
        runs_before = store.runs()
    dirs = sorted(p.relative_to(tmp_path / "exp" / "impressions").as_posix() for p in
                  (tmp_path / "exp" / "impressions").glob("day=*/run_id=*"))  # fmt: skip
    assert "day=0/run_id=0" in dirs and "day=2/run_id=1" in dirs and "day=0/run_id=2" in dirs
    got = read_events(tmp_path / "exp", runs="all").impressions
    pd.testing.assert_frame_equal(got, want, check_dtype=True)
    with pytest.warns(IncompleteRunsWarning):
        data = read_events(tmp_path / "exp")
    assert data.skipped.runs == [2] and data.skipped.events == 10 and len(data.items) == 100
    with EventStore.import_parquet(tmp_path / "exp", tmp_path / "b.duckdb") as copy:
        pd.testing.assert_frame_equal(copy.read_impressions(runs="all"), want)
        cols = ["run_id", "status", "config_hash", "seed", "reason", "slate_offset", "events"]
        pd.testing.assert_frame_equal(copy.runs()[cols], runs_before[cols], check_dtype=False)
    # partitioning by run only: the same rows
    with EventStore(tmp_path / "a.duckdb", read_only=True) as store:
        store.export_parquet(tmp_path / "by_run", partition=["run"])
    pd.testing.assert_frame_equal(read_events(tmp_path / "by_run", runs="all").impressions, want)


def test_partition_pruning_opens_only_the_asked_days(tmp_path: Path) -> None:
    with _store(tmp_path / "a.duckdb") as store:
        store.export_parquet(tmp_path / "exp", partition="day,run")
        want = store.read_impressions(days=[0, 2])
    for f in (tmp_path / "exp" / "impressions").glob("day=1/*/*.parquet"):
        f.write_bytes(b"not parquet")  # day 1 damaged: a read that opened it would fail
    got = read_events(tmp_path / "exp", days=[0, 2]).impressions
    assert set(got["day"]) == {0, 2}
    pd.testing.assert_frame_equal(got, want)
    with pytest.raises(DataError, match="cannot read the partitioned events"):
        read_events(tmp_path / "exp")


def test_user_shards_partition_the_events(tmp_path: Path) -> None:
    with _store(tmp_path / "a.duckdb") as store:
        store.export_parquet(tmp_path / "exp", partition="day")
        store.export_parquet(tmp_path / "one")
        whole = store.read_impressions()
        for source in (store, tmp_path / "exp", tmp_path / "one"):
            parts = [read_events(source, shard=(r, 3)).impressions for r in range(3)]
            assert all((p["user_id"] % 3 == r).all() for r, p in enumerate(parts))
            joined = pd.concat(parts).sort_values("event_id").reset_index(drop=True)
            pd.testing.assert_frame_equal(joined, whole)
        with pytest.raises(DataError, match="rank 3 of world 3"):
            read_events(store, shard=(3, 3))


def test_bad_paths_and_layouts_give_clear_errors(tmp_path: Path) -> None:
    with _store(tmp_path / "a.duckdb") as store:
        with pytest.raises(DataError, match="unknown key"):
            store.export_parquet(tmp_path / "exp", partition="hour")
        (tmp_path / "file").write_text("x")
        with pytest.raises(DataError, match="it is a file"):
            store.export_parquet(tmp_path / "file", partition="day")
        store.export_parquet(tmp_path / "exp", partition="day")
        with pytest.raises(DataError, match="another layout"):
            store.export_parquet(tmp_path / "exp")
    with pytest.raises(DataError, match="event source not found"):
        read_events(tmp_path / "nowhere")
    bad = tmp_path / "exp" / "impressions" / "hour=3"
    bad.mkdir()
    (bad / "x.parquet").write_bytes(b"")
    with pytest.raises(DataError, match="'hour=3' is not a partition"):
        read_events(tmp_path / "exp")
    (tmp_path / "empty" / "impressions").mkdir(parents=True)
    with pytest.raises(DataError, match="no Parquet files"):
        read_events(tmp_path / "empty")


def test_cli_store_export_and_import(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from intentrank.cli.main import app

    _store(tmp_path / "a.duckdb").close()
    r = CliRunner().invoke(
        app, ["store", "export", "--events", str(tmp_path / "a.duckdb"), "--out", str(tmp_path / "exp")]
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "exp" / "impressions" / "day=1" / "run_id=0").is_dir()
    r = CliRunner().invoke(
        app, ["store", "import", "--source", str(tmp_path / "exp"), "--out", str(tmp_path / "b.duckdb")]
    )
    assert r.exit_code == 0 and '"events": 115' in r.output, r.output
    r = CliRunner().invoke(
        app, ["store", "import", "--source", str(tmp_path / "exp"), "--out", str(tmp_path / "b.duckdb")]
    )
    assert r.exit_code == 2 and "already holds events" in r.output
    r = CliRunner().invoke(
        app, ["store", "export", "--events", str(tmp_path / "a.duckdb"), "--out", str(tmp_path / "x"),
              "--partition", "week"],
    )  # fmt: skip
    assert r.exit_code == 2 and "error: partition: unknown key" in r.output
