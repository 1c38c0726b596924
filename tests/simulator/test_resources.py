"""Up-front resource checks: the estimate bounds what the simulator allocates, and oversized runs are
refused by arithmetic alone, naming the setting, its source and the estimate (issue 9)."""

from __future__ import annotations

import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.config import IntentRankConfig, ResourcesConfig, load_config
from intentrank.errors import ConfigError
from intentrank.simulator.ab import simulate
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.resources import (
    BASE_BYTES,
    DEFAULT_BUDGET_BYTES,
    GIB,
    check_main_job,
    check_simulation,
    estimate_simulation,
    memory_budget,
)

runner = CliRunner()


@pytest.mark.parametrize("policies", [["intent_oracle"], ["random", "ctr_oracle", "intent_oracle"]])
def test_estimate_bounds_the_simulators_numpy_memory(small_catalogue, policies: list[str]) -> None:
    cfg = SimulatorConfig(users=20_000, days=2, batch_users=4_096, flush_rows=20_000)
    rows = []
    tracemalloc.start()
    try:
        simulate(policies, cfg, seed=0, catalogue=small_catalogue, sink=lambda t: rows.append(t.num_rows))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    est = estimate_simulation(cfg)
    assert sum(rows) > 0
    assert peak <= est.bytes - BASE_BYTES, (peak, est)
    assert est.bytes - BASE_BYTES <= 4 * peak, (peak, est)  # an upper bound, not a wild one


def test_estimate_grows_with_users_batch_and_buffer() -> None:
    small = estimate_simulation(SimulatorConfig(users=1_000))
    assert estimate_simulation(SimulatorConfig(users=1_000_000)).bytes > small.bytes
    assert estimate_simulation(SimulatorConfig(users=1_000, candidates=1_000)).bytes > small.bytes
    assert estimate_simulation(SimulatorConfig(users=1_000), writes_events=False).bytes < small.bytes
    assert small.max_events == 1_000 * 7 * 10 * 20


def test_budget_defaults_to_at_most_8_gib_and_physical_memory() -> None:
    budget = memory_budget(ResourcesConfig())
    physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert 0 < budget <= min(DEFAULT_BUDGET_BYTES, physical)
    assert memory_budget(ResourcesConfig(memory_budget_gib=64)) == 64 * GIB


def test_oversized_simulation_names_flag_estimate_and_budget() -> None:
    cfg = load_config(None, [("simulator.users", 100_000_000, "--users")])
    with pytest.raises(ConfigError) as err:
        check_simulation(cfg)
    msg = str(err.value)
    assert msg.startswith("--users (command line): simulator.users: 100,000,000 users need an estimated ")
    assert "GiB" in msg and "resources.memory_budget_gib, defaults" in msg


def test_a_larger_budget_lets_it_through() -> None:
    cfg = load_config(None, {"simulator": {"users": 100_000_000}, "resources": {"memory_budget_gib": 1000}})
    assert check_simulation(cfg).bytes > 8 * GIB


def test_days_are_capped() -> None:
    assert check_simulation(load_config(None, {"simulator": {"days": 3650}})).days == 3650
    with pytest.raises(ConfigError, match=r"simulator\.days: 3,651 days is more than resources\.max_days"):
        check_simulation(load_config(None, {"simulator": {"days": 3651}}))


def test_main_job_defaults_fit_and_each_phase_is_checked() -> None:
    log, ab = check_main_job(IntentRankConfig())
    assert log.users == 4_000 and ab.users == 16_000 and "training_rows" in log.parts
    with pytest.raises(ConfigError, match=r"^override \(command line\): experiment\.log_users: 100,000,000 "):
        check_main_job(load_config(None, {"experiment": {"log_users": 10**8}}))
    with pytest.raises(ConfigError, match=r"experiment\.ab_days: 4,000 days"):
        check_main_job(load_config(None, {"experiment": {"ab_days": 4_000}}))


# -- the CLI ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--users", "1000000000"], "--users (command line): simulator.users: 1,000,000,000 users need"),
        (["--users", "100000000"], "--users (command line): simulator.users: 100,000,000 users need"),
        (["--days", "1000000000"], "--days (command line): simulator.days: 1,000,000,000 days is more"),
        (["--users", "0"], "--users (command line): simulator.users: Input should be greater than or equal"),
    ],
)
def test_simulate_refuses_before_building_anything(tmp_path: Path, args: list[str], expected: str) -> None:
    out = tmp_path / "ev.duckdb"
    res = runner.invoke(app, ["simulate", *args, "--out", str(out)])
    assert res.exit_code == 2
    assert res.output.startswith(f"error: {expected}"), res.output
    assert not out.exists()


def test_simulate_compare_is_checked_too(tmp_path: Path) -> None:
    res = runner.invoke(app, ["simulate", "compare", "--users", "1000000000"])
    assert res.exit_code == 2 and "simulator.users: 1,000,000,000 users need" in res.output


def test_a_billion_users_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "intentrank.cli.main", "simulate", "--users", "1000000000"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --users (command line): simulator.users"), lines
    assert proc.stdout == ""
