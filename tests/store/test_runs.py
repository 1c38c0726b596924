"""Runs in the event store: namespaced ids, re-runs refused, incomplete runs skipped, migration, bad targets.

Includes subprocess tests that SIGKILL a writer mid-way (DuckDB store and Parquet file).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from intentrank.errors import DataError
from intentrank.ranking.events import load_events
from intentrank.store import (
    IMPRESSION_COLUMNS,
    EventStore,
    IncompleteRunsWarning,
    RunExistsError,
    read_events,
)
from intentrank.store.files import AtomicParquetWriter, temp_path
from intentrank.store.schema import LEGACY_IMPRESSION_COLUMNS
from tests.store.test_event_store import events, items

ROOT = Path(__file__).resolve().parents[2]


def _write_legacy_store(path: Path, n: int) -> pd.DataFrame:
    """A store as the version before runs wrote it: no runs table, no run_id column."""
    imp = events(n).assign(event_id=np.arange(n))[list(LEGACY_IMPRESSION_COLUMNS)]
    with duckdb.connect(str(path)) as con:
        cols = ", ".join(f'"{c}" {IMPRESSION_COLUMNS[c][0]} NOT NULL' for c in LEGACY_IMPRESSION_COLUMNS)
        con.execute(f"CREATE TABLE impressions ({cols})")
        con.execute(
            "CREATE TABLE items (item_id BIGINT NOT NULL, title VARCHAR NOT NULL, topic VARCHAR NOT NULL, "
            "source VARCHAR NOT NULL, publish_ts DOUBLE NOT NULL, length INTEGER NOT NULL, "
            "clickbait_score DOUBLE NOT NULL)"
        )
        con.register("i", imp)
        con.execute("INSERT INTO impressions SELECT * FROM i")
        con.register("it", items(100))
        con.execute("INSERT INTO items SELECT * FROM it")
    return imp


def test_runs_namespace_ids_and_keep_the_watermark(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.duckdb") as store:
        with store.begin_run(config_hash="a", seed=0, policy="p") as r1:
            assert r1.append(events(40)) == (0, 39)
        with store.begin_run(config_hash="b", seed=0, policy="p") as r2:
            assert r2.append(events(40)) == (40, 79)  # the same run-local ids as run 1
        one = store.read_impressions(runs=[r1.run_id])
        two = store.read_impressions(runs=[r2.run_id])
        for col in ("slate_id", "session_id", "user_id"):
            assert not set(one[col]) & set(two[col]), col
        assert (two["slate_id"] - r2.slate_offset).tolist() == (np.arange(40) // 20).tolist()
        runs = store.runs()
        assert runs["status"].tolist() == ["complete", "complete"] and runs["events"].tolist() == [40, 40]
        assert store.read_impressions()["event_id"].tolist() == list(range(80))
        with store.begin_run(config_hash="c", shared_users=True) as r3:
            r3.append(events(20))
        assert set(store.read_impressions(runs=[r3.run_id])["user_id"]) <= set(events(20)["user_id"])


def test_rerun_is_refused_unless_append_or_replace(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.duckdb") as store:
        with store.begin_run(config_hash="h", seed=1) as run:
            run.append(events(30))
        with pytest.raises(RunExistsError, match=r"--append.*--replace"):
            store.begin_run(config_hash="h", seed=1)
        with store.begin_run(config_hash="h", seed=2) as other_seed:  # another seed is another run
            other_seed.append(events(5))
        with store.begin_run(config_hash="h", seed=1, on_existing="append") as again:
            again.append(events(30))
        assert store.count() == 65
        # replace: the old runs stay until the new one completes; a failed replacement keeps them
        replace = {"config_hash": "h", "seed": 1, "on_existing": "replace"}
        with pytest.raises(RuntimeError), store.begin_run(**replace) as bad:
            bad.append(events(10))
            raise RuntimeError("boom")
        assert store.count() == 65
        with store.begin_run(config_hash="h", seed=1, on_existing="replace") as new:
            new.append(events(7))
            assert store.count() == 65  # nothing deleted before the new run is complete
        runs = store.runs()
        assert runs.loc[runs["seed"] == 1, "run_id"].tolist() == [new.run_id]
        assert store.count() == 5 + 7 and store.count(runs="all") == 5 + 7


def test_readers_default_to_complete_runs_and_say_what_they_skipped(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.duckdb") as store:
        with store.begin_run(config_hash="ok") as ok:
            ok.append(events(20))
        with pytest.raises(ValueError), store.begin_run(config_hash="bad") as failed:
            failed.append(events(10))
            raise ValueError("producer crashed")
        running = store.begin_run(config_hash="open")
        running.append(events(5))
        runs = store.runs().set_index("run_id")
        assert runs.at[failed.run_id, "status"] == "failed"
        assert "producer crashed" in runs.at[failed.run_id, "reason"]
        assert runs.at[running.run_id, "status"] == "running"
        with pytest.warns(IncompleteRunsWarning, match=r"skipped 15 event\(s\) of 2 incomplete run"):
            got = store.read_impressions()
        assert set(got["run_id"]) == {ok.run_id} and len(got) == 20
        assert store.skipped.events == 15 and store.skipped.runs == [failed.run_id, running.run_id]
        assert len(store.read_impressions(runs="all")) == 35 and store.skipped.events == 0
        assert len(store.read_impressions(runs=[failed.run_id])) == 10
        with pytest.raises(DataError, match="no run"):
            store.read_impressions(runs=[99])
        with pytest.warns(IncompleteRunsWarning):
            assert store.read_impressions(since_event_id=10)["event_id"].tolist() == list(range(11, 20))
        with pytest.raises(DataError, match="is open"):
            store.append_impressions(events(3))
        running.complete()
        assert store.count() == 25


def test_legacy_store_reads_as_one_run_and_migrates_on_write(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    old = _write_legacy_store(path, 60)
    with EventStore(path, read_only=True) as store:
        got = store.read_impressions()
        assert list(got.columns) == list(IMPRESSION_COLUMNS) and set(got["run_id"]) == {0}
        assert store.runs()["status"].tolist() == ["complete"] and len(store.read_items()) == 100
    with duckdb.connect(str(path), read_only=True) as con:  # read-only opening did not migrate
        assert "run_id" not in [r[0] for r in con.execute("DESCRIBE impressions").fetchall()]
    with EventStore(path) as store:
        runs = store.runs()
        assert runs["run_id"].tolist() == [0] and runs["events"].tolist() == [60]
        assert runs["config_hash"].tolist() == ["legacy"]
        pd.testing.assert_series_equal(
            store.read_impressions()["slate_id"], old["slate_id"].astype("int64"), check_names=False
        )
        with store.begin_run(config_hash="new") as run:
            assert run.append(events(10)) == (60, 69)
        assert run.slate_offset == int(old["slate_id"].max()) + 1
    with duckdb.connect(str(path), read_only=True) as con:
        assert [r[0] for r in con.execute("DESCRIBE impressions").fetchall()] == list(IMPRESSION_COLUMNS)


def test_foreign_and_damaged_databases_are_refused_by_the_writer(tmp_path: Path) -> None:
    foreign = tmp_path / "app.duckdb"
    with duckdb.connect(str(foreign)) as con:
        con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
    with pytest.raises(DataError, match=r"not an intentrank event store.*customers"):
        EventStore(foreign)
    with duckdb.connect(str(foreign), read_only=True) as con:
        assert [r[0] for r in con.execute("SHOW TABLES").fetchall()] == ["customers"]

    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(DataError, match="cannot open event store"):
        EventStore(garbage)
    good = tmp_path / "good.duckdb"
    with EventStore(good) as store, store.begin_run() as run:
        run.append(events(100))
    truncated = tmp_path / "truncated.duckdb"
    truncated.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(DataError, match="cannot open event store"):
        EventStore(truncated)

    wrong = tmp_path / "wrong.duckdb"
    with EventStore(good) as store:
        store.connection.execute(f"ATTACH '{wrong}' AS w")
        store.connection.execute("CREATE TABLE w.impressions AS SELECT * EXCLUDE (dwell_s) FROM impressions")
        store.connection.execute("CREATE TABLE w.items AS SELECT * FROM items")
        store.connection.execute("CREATE TABLE w.runs AS SELECT * FROM runs")
        store.connection.execute("DETACH w")
    with pytest.raises(DataError, match="damaged event store: table 'impressions'"):
        EventStore(wrong)
    with pytest.raises(DataError, match="damaged event store"):
        EventStore(wrong, read_only=True)


def test_failed_commit_raises_the_real_error_not_a_rollback_error(tmp_path: Path) -> None:
    with EventStore(tmp_path / "e.duckdb") as store:

        def commit_then_interrupt(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("COMMIT")  # the transaction is gone, as after a failed COMMIT
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            store._transaction(commit_then_interrupt, "test")

        def disk_full(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("COMMIT")
            raise duckdb.IOException("Could not write file: No space left on device")

        with pytest.raises(DataError, match=r"cannot append impressions: .*No space left") as err:
            store._transaction(disk_full, "append impressions")
        assert "\n" not in str(err.value)
        with store.begin_run() as run:  # the connection is still usable
            assert run.append(events(3)) == (0, 2)


def test_parquet_export_import_keeps_runs_and_statuses(tmp_path: Path) -> None:
    with EventStore(tmp_path / "a.duckdb") as store:
        store.write_items(items(100))
        with store.begin_run(config_hash="x", seed=3, policy="p") as ok:
            ok.append(events(30))
        failed = store.begin_run(config_hash="y")
        failed.append(events(10))
        failed.fail("stopped")
        store.export_parquet(tmp_path / "exp")
        runs_before = store.runs()
    assert not list((tmp_path / "exp").glob(".*tmp*"))
    with pytest.warns(IncompleteRunsWarning):
        data = read_events(tmp_path / "exp")
    assert len(data.impressions) == 30 and data.skipped.runs == [failed.run_id] and len(data.items) == 100
    with EventStore.import_parquet(tmp_path / "exp", tmp_path / "b.duckdb") as copy:
        after = copy.runs()
        cols = ["run_id", "status", "config_hash", "seed", "reason", "slate_offset", "events"]
        pd.testing.assert_frame_equal(after[cols], runs_before[cols], check_dtype=False)
        assert len(copy.read_impressions(runs="all")) == 40
        with copy.begin_run(config_hash="z") as run:  # ids continue after the imported ones
            assert run.append(events(2)) == (40, 41)
            assert run.slate_offset > int(copy.read_impressions(runs="all")["slate_id"].max()) - 1


def test_parquet_layouts_file_directory_and_legacy(tmp_path: Path) -> None:
    imp = events(50).assign(event_id=np.arange(50))[list(LEGACY_IMPRESSION_COLUMNS)]
    imp.to_parquet(tmp_path / "old.parquet", index=False)  # an older version's file: no run_id, no runs
    items(100).to_parquet(tmp_path / "old.items.parquet", index=False)
    data = read_events(tmp_path / "old.parquet", since_event_id=9)
    assert len(data.impressions) == 40 and set(data.impressions["run_id"]) == {0}
    assert data.items is not None and len(data.items) == 100
    (tmp_path / "d").mkdir()
    imp.to_parquet(tmp_path / "d" / "impressions.parquet", index=False)
    assert len(read_events(tmp_path / "d").impressions) == 50
    assert read_events(tmp_path / "d" / "impressions.parquet").items is None
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no impressions Parquet"):
        read_events(tmp_path / "empty")


def test_atomic_parquet_writer_keeps_the_old_file_until_commit(tmp_path: Path) -> None:
    target = tmp_path / "x.parquet"
    events(10).to_parquet(target, index=False)
    before = target.read_bytes()
    table = pq.read_table(target)
    w = AtomicParquetWriter(target, table.schema)
    w.write(table)
    assert target.read_bytes() == before and temp_path(target).exists()
    w.abort()
    assert target.read_bytes() == before and not temp_path(target).exists()
    w = AtomicParquetWriter(target, table.schema)
    w.write(table.slice(0, 3))
    w.commit()
    assert pq.read_table(target).num_rows == 3 and not temp_path(target).exists()


_STORE_WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.store.test_event_store import events
from intentrank.store import EventStore
store = EventStore({path!r})
with store.begin_run(config_hash="done", seed=0) as run:
    run.append(events(40))
run = store.begin_run(config_hash="killed", seed=0)
i = 0
while True:
    first, last = run.append(events(500, seed=i))
    print(first, last, flush=True)
    i += 1
    time.sleep(0.05)
"""

