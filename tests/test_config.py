"""The one config file: defaults, loading, and errors that name the field."""

from __future__ import annotations

import itertools
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.config import MAX_CONFIG_BYTES, IntentRankConfig, load_config, source_of
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


# -- safe loading (issue 9) ------------------------------------------------------------------------
def _write(tmp_path: Path, text: str | bytes, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def alias_bomb(levels: int = 9) -> str:
    """A "billion laughs" YAML: each level lists the previous one 9 times (9**levels leaves)."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in itertools.pairwise("abcdefghijklmnop"[: levels + 1]):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def test_duplicate_yaml_key_is_named_with_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "seed: 1\nsimulator:\n  days: 3\n  users: 5\n  days: 4\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: line 5: duplicate key 'days'"):
        load_config(path)


def test_duplicate_json_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, '{"seed": 1, "simulator": {}, "seed": 2}', "c.json")
    with pytest.raises(ConfigError, match=r"c\.json: not valid JSON: duplicate key 'seed'"):
        load_config(path)


def test_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    text = alias_bomb()
    assert len(text) < 700  # the size of the 613-byte bomb (9**9 leaves expanded)
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"line 2: aliases \(\*name\) are not allowed") as err:
        load_config(_write(tmp_path, text))
    seconds, peak = time.perf_counter() - t0, tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 2.0 and peak < 20 * 2**20, (seconds, peak)
    assert "lol" not in str(err.value)


def test_a_single_alias_is_refused_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="aliases"):
        load_config(_write(tmp_path, "base: &b 3\nseed: *b\n"))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("<<: {seed: 1}\n", r"line 1: merge keys \(<<\) are not allowed"),
        ("[" * 5000, r"line 1: nested deeper than 32 levels"),
        ("seed: !!python/object:os.system x\n", "not valid YAML: line 1, column 7: could not determine"),
        ("seed: 2021-13-45\n", "not valid YAML: month must be in 1..12"),
        ("seed: 1\x00\n", "not valid YAML"),
    ],
)
def test_hostile_yaml_is_a_config_error(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(_write(tmp_path, text))


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = _write(tmp_path, "# " + "x" * MAX_CONFIG_BYTES + "\nseed: 1\n")
    with pytest.raises(ConfigError, match=r"larger than 1,048,576 bytes"):
        load_config(path)


def test_non_utf8_names_the_byte_and_offset(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.yaml: not UTF-8 text \(byte 0xff at offset 6\)"):
        load_config(_write(tmp_path, b"seed: \xff\n"))


def test_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_long_values_are_cut_in_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, f"seed: {'x' * 10_000}\nsimulator:\n  users: [{', '.join(['1'] * 5000)}]\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert len(lines) == 2 and all(len(line) < 250 for line in lines), lines
    assert "…" in lines[0] and "seed" in lines[0] and "simulator.users" in lines[1]


def test_huge_unknown_key_is_cut_in_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path, f"{'k' * 5000}: 1\n"))
    assert len(str(err.value)) < 300


# -- the source of a bad value ------------------------------------------------------------------------
def test_bad_flag_value_names_the_flag() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [("experiment.ab_users", 5, "--users"), ("seed", None, "--seed")])
    assert str(err.value).startswith("--users (command line): experiment.ab_users: ")


def test_bad_file_value_names_the_file_even_with_flags(tmp_path: Path) -> None:
    path = _write(tmp_path, "simulator:\n  days: 0\n")
    with pytest.raises(ConfigError) as err:
        load_config(path, [("simulator.users", 10, "--users")])
    assert str(err.value).startswith(f"{path}: simulator.days: ")


def test_flag_over_a_good_file_value_is_blamed_on_the_flag(tmp_path: Path) -> None:
    path = _write(tmp_path, "simulator:\n  users: 10\n")
    with pytest.raises(ConfigError, match=r"^--users \(command line\): simulator\.users: "):
        load_config(path, [("simulator.users", 0, "--users")])


def test_nested_overrides_keep_working_and_can_name_their_flags() -> None:
    with pytest.raises(ConfigError, match=r"^override \(command line\): seed: "):
        load_config(None, {"seed": -1})
    with pytest.raises(ConfigError, match=r"^--seed \(command line\): seed: "):
        load_config(None, {"seed": -1}, override_source={"seed": "--seed"})


def test_check_over_fields_of_both_layers_names_both(tmp_path: Path) -> None:
    path = _write(tmp_path, "simulator:\n  candidates: 10\n")
    with pytest.raises(ConfigError, match=r"^.*c\.yaml, --slate \(command line\): simulator: .*candidates"):
        load_config(path, [("simulator.slate_size", 50, "--slate")])


def test_method_fields_inside_a_list_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "mitigation:\n  methods:\n    - {method: heuristic, l: 0.9, h: 0.5}\n")
    with pytest.raises(ConfigError, match=r"^.*c\.yaml: mitigation\.methods\.0"):
        load_config(path)


def test_unset_settings_come_from_the_defaults(tmp_path: Path) -> None:
    cfg = load_config(_write(tmp_path, "seed: 3\n"), [("simulator.users", 7, "--users")])
    assert source_of(cfg, "seed") == str(tmp_path / "c.yaml")
    assert source_of(cfg, "simulator.users") == "--users (command line)"
    assert source_of(cfg, "simulator.days") == "defaults"
    assert source_of(IntentRankConfig(), "seed") == "defaults"
