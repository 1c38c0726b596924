"""``config check`` accepts exactly what ``run`` accepts: reference checks (policies, paths, feature
columns, mitigation features) and the up-front resource checks, run by both before any work (issue 9)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from intentrank.cli.config_cmd import check_references, event_columns
from intentrank.cli.main import app
from intentrank.clickbait.config import MODEL_FILE
from intentrank.config import IntentRankConfig, load_config, validate_references
from intentrank.errors import ConfigError
from intentrank.ranking.config import DERIVED_COLUMNS, HISTORY_COLUMNS
from intentrank.ranking.features import derive_event_columns
from intentrank.ranking.history import history_features_for_events
from intentrank.store.schema import IMPRESSION_COLUMNS, ITEM_COLUMNS
from tests.test_config import alias_bomb

runner = CliRunner()
POLICIES = {"random", "intent_oracle", "explore"}


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return validate_references(load_config(path), POLICIES, event_columns())


def test_the_defaults_refer_to_nothing_missing() -> None:
    assert validate_references(IntentRankConfig(), POLICIES, event_columns()) == []
    check_references(IntentRankConfig())  # with the real policy names


def test_derived_columns_constant_matches_the_encoder() -> None:
    frame = pd.DataFrame({"ts": [3600.0 * 30], "publish_ts": [0.0]})
    derived = derive_event_columns(frame)
    assert set(derived.columns) - set(frame.columns) == set(DERIVED_COLUMNS)
    for name, (duckdb_type, _) in DERIVED_COLUMNS.items():
        is_int = np.issubdtype(derived[name].dtype, np.integer)
        assert is_int == ("INT" in duckdb_type), (name, derived[name].dtype)


def test_event_columns_are_the_schema_derived_and_history_columns() -> None:
    expected = set(IMPRESSION_COLUMNS) | set(ITEM_COLUMNS) | set(DERIVED_COLUMNS) | set(HISTORY_COLUMNS)
    assert set(event_columns()) == expected


def test_history_constant_matches_the_features() -> None:
    frame = pd.DataFrame({"user_id": [1, 1], "item_id": [3, 3], "ts": [0.0, 9e4], "topic": ["a", "a"],
                          "click": [True, False], "source": ["s", "s"],
                          "bounce": [False, False], "dwell_s": [40.0, 0.0]})  # fmt: skip
    hist = history_features_for_events(frame)
    assert list(hist.columns) == list(HISTORY_COLUMNS)
    expected = [1.0, 1.0, 1.0, 1.0, 2 / 11, 25.0, 1.0, 1.0, (1 + 5 * 2 / 11) / 6, 1.0, 2 / 21, 2 / 3, 0.5 / 3,
                (np.log1p(40.0) + 6.0) / 3, (1 + 10 * 0.5 * 2 / 11) / 11,
                1.0, (1 + 5 * 2 / 11) / 6]  # fmt: skip
    np.testing.assert_allclose(hist.iloc[1].to_numpy(), expected, rtol=1e-12)


def test_unknown_logging_policy_names_file_and_known_policies(tmp_path: Path) -> None:
    (line,) = _problems(tmp_path, "experiment:\n  logging_policy: nope\n")
    assert line.startswith(f"{tmp_path / 'c.yaml'}: experiment.logging_policy: unknown policy 'nope'")
    assert "intent_oracle, random" in line


def test_clickbait_model_dir_must_hold_a_model(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    (line,) = _problems(tmp_path, f"clickbait:\n  model_dir: {missing}\n")
    assert "clickbait.model_dir: no such directory" in line
    empty = tmp_path / "empty"
    empty.mkdir()
    (line,) = _problems(tmp_path, f"clickbait:\n  model_dir: {empty}\n")
    assert f"has no {MODEL_FILE}" in line
    (empty / MODEL_FILE).write_text("{}")
    assert _problems(tmp_path, f"clickbait:\n  model_dir: {empty}\n") == []


@pytest.mark.parametrize(
    ("features", "match"),
    [
        ("dense: [{name: clickbait_scoer}]", r"dense\.0\.name: no event column 'clickbait_scoer'"),
        ("dense: [{name: t, column: title}]", r"dense\.0\.column: column 'title' is VARCHAR; .*numeric"),
        ("categorical: [{name: ts, buckets: 9}]", r"categorical\.0\.name: column 'ts' is DOUBLE; .*ids"),
        ("categorical: [{name: topic, buckets: 9, hashed: false}]", r"'topic' is VARCHAR; .*integers"),
        ("categorical: [{name: u, column: usr_id, buckets: 9}]", r"categorical\.0\.column: no event column"),
    ],
)
def test_feature_columns_must_exist_with_a_usable_type(tmp_path: Path, features: str, match: str) -> None:
    lines = _problems(tmp_path, f"ranker:\n  features:\n    {features}\n")
    assert any(re.search(match, line) for line in lines), lines


@pytest.mark.parametrize(
    ("method", "match"),
    [
        ("{method: aux_loss, feature: topic}", r"methods\.0\.feature: 'topic' is a categorical feature"),
        ("{method: downweight, feature: cb}", r"methods\.0\.feature: 'cb' is neither a dense feature"),
        ("{method: plain_feature, feature: title}", r"methods\.0\.feature: column 'title' is VARCHAR"),
        ("{method: shallow_tower, features: [clickbait_score, nope]}", r"methods\.0\.features\.1: 'nope'"),
    ],
)
def test_mitigation_features_must_exist(tmp_path: Path, method: str, match: str) -> None:
    lines = _problems(tmp_path, f"mitigation:\n  methods: [{method}]\n")
    assert len(lines) == 1 and re.search(match, lines[0]), lines


def test_mitigation_may_use_a_numeric_event_column(tmp_path: Path) -> None:
    assert _problems(tmp_path, "mitigation:\n  methods: [{method: adversarial, feature: propensity}]\n") == []


# -- the CLI: config check and run refuse the same configs, before writing anything ---------------------
BAD = {
    "policy": ("experiment:\n  logging_policy: nope\n", "experiment.logging_policy: unknown policy 'nope'"),
    "ranker_policy": ("experiment:\n  logging_policy: ranker\n", "unknown policy 'ranker'"),
    "model_dir": ("clickbait:\n  model_dir: /nonexistent/model\n", "clickbait.model_dir: no such directory"),
    "column": ("ranker:\n  features:\n    dense: [{name: nope}]\n", "no event column 'nope'"),
    "mitigation": ("mitigation:\n  methods: [{method: aux_loss, feature: nope}]\n", "methods.0.feature"),
    "duplicate": ("seed: 1\nseed: 2\n", "line 2: duplicate key 'seed'"),
    "alias_bomb": (alias_bomb(), "line 2: aliases (*name) are not allowed in a config file"),
    "log_users": ("experiment:\n  log_users: 100000000\n", "experiment.log_users: 100,000,000 users need"),
    "ab_days": ("experiment:\n  ab_days: 100000\n", "experiment.ab_days: 100,000 days is more than"),
    "budget": ("resources:\n  memory_budget_gib: 0.1\n", "over the budget of 0.1 GiB"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_config_check_and_run_refuse_the_same_config(tmp_path: Path, case: str) -> None:
    text, expected = BAD[case]
    path = tmp_path / "c.yaml"
    path.write_text(text)
    checked = runner.invoke(app, ["config", "check", str(path)])
    out = tmp_path / "run"
    ran = runner.invoke(app, ["run", "--config", str(path), "--out", str(out)])
    assert checked.exit_code == ran.exit_code == 2, (checked.output, ran.output)
    assert expected in checked.output and expected in ran.output
    assert checked.output.splitlines()[0] == ran.output.splitlines()[0]
    assert not out.exists()  # refused before anything was written


def test_config_check_of_an_alias_bomb_is_quick_and_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb())
    proc = subprocess.run(
        [sys.executable, "-m", "intentrank.cli.main", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {path}: line 2: aliases (*name) are not allowed in a config file"


def test_config_check_accepts_the_shipped_config() -> None:
    path = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    res = runner.invoke(app, ["config", "check", str(path)])
    assert res.exit_code == 0 and res.output.strip().endswith(": ok")


def test_config_check_refuses_simulator_days_over_the_cap(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("simulator:\n  days: 1000000000\n")
    res = runner.invoke(app, ["config", "check", str(path)])
    assert res.exit_code == 2
    assert f"{path}: simulator.days: 1,000,000,000 days is more than resources.max_days (3,650)" in res.output


def test_run_flag_over_the_budget_is_blamed_on_the_flag(tmp_path: Path) -> None:
    out = tmp_path / "run"
    res = runner.invoke(app, ["run", "--users", "100000000", "--out", str(out)])
    assert res.exit_code == 2
    expected = "error: --users (command line): experiment.ab_users: 100,000,000 users need an estimated"
    assert expected in res.output
    assert not out.exists()


def test_check_references_raises_config_error() -> None:
    cfg = load_config(None, [("experiment.logging_policy", "nope", "--policy")])
    with pytest.raises(ConfigError, match=r"^--policy \(command line\): experiment\.logging_policy"):
        check_references(cfg)
