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
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from intentrank.errors import DataError
from intentrank.ranking.config import FeatureSpecConfig, RankerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker

WEIGHTS, CONFIG, SPEC, METRICS = "model.pt", "ranker_config.json", "feature_spec.json", "metrics.json"


def _spec_diff(a: FeatureSpecConfig, b: FeatureSpecConfig) -> list[str]:
    da, db = a.model_dump(), b.model_dump()
    out = []
    for key in ("categorical", "dense", "text"):
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


def load_checkpoint(directory: str | Path, config: RankerConfig | None = None) -> MultiTaskRanker:
    """The ranker stored in ``directory``; with ``config``, refuse a checkpoint of another feature spec.

    The returned model uses the checkpoint's own config (architecture and spec), except that training
    settings (``train``, ``labels``, ``formula``) come from ``config`` when given.
    """
    d = Path(directory)
    for name in (WEIGHTS, CONFIG, SPEC):
        if not (d / name).is_file():
            raise DataError(f"{d}: not a ranker checkpoint (missing {name})")
    try:
        saved = RankerConfig.model_validate_json((d / CONFIG).read_text())
        spec = FeatureSpecConfig.model_validate_json((d / SPEC).read_text())
    except ValidationError as err:
        raise DataError(f"{d}: checkpoint config is invalid: {err.errors()[0]['msg']}") from None
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
    try:
        state = torch.load(d / WEIGHTS, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except (RuntimeError, OSError, EOFError, KeyError) as err:
        first = str(err).strip().splitlines()[0][:300]
        raise DataError(
            f"{d}: weights in {WEIGHTS} do not fit the stored config/feature spec ({first})"
        ) from None
    model.eval()
    return model
