"""Fuzz the config loader: any bytes, YAML-ish text, JSON or nested mapping gives a config or a
one-line-per-problem ConfigError with bounded lines — never another exception (issue 9)."""

from __future__ import annotations

import json
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intentrank.config import (
    IntentRankConfig,
    config_from_dict,
    load_config,
    parse_config_text,
    source_of,
)
from intentrank.errors import ConfigError

#: Examples per test; raise for a longer hunt, e.g. ``FUZZ_EXAMPLES=5000 pytest tests/test_config_fuzz.py``.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "100")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

#: Real section and field names, so generated mappings reach deep validation, not only "extra key".
KEYS = [
    "seed", "simulator", "users", "days", "slate_size", "candidates", "batch_users", "experiment",
    "logging_policy", "log_users", "ranker", "features", "dense", "categorical", "name", "column",
    "buckets", "mitigation", "methods", "method", "heuristic", "l", "h", "shallow_tower", "clickbait",
    "model_dir", "resources", "memory_budget_gib", "max_days", "store", "path", "x",
]  # fmt: skip
#: Fragments of YAML syntax, including what a hostile file uses (anchors, aliases, tags, merges).
TOKENS = [
    *(k + ":" for k in KEYS), "\n", "  ", "- ", "[", "]", "{", "}", ",", "&a ", "*a", "<<: ", "!!str ",
    "!!python/object:os.system ", "!!binary ", "!!set ", "? ", "|", ">", "'", '"', "#", "---", "...",
    "0", "-1", "1e999", "2021-13-45", "0x", "null", "~", "true", "nan", ".inf", "%YAML 1.1", "\t", "\x00",
    "é", "\ufeff",
]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=10)), inner, max_size=4),
    ),
    max_leaves=10,
)
mappings = st.dictionaries(st.sampled_from(KEYS), values, max_size=5)
dotted = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(".".join)
yamlish = st.lists(st.sampled_from(TOKENS), max_size=40).map("".join)


def _ok_or_config_error(parse: Any) -> None:
    try:
        cfg = parse()
    except ConfigError as err:  # the only allowed failure ...
        lines = str(err).splitlines()
        assert lines and all(0 < len(line) <= 1_000 for line in lines), lines  # ... with bounded lines
        return
    assert isinstance(cfg, IntentRankConfig | dict)


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes(raw: bytes) -> None:
    _ok_or_config_error(lambda: config_from_dict(parse_config_text(raw, "f.yaml")))
    _ok_or_config_error(lambda: config_from_dict(parse_config_text(raw, "f.json", json_format=True)))


@FUZZ
@given(yamlish)
def test_yaml_like_text(text: str) -> None:
    _ok_or_config_error(lambda: config_from_dict(parse_config_text(text.encode(), "f.yaml")))


@FUZZ
@given(mappings)
def test_nested_mappings_as_yaml_json_and_dicts(data: dict[str, Any]) -> None:
    _ok_or_config_error(lambda: config_from_dict(data))
    raw = json.dumps(data).encode()  # JSON is YAML too (NaN/Infinity included)
    _ok_or_config_error(lambda: config_from_dict(parse_config_text(raw, "f.json", json_format=True)))
    _ok_or_config_error(lambda: config_from_dict(parse_config_text(raw, "f.yaml")))


@FUZZ
@given(st.lists(st.tuples(dotted, values), max_size=4))
def test_flag_overrides(flags: list[tuple[str, Any]]) -> None:
    overrides = [(key, value, f"--{key}") for key, value in flags]
    _ok_or_config_error(lambda: load_config(None, overrides))
    try:
        cfg = load_config(None, overrides)
    except ConfigError:
        return
    for key, value, flag in overrides:
        if value is not None:
            source = source_of(cfg, key)
            assert source.endswith(" (command line)") and flag in source, (key, source)


def test_fuzz_strategies_reach_valid_configs_too() -> None:
    """The generators are not only noise: a plain generated mapping can be a valid config."""
    assert isinstance(config_from_dict({"seed": 3, "simulator": {"users": 5}}), IntentRankConfig)
