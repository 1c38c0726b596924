"""The one typed configuration of intentrank, loaded from one YAML (or JSON) file.

Each part owns its section (``intentrank.<part>.config``); this module only composes them, so it
sits above the parts and is imported by the CLI and the service, never by the parts themselves.
Unknown keys are errors, and every invalid value is reported with its dotted field path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentrank.clickbait.config import ClickbaitConfig
from intentrank.errors import ConfigError
from intentrank.experiments.config import ExperimentConfig
from intentrank.mitigation.config import HeuristicMethod, MitigationConfig
from intentrank.ranking.config import RankerConfig
from intentrank.simulator.config import SimulatorConfig
from intentrank.store.config import StoreConfig


class IntentRankConfig(BaseModel):
    """Every setting of an intentrank run."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, description="Master random seed; every part derives its own from it.")
    clickbait: ClickbaitConfig = Field(default_factory=ClickbaitConfig)
    simulator: SimulatorConfig = Field(default_factory=SimulatorConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    ranker: RankerConfig = Field(default_factory=RankerConfig)
    mitigation: MitigationConfig = Field(
        default_factory=lambda: MitigationConfig(methods=[HeuristicMethod()]),
        description="Clickbait mitigation of the system (default: heuristic post-processing).",
    )
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig)


def format_validation_error(err: ValidationError, source: str = "config") -> str:
    """One line per problem: ``source: field.path: message (got value)``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        got = e.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: {loc}: {e['msg']}{shown}")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "config") -> IntentRankConfig:
    """Validate a mapping into an :class:`IntentRankConfig`, raising :class:`ConfigError` on bad values."""
    try:
        return IntentRankConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> IntentRankConfig:
    """Load the config file (YAML or JSON); ``None`` gives the embedded defaults.

    ``overrides`` is a nested mapping merged over the file (used by CLI flags).
    """
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            text = p.read_text(encoding="utf-8")
            loaded = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as err:
            raise ConfigError(f"{p}: not valid YAML/JSON: {err}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping, got {type(loaded).__name__}")
        data = loaded
    if overrides:
        data = _deep_merge(data, overrides)
    return config_from_dict(data, source)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out
