"""The one typed configuration of intentrank, loaded from one YAML (or JSON) file.

Each part owns its section (``intentrank.<part>.config``); this module only composes them, so it
sits above the parts and is imported by the CLI and the service, never by the parts themselves.
Unknown keys are errors, and every invalid value is reported with its dotted field path and the
layer it came from: the file, a command-line flag, or the defaults.

Loading is safe against careless and hostile files: at most :data:`MAX_CONFIG_BYTES`, strict UTF-8,
duplicate keys rejected (with the line), YAML aliases refused (no "billion laughs"), and error
messages show values cut to :data:`MAX_SHOWN_CHARS` characters, never an expanded structure.
"""

from __future__ import annotations

import json
import reprlib
import weakref
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from intentrank.clickbait.config import MODEL_FILE, ClickbaitConfig
from intentrank.errors import ConfigError
from intentrank.experiments.config import ExperimentConfig, TunerConfig
from intentrank.mitigation.config import HeuristicMethod, MitigationConfig
from intentrank.ranking.config import RankerConfig
from intentrank.service.config import ServiceConfig
from intentrank.simulator.config import SimulatorConfig
from intentrank.store.config import StoreConfig

#: Largest config file read (a config is a few kB; this bounds memory and parse time).
MAX_CONFIG_BYTES = 1 << 20
#: Deepest nesting of a config file (the real sections nest 5 levels).
MAX_DEPTH = 32
#: Longest value shown in an error message (longer ones end in "…").
MAX_SHOWN_CHARS = 80
#: Source name of settings nobody set.
DEFAULTS = "defaults"

#: ``(dotted key, value, flag)``: a command-line override; ``value`` None means "flag not given".
Override = tuple[str, Any, str]


class ResourcesConfig(BaseModel):
    """Limits checked before a run allocates or writes anything (``intentrank.simulator.resources``)."""

    model_config = ConfigDict(extra="forbid")

    memory_budget_gib: float | None = Field(
        None,
        gt=0,
        description="Refuse runs whose estimated peak memory exceeds this many GiB "
        "(None = 8 GiB or 80% of physical memory, whichever is smaller).",
    )
    max_days: int = Field(3650, ge=1, description="Most simulated days a run may ask for (10 years).")


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
    tuner: TunerConfig = Field(default_factory=TunerConfig)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)


# -- showing values -------------------------------------------------------------------------------
_REPR = reprlib.Repr()  # (keyword arguments need Python 3.12)
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring = _REPR.maxother = MAX_SHOWN_CHARS