_PARQUET_WRITER = """
import sys, time
sys.path.insert(0, {root!r})
import pyarrow as pa
from tests.store.test_event_store import events
from intentrank.simulator.sinks import ParquetSink
sink = ParquetSink({path!r})
while True:
    sink(pa.Table.from_pandas(events(20000), preserve_index=False))
    print("batch", flush=True)
    time.sleep(0.02)
"""


def _kill_after(script: str, lines: int) -> list[str]:
    """Run ``script``, SIGKILL it after it printed ``lines`` lines (acknowledged writes); its output."""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    got: list[str] = []
    try:
        assert proc.stdout is not None
        while len(got) < lines:
            line = proc.stdout.readline()
            assert line, f"writer exited early with {proc.wait()}"
            got.append(line.strip())
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return got


def test_sigkill_during_a_store_write_leaves_an_incomplete_run_that_readers_skip(tmp_path: Path) -> None:
    path = tmp_path / "e.duckdb"
    acked = _kill_after(_STORE_WRITER.format(root=str(ROOT), path=str(path)), lines=2)
    last_acked = int(acked[-1].split()[1])
    with EventStore(path, read_only=True) as store:
        runs = store.runs().set_index("run_id")
        assert runs["status"].tolist() == ["complete", "running"]  # reported as incomplete
        assert store.watermark() >= last_acked  # every acknowledged batch is there
        with pytest.warns(IncompleteRunsWarning, match="incomplete run"):
            assert len(store.read_impressions()) == 40
        assert store.skipped.runs == [1] and store.skipped.events >= 1000
    with pytest.warns(IncompleteRunsWarning):
        train = load_events(path)  # training reads complete runs only by default
    assert len(train) == 40 and set(train["run_id"]) == {0}
    with EventStore(path) as store:  # a writer can open it again and go on
        with store.begin_run(config_hash="killed", seed=0) as run:  # a killed run does not block a re-run
            run.append(events(10))
        assert store.runs()["status"].tolist() == ["complete", "running", "complete"]


def test_sigkill_during_a_parquet_write_leaves_the_old_file_intact(tmp_path: Path) -> None:
    path = tmp_path / "ev.parquet"
    events(10).to_parquet(path, index=False)
    before = path.read_bytes()
    _kill_after(_PARQUET_WRITER.format(root=str(ROOT), path=str(path)), lines=3)
    assert path.read_bytes() == before
    assert pq.read_table(path).num_rows == 10
