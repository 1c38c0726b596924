"""``intentrank simulate``: JSON KPIs, DuckDB and Parquet output, compare table, clear errors."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.ranking.events import load_events
from intentrank.store import IMPRESSION_COLUMNS, EventStore, IncompleteRunsWarning

runner = CliRunner()


@pytest.fixture(autouse=True)
def _small_catalogue(monkeypatch: pytest.MonkeyPatch, small_catalogue) -> None:
    """The CLI builds the full scored catalogue; tests swap in the small synthetic one."""
    import intentrank.simulator.catalogue as catalogue

    monkeypatch.setattr(catalogue, "build_catalogue", lambda **kw: small_catalogue)


def test_simulate_to_duckdb_prints_kpis(tmp_path: Path) -> None:
    out = tmp_path / "ev.duckdb"
    args = [
        "simulate",
        "--policy",
        "ctr_oracle",
        "--users",
        "200",
        "--days",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    kpis = summary["kpis"]
    assert summary["policy"] == "ctr_oracle" and kpis["users"] == 200
    assert {
        "ctr",
        "bounce_rate",
        "clicks_per_user",
        "time_spent_s_per_user",
        "conversions_per_user",
        "impressions_heavy_per_user",
        "return_rate_per_user",
    } <= set(kpis)
    with EventStore(out) as store:
        assert store.count() == kpis["total_impressions"] == summary["watermark"] + 1
        assert len(store.read_items()) == 3000
    # the same command again is refused (no duplicate rows); --append adds a second run
    res2 = runner.invoke(app, args)
    assert res2.exit_code == 2 and "already holds complete run(s) [0]" in res2.output
    with EventStore(out) as store:
        assert store.count() == kpis["total_impressions"]
    res3 = runner.invoke(app, [*args, "--append"])
    assert res3.exit_code == 0, res3.output
    appended = json.loads(res3.stdout)
    assert appended["first_event_id"] == summary["watermark"] + 1 and appended["run_id"] == 1


def test_simulate_to_parquet(tmp_path: Path) -> None:
    out = tmp_path / "ev.parquet"
    res = runner.invoke(
        app, ["simulate", "--policy", "random", "--users", "100", "--days", "1", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.column_names == list(IMPRESSION_COLUMNS) and set(table.column("run_id").to_pylist()) == {0}
    assert table.column("event_id").to_pylist() == list(range(len(table)))
    assert (tmp_path / "ev.items.parquet").is_file()


def test_compare_prints_table_with_cis() -> None:
    res = runner.invoke(
        app,
        ["simulate", "compare", "--policies", "intent_oracle,ctr_oracle", "--users", "600", "--days", "2"],
    )
    assert res.exit_code == 0, res.output
    assert "ctr_oracle vs intent_oracle" in res.stdout and "95% CI" in res.stdout and "SRM p=" in res.stdout
    res = runner.invoke(
        app,
        [
            "simulate",
            "compare",
            "--policies",
            "intent_oracle,random",
            "--users",
            "300",
            "--days",
            "1",
            "--json",
        ],
    )
    payload = json.loads(res.stdout)
    rows = {r["metric"]: r for r in payload["comparisons"]["random"]}
    assert {"ctr", "conversions", "time_spent_s", "bounce_rate"} <= set(rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "--policy", "nope", "--users", "10"], "unknown policy 'nope'"),
        (["simulate", "--users", "0"], "simulator.users"),
        (["simulate", "--days", "0"], "simulator.days"),
        (["simulate", "compare", "--policies", "random"], "--policies"),
    ],
)
def test_user_errors_exit_2_with_a_message(args: list[str], message: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert message in res.output


SIM = ["simulate", "--policy", "ctr_oracle", "--users", "120", "--days", "2", "--seed", "5"]


def test_rerun_append_replace_namespaces_ids(tmp_path: Path) -> None:
    out = tmp_path / "ev.duckdb"
    assert runner.invoke(app, [*SIM, "--out", str(out)]).exit_code == 0
    assert runner.invoke(app, [*SIM, "--out", str(out)]).exit_code == 2
    assert runner.invoke(app, [*SIM, "--out", str(out), "--append"]).exit_code == 0
    with EventStore(out) as store:
        one, two = (store.read_impressions(runs=[r]) for r in (0, 1))
        assert len(one) == len(two) and store.count() == 2 * len(one)
        for col in ("slate_id", "session_id", "user_id"):
            assert not set(one[col]) & set(two[col]), col
        # same seed, same events: only the ids differ, by the run's offsets
        np.testing.assert_array_equal(two["click"], one["click"])
    res = runner.invoke(app, [*SIM, "--out", str(out), "--replace"])
    assert res.exit_code == 0, res.output
    with EventStore(out) as store:
        runs = store.runs()
        assert runs["run_id"].tolist() == [2] and store.count() == len(one)
    res = runner.invoke(app, [*SIM, "--out", str(out), "--append", "--replace"])
    assert res.exit_code == 2 and "exclude each other" in res.output


def test_parquet_out_is_refused_when_it_exists_and_replaced_atomically(tmp_path: Path) -> None:
    out = tmp_path / "ev.parquet"
    assert runner.invoke(app, [*SIM, "--out", str(out)]).exit_code == 0
    before = out.read_bytes()
    res = runner.invoke(app, [*SIM, "--days", "1", "--out", str(out)])
    assert res.exit_code == 2 and "--replace" in res.output and out.read_bytes() == before
    res = runner.invoke(app, [*SIM, "--days", "1", "--out", str(out), "--append"])
    assert res.exit_code == 2 and "Parquet file holds one run" in res.output
    res = runner.invoke(app, [*SIM, "--days", "1", "--out", str(out), "--replace"])
    assert res.exit_code == 0, res.output
    assert pq.read_table(out).num_rows < pq.ParquetFile(io.BytesIO(before)).metadata.num_rows
    assert not list(tmp_path.glob(".*tmp*"))


def test_parquet_hand_off_to_train(tmp_path: Path) -> None:
    out = tmp_path / "ev.parquet"
    assert runner.invoke(app, [*SIM, "--out", str(out)]).exit_code == 0
    events = load_events(out)  # what `train --events ev.parquet` reads: items joined from ev.items.parquet
    assert events["clickbait_score"].notna().all() and len(events) == pq.read_table(out).num_rows
    model = tmp_path / "model"
    train = ["train", "--events", str(out), "--out", str(model), "--epochs", "1", "--threads", "1"]
    res = runner.invoke(app, train)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["model_dir"] == str(model)


def test_foreign_duckdb_out_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "app.duckdb"
    with duckdb.connect(str(out)) as con:
        con.execute("CREATE TABLE orders (id INTEGER)")
    res = runner.invoke(app, [*SIM, "--out", str(out)])
    assert res.exit_code == 2 and "not an intentrank event store" in res.output
    with duckdb.connect(str(out), read_only=True) as con:
        assert [r[0] for r in con.execute("SHOW TABLES").fetchall()] == ["orders"]
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(b"\0" * 10_000)
    res = runner.invoke(app, [*SIM, "--out", str(damaged)])
    assert res.exit_code == 2 and "cannot open event store" in res.output


def test_disk_full_and_ctrl_c_give_one_line_and_a_failed_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from intentrank.simulator import sinks

    def disk_full(self, batch) -> None:
        def work(con) -> None:
            con.execute("COMMIT")  # as when COMMIT itself fails: no transaction left to roll back
            raise duckdb.IOException("Could not write file: No space left on device")

        self.run.store._transaction(work, "append impressions")

    out = tmp_path / "ev.duckdb"
    monkeypatch.setattr(sinks.StoreSink, "__call__", disk_full)
    res = runner.invoke(app, [*SIM, "--out", str(out)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines()[-1].startswith("error: ") and "No space left" in res.output
    assert "Traceback" not in res.output and "cannot rollback" not in res.output

    def interrupt(self, batch) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sinks.StoreSink, "__call__", interrupt)
    res = runner.invoke(app, [*SIM, "--out", str(out)])
    assert res.exit_code == 2 and "error: interrupted; run 1" in res.output
    with EventStore(out, read_only=True) as store:
        runs = store.runs()
        assert runs["status"].tolist() == ["failed", "failed"] and "No space left" in runs.at[0, "reason"]


_KILLED_CLI = """
import sys
from intentrank.simulator import catalogue, sinks
catalogue.build_catalogue = lambda **kw: catalogue.synthetic_catalogue(3000, seed=0)
for cls in (sinks.StoreSink, sinks.ParquetSink):
    def call(self, batch, _orig=cls.__call__):
        _orig(self, batch)
        print("batch", flush=True)
    cls.__call__ = call
