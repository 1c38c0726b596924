"""``intentrank simulate``: JSON KPIs, DuckDB and Parquet output, compare table, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.store import IMPRESSION_COLUMNS, EventStore

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
    # appending a second run continues the watermark
    res2 = runner.invoke(app, args)
    assert json.loads(res2.stdout)["first_event_id"] == summary["watermark"] + 1


def test_simulate_to_parquet(tmp_path: Path) -> None:
    out = tmp_path / "ev.parquet"
    res = runner.invoke(
        app, ["simulate", "--policy", "random", "--users", "100", "--days", "1", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.column_names == list(IMPRESSION_COLUMNS)
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
