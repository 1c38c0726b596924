"""The one config file: defaults, loading, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.config import IntentRankConfig, load_config
from intentrank.errors import ConfigError


def test_defaults_load_without_a_file() -> None:
    cfg = load_config(None)
    assert isinstance(cfg, IntentRankConfig)
    assert cfg.seed == 0


def test_round_trip_of_the_dumped_defaults(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(IntentRankConfig().model_dump(mode="json")))
    assert load_config(path) == IntentRankConfig()


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\nnot_a_section: {}\n")
    with pytest.raises(ConfigError, match="not_a_section"):
        load_config(path)


def test_invalid_value_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seed: -3\n")
    with pytest.raises(ConfigError, match=r"seed: .*greater than or equal to 0"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [("- a\n- b\n", "top level must be a mapping"), ("seed: [unclosed\n", "not valid YAML")],
)
def test_malformed_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config("/nonexistent/intentrank.yaml")


def test_overrides_merge_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seed: 1\n")
    assert load_config(path, overrides={"seed": 7}).seed == 7


def test_cli_check_reports_bad_field_with_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("seed: -1\n")
    result = CliRunner().invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert "seed" in result.output


def test_cli_show_prints_loadable_yaml() -> None:
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0
    assert yaml.safe_load(result.output)["seed"] == 0


def test_shipped_default_config_file_matches_the_defaults() -> None:
    path = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    hint = "regenerate it: intentrank config show > configs/default.yaml"
    assert load_config(path) == IntentRankConfig(), hint