from intentrank.cli.main import app
app(sys.argv[1:])
"""


@pytest.mark.parametrize("name", ["ev.duckdb", "ev.parquet"])
def test_sigkill_during_simulate(tmp_path: Path, name: str) -> None:
    """kill -9 mid-run: the store reports the run incomplete and training skips it; the old Parquet stays."""
    out = tmp_path / name
    cfg = tmp_path / "small.yaml"
    cfg.write_text("simulator:\n  flush_rows: 1000\n", encoding="utf-8")
    base = ["simulate", "--policy", "random", "--users", "100", "--seed", "1", "--out", str(out)]
    assert runner.invoke(app, [*base, "--days", "1"]).exit_code == 0  # a complete first run / file
    before = out.read_bytes() if name.endswith(".parquet") else None
    extra = ["--replace"] if before is not None else ["--append"]
    argv = [*base, "--days", "400", "--config", str(cfg), *extra]
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_CLI, *argv], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for _ in range(3):
            assert proc.stdout.readline() == "batch\n"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    if before is not None:
        assert out.read_bytes() == before
        return
    with EventStore(out, read_only=True) as store:
        runs = store.runs()
        assert runs["status"].tolist() == ["complete", "running"] and runs.at[1, "events"] >= 3000
        complete = store.count()
    with pytest.warns(IncompleteRunsWarning):
        assert len(load_events(out)) == complete


def test_train_events_default_to_the_configured_store_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["train", "--out", "m"])
    assert res.exit_code == 2 and "event source not found: events.duckdb" in res.output
    cfg = tmp_path / "c.yaml"
    cfg.write_text("store:\n  path: elsewhere.duckdb\n", encoding="utf-8")
    res = runner.invoke(app, ["train", "--out", "m", "--config", str(cfg)])
    assert res.exit_code == 2 and "event source not found: elsewhere.duckdb" in res.output