def shorten(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """``text`` cut to ``limit`` characters, ending in "…" when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show_value(value: Any) -> str:
    """A bounded repr of ``value`` for error messages (nested structures elided, at most 80 chars)."""
    if isinstance(value, str | bytes):
        return shorten(repr(value[: MAX_SHOWN_CHARS + 1]))
    return shorten(_REPR.repr(value))


def _dotted(loc: Sequence[Any]) -> str:
    return ".".join(shorten(str(p), 40) for p in loc) or "<root>"


# -- where each setting came from -------------------------------------------------------------------
@dataclass
class _Layers:
    """The layers a config was merged from, to name the source of a setting."""

    file_data: Any = None
    file_name: str | None = None
    override_data: Any = None
    flags: dict[str, str] = field(default_factory=dict)

    def source_of(self, loc: Sequence[Any]) -> str:
        """``--flag (command line)``, the file name, both (a check over several fields), or ``defaults``."""
        o_depth, o_covers = _reach(self.override_data, loc)
        f_depth, f_covers = _reach(self.file_data, loc)
        if o_covers:
            return self._flag_for(loc[:o_depth])
        if f_covers:
            return self.file_name or "config"
        o_full, f_full = o_depth == len(loc) > 0, f_depth == len(loc) > 0
        if o_full and f_full:  # both hold this section (a check over several of its fields): name both
            return f"{self.file_name}, {self._flag_for(loc)}"
        if o_full:
            return self._flag_for(loc)
        if f_full:
            return self.file_name or "config"
        return DEFAULTS

    def _flag_for(self, loc: Sequence[Any]) -> str:
        prefix = ".".join(str(p) for p in loc)
        flags = [f for k, f in self.flags.items() if k == prefix or k.startswith(prefix + ".")]
        if not flags:
            flags = [f for k, f in self.flags.items() if prefix.startswith(k + ".")]
        return f"{', '.join(dict.fromkeys(flags)) or 'override'} (command line)"


def _reach(data: Any, loc: Sequence[Any]) -> tuple[int, bool]:
    """``(depth, covers)``: how many leading parts of ``loc`` this layer holds, and whether it holds a
    value (a scalar, or a list: merging replaces lists whole) at or above ``loc``, i.e. set it.

    A part missing from a mapping is skipped when the next part is present (pydantic puts a union's
    tag into locations, e.g. ``mitigation.methods.0.heuristic.l``).
    """
    if data is None:
        return 0, False
    depth, node, i = 0, data, 0
    while True:
        if not isinstance(node, Mapping):
            return depth, True
        if i >= len(loc):
            return depth, False
        part = loc[i]
        if part in node:
            node, i = node[part], i + 1
            depth = i
        elif i + 1 < len(loc) and loc[i + 1] in node:
            i += 1
        else:
            return depth, False


_SOURCES: dict[int, _Layers] = {}


def _remember(cfg: IntentRankConfig, layers: _Layers) -> None:
    _SOURCES[id(cfg)] = layers
    weakref.finalize(cfg, _SOURCES.pop, id(cfg), None)


def source_of(cfg: IntentRankConfig, key: str | Sequence[Any]) -> str:
    """Where setting ``key`` (dotted, e.g. ``simulator.users``) of a loaded config came from."""
    layers = _SOURCES.get(id(cfg))
    loc = tuple(key.split(".")) if isinstance(key, str) else tuple(key)
    return layers.source_of(loc) if layers is not None else DEFAULTS


def problem(cfg: IntentRankConfig, key: str, message: str) -> str:
    """One error line ``source: key: message`` for setting ``key`` of ``cfg``."""
    return f"{source_of(cfg, key)}: {key}: {message}"


def format_validation_error(err: ValidationError, source: str | _Layers = "config") -> str:
    """One line per problem: ``source: field.path: message (got value)``; values shown bounded."""
    lines = []
    for e in err.errors():
        src = source.source_of(e["loc"]) if isinstance(source, _Layers) else source
        got = e.get("input")
        shown = "" if isinstance(got, Mapping) else f" (got {show_value(got)})"
        lines.append(f"{src}: {_dotted(e['loc'])}: {shorten(e['msg'], 300)}{shown}")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str = "config") -> IntentRankConfig:
    """Validate a mapping into an :class:`IntentRankConfig`, raising :class:`ConfigError` on bad values."""
    return _validate(data, _Layers(file_data=data, file_name=source))


def _validate(data: dict[str, Any], layers: _Layers) -> IntentRankConfig:
    try:
        cfg = IntentRankConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, layers)) from None
    _remember(cfg, layers)
    return cfg


# -- reading files --------------------------------------------------------------------------------
class _RefusedError(Exception):
    """Valid YAML that a config file may not contain, at ``mark``."""

    def __init__(self, message: str, mark: yaml.Mark) -> None:
        super().__init__(message)
        self.message, self.line = message, mark.line + 1


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (no alias expansion bomb), merge keys, duplicate keys and nesting
    deeper than :data:`MAX_DEPTH` (no recursion blow-up); errors carry the line."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise _RefusedError("aliases (*name) are not allowed in a config file", mark)
        if self.depth >= MAX_DEPTH:
            raise _RefusedError(f"nested deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise _RefusedError("merge keys (<<) are not allowed in a config file", key_node.start_mark)
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # unhashable: the base constructor reports it
            if duplicate:
                raise _RefusedError(f"duplicate key {show_value(key)}", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


class _DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKeyError(f"duplicate key {show_value(k)}")
        out[k] = v
    return out


def _describe(err: Exception) -> str:
    """A parser error in one short line (PyYAML's own message spans lines and quotes the text)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        m = err.problem_mark
        text = f"line {m.line + 1}, column {m.column + 1}: {err.problem}"
        if err.context:
            text += f" ({err.context})"
    else:
        text = str(err)
    return shorten(" ".join(text.split()), 300)


def parse_config_text(raw: bytes, name: str, json_format: bool = False) -> dict[str, Any]:
    """The mapping in a config file's bytes; any problem raises a one-line :class:`ConfigError`."""
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{name}: larger than {MAX_CONFIG_BYTES:,} bytes; a config file is a few kB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{name}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})"
        ) from None
    try:
        if json_format:
            loaded = json.loads(text, object_pairs_hook=_no_duplicates)
        else:
            loaded = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except _RefusedError as err:
        raise ConfigError(f"{name}: line {err.line}: {err.message}") from None
    except RecursionError:
        raise ConfigError(f"{name}: nested too deeply") from None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as err:
        what = "JSON" if json_format else "YAML"
        raise ConfigError(f"{name}: not valid {what}: {_describe(err)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"{name}: the top level must be a mapping, got {type(loaded).__name__}")
    return loaded


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The mapping in config file ``path`` (JSON if it ends in ``.json``, else YAML), bounded in size."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file not found: {p}")
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory, not a config file")
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{p}: cannot read ({err.strerror or err})") from None
    return parse_config_text(raw, str(p), json_format=p.suffix.lower() == ".json")


def _nest(overrides: Sequence[Override]) -> tuple[dict[str, Any], dict[str, str]]:
    nested: dict[str, Any] = {}
    flags: dict[str, str] = {}
    for key, value, flag in overrides:
        if value is None:
            continue
        *parents, last = key.split(".")
        node = nested
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}  # a later, deeper flag wins over an earlier scalar one
            node = node[part]
        node[last] = value
        flags[key] = flag
    return nested, flags


