"""Checkpoints: a directory holding the weights, the full ranker config and the feature spec.

``model.pt`` (state dict, loaded with ``weights_only=True``), ``ranker_config.json``,
``feature_spec.json`` (the features section again, so a reader can check compatibility without
torch) and ``metrics.json`` (optional). Loading under a different feature spec is refused with the
differences named: the embedding rows and input layout would silently mean something else.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from intentrank.clickbait.files import read_json_model
from intentrank.errors import ConfigError, DataError
from intentrank.ranking.config import FeatureSpecConfig, RankerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker

WEIGHTS, CONFIG, SPEC, METRICS = "model.pt", "ranker_config.json", "feature_spec.json", "metrics.json"


def _spec_diff(a: FeatureSpecConfig, b: FeatureSpecConfig) -> list[str]:
    da, db = a.model_dump(), b.model_dump()
    out = []
    for key in ("categorical", "dense"):
        fa = {f["name"]: f for f in da[key]}
        fb = {f["name"]: f for f in db[key]}
        for n in sorted(set(fa) - set(fb)):
            out.append(f"{key} feature {n!r} only in the checkpoint")
        for n in sorted(set(fb) - set(fa)):
            out.append(f"{key} feature {n!r} only in the requested spec")
        for n in sorted(set(fa) & set(fb)):
            if fa[n] != fb[n]:
                out.append(f"{key} feature {n!r}: checkpoint {fa[n]} vs requested {fb[n]}")
        if [f["name"] for f in da[key]] != [f["name"] for f in db[key]] and set(fa) == set(fb):
            out.append(f"{key} features in a different order")
    if da["embedding_dim"] != db["embedding_dim"]:
        out.append(f"embedding_dim: checkpoint {da['embedding_dim']} vs requested {db['embedding_dim']}")
    return out


def save_checkpoint(
    directory: str | Path, model: MultiTaskRanker, metrics: dict[str, Any] | None = None
) -> Path:
    """Write the checkpoint (each file atomically: written aside, then renamed)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)

    def write(name: str, save: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{name}.")
        os.close(fd)
        save(tmp)
        os.replace(tmp, d / name)

    cfg = model.config
    write(WEIGHTS, lambda p: torch.save(model.state_dict(), p))
    write(CONFIG, lambda p: Path(p).write_text(cfg.model_dump_json(indent=2)))
    write(SPEC, lambda p: Path(p).write_text(cfg.features.model_dump_json(indent=2)))
    if metrics is not None:
        write(METRICS, lambda p: Path(p).write_text(json.dumps(metrics, indent=2, default=float)))
    return d


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, loaded with ``weights_only=True`` (no code runs from the file).

    Any failure is one DataError naming the file; torch's own message is not passed on, since for a
    foreign file it advises ``weights_only=False``, which would allow code execution.
    """
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, zip errors, ...
        why = "the file is empty" if path.exists() and path.stat().st_size == 0 else type(err).__name__
        raise DataError(f"{path}: not a readable PyTorch state dict, corrupt or truncated ({why})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise DataError(f"{path}: holds a {type(state).__name__}, not a state dict of named tensors")
    return state


def _config_diff(a: Any, b: Any, prefix: str) -> list[str]:
    """Dotted paths where two ``model_dump()`` trees differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _config_diff(a.get(k), b.get(k), f"{prefix}.{k}")
        return out
    return [] if a == b else [f"{prefix}: checkpoint {a!r} vs config {b!r}"]


def check_resume_compatible(directory: str | Path, config: RankerConfig) -> None:
    """Refuse to resume training of the checkpoint in ``directory`` under ``config`` if the architecture
    differs (``model``, ``features``, ``shallow_tower``): resuming would otherwise keep the checkpoint's
    architecture silently and ignore the config's. Names each differing field; training settings
    (``train``, ``labels``, ``formula``) may change.
    """
    d = Path(directory)
    if not (d / CONFIG).is_file():
        raise DataError(f"{d}: nothing to resume (missing {CONFIG})")
    saved = read_json_model(d / CONFIG, RankerConfig, "invalid checkpoint config")
    diff = []
    for section in ("model", "features", "shallow_tower"):
        a, b = getattr(saved, section), getattr(config, section)
        da = a.model_dump() if a is not None else None
        db = b.model_dump() if b is not None else None
        diff += _config_diff(da, db, f"ranker.{section}")
    if diff:
        more = f"; and {len(diff) - 8} more" if len(diff) > 8 else ""
        raise ConfigError(
            f"--resume: {d} was trained with another architecture than the config gives: "
            + "; ".join(diff[:8]) + more + ". Resume with the checkpoint's config or train afresh."
        )


def load_checkpoint(directory: str | Path, config: RankerConfig | None = None) -> MultiTaskRanker:
    """The ranker stored in ``directory``; with ``config``, refuse a checkpoint of another feature spec.

    The returned model uses the checkpoint's own config (architecture and spec), except that training
    settings (``train``, ``labels``, ``formula``) come from ``config`` when given.
    """
    d = Path(directory)
    for name in (WEIGHTS, CONFIG, SPEC):
        if not (d / name).is_file():
            raise DataError(f"{d}: not a ranker checkpoint (missing {name})")
    saved = read_json_model(d / CONFIG, RankerConfig, "invalid checkpoint config")
    spec = read_json_model(d / SPEC, FeatureSpecConfig, "invalid checkpoint feature spec")
    if spec != saved.features:
        raise DataError(
            f"{d}: {SPEC} disagrees with {CONFIG}: " + "; ".join(_spec_diff(saved.features, spec))
        )
    if config is not None:
        if config.features != saved.features:
            diff = "; ".join(_spec_diff(saved.features, config.features))
            raise DataError(f"{d}: checkpoint was trained with another feature spec: {diff}")
        saved = saved.model_copy(
            update={"train": config.train, "labels": config.labels, "formula": config.formula}
        )
    model = MultiTaskRanker(saved)
    state = _read_state_dict(d / WEIGHTS)
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise DataError(
            f"{d}: weights in {WEIGHTS} do not fit the stored config/feature spec ({first})"
        ) from None
    model.eval()
    return model