def load_config(
    path: str | Path | None = None,
    overrides: Mapping[str, Any] | Sequence[Override] | None = None,
    override_source: Mapping[str, str] | None = None,
) -> IntentRankConfig:
    """Load the config file (YAML or JSON); ``None`` gives the embedded defaults.

    ``overrides`` (CLI flags) go over the file: either a nested mapping (``{"simulator": {"users": 5}}``,
    with ``override_source`` naming the flag of each dotted key, ``{"simulator.users": "--users"}``) or
    a list of ``(dotted key, value, flag)`` where a ``None`` value is skipped (the flag was not given).
    Errors name the source of each bad value: ``--users (command line)``, the file, or ``defaults``.
    """
    layers = _Layers()
    data: dict[str, Any] = {}
    if path is not None:
        data = read_config_file(path)
        layers.file_data, layers.file_name = data, str(path)
    if overrides:
        if isinstance(overrides, Mapping):
            nested, flags = dict(overrides), dict(override_source or {})
        else:
            nested, flags = _nest(overrides)
        layers.override_data, layers.flags = nested, flags
        data = _deep_merge(data, nested)
    return _validate(data, layers)


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


# -- references: names, paths and columns the config points at --------------------------------------
_KINDS = {"BOOLEAN": "bool", "VARCHAR": "str", "DOUBLE": "float", "FLOAT": "float", "REAL": "float"}


_NUMERIC = ("int", "float", "bool")


def _kind(duckdb_type: str) -> str:
    t = duckdb_type.upper()
    return _KINDS.get(t, "int" if "INT" in t else "other")


def validate_references(
    cfg: IntentRankConfig, policies: Collection[str], columns: Mapping[str, str]
) -> list[str]:
    """Problems with what ``cfg`` refers to, one ``source: key: message`` line each (empty = fine).

    ``policies``: policy names a run can build by name (the registry's); ``columns``: column name →
    DuckDB type of every column an event frame can hold (impressions, items, derived). Checked: the
    logging policy, ``clickbait.model_dir``, each ranker feature's source column and its type, and the
    features named by mitigation methods (they become dense features of the ranker).
    """
    out: list[str] = []

    def add(key: str, message: str) -> None:
        out.append(problem(cfg, key, message))

    name = cfg.experiment.logging_policy
    if name not in policies:
        known_policies = ", ".join(sorted(policies))
        add(
            "experiment.logging_policy",
            f"unknown policy {show_value(name)} (or one not buildable by name alone); use: {known_policies}",
        )
    model_dir = cfg.clickbait.model_dir
    if model_dir is not None:
        shown = shorten(str(model_dir))
        if not model_dir.is_dir():
            add("clickbait.model_dir", f"no such directory: {shown}")
        elif not (model_dir / MODEL_FILE).is_file():
            add("clickbait.model_dir", f"{shown} has no {MODEL_FILE} (not a saved clickbait model)")
    known = ", ".join(sorted(columns))
    spec = cfg.ranker.features
    for group, feats in (("categorical", spec.categorical), ("dense", spec.dense)):
        for i, f in enumerate(feats):
            key = f"ranker.features.{group}.{i}." + ("column" if f.column else "name")
            if f.source not in columns:
                add(key, f"no event column {show_value(f.source)}; columns: {known}")
                continue
            kind = _kind(columns[f.source])
            if group == "dense":
                ok, need = kind in _NUMERIC, "numeric"
            elif getattr(f, "hashed", True):
                ok, need = kind in ("int", "str", "bool"), "integer or string ids (hashed)"
            else:
                ok, need = kind in ("int", "bool"), "integers (hashed: false)"
            if not ok:
                add(key, f"column {f.source!r} is {columns[f.source]}; feature {f.name!r} needs {need}")
    for i, t in enumerate(spec.text):
        key = f"ranker.features.text.{i}." + ("column" if t.column else "name")
        if t.source not in columns:
            add(key, f"no event column {show_value(t.source)}; columns: {known}")
        elif _kind(columns[t.source]) != "str":
            add(key, f"column {t.source!r} is {columns[t.source]}; text feature {t.name!r} needs strings")
    dense = {f.name for f in spec.dense}
    categorical = {f.name for f in spec.categorical}
    for i, m in enumerate(cfg.mitigation.methods):
        many = hasattr(m, "features")
        for j, feat in enumerate(getattr(m, "features", None) or [getattr(m, "feature", None)]):
            if feat is None or feat in dense:
                continue
            key = f"mitigation.methods.{i}.features.{j}" if many else f"mitigation.methods.{i}.feature"
            if feat in categorical:
                add(key, f"{feat!r} is a categorical feature; {m.method} needs a dense one")
            elif feat not in columns:
                add(key, f"{show_value(feat)} is neither a dense feature nor an event column ({known})")
            elif _kind(columns[feat]) not in _NUMERIC:
                add(key, f"column {feat!r} is {columns[feat]}, not numeric")
    return out
