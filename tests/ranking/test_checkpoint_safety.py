"""Damaged ranker checkpoints give one DataError naming the file (never torch's advice to disable
``weights_only``); ``check_resume_compatible`` refuses another architecture, naming the fields."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from intentrank.errors import ConfigError, DataError
from intentrank.ranking.checkpoint import check_resume_compatible, load_checkpoint, save_checkpoint
from intentrank.ranking.config import FeatureSpecConfig, RankerConfig, ShallowTowerConfig
from intentrank.ranking.models.multitask import MultiTaskRanker


def tiny_config() -> RankerConfig:
    cfg = RankerConfig()
    cats = [c.model_copy(update={"buckets": min(c.buckets, 97)}) for c in cfg.features.categorical]
    return cfg.model_copy(
        update={
            "features": cfg.features.model_copy(update={"categorical": cats, "embedding_dim": 4}),
            "model": cfg.model.model_copy(update={"mlp_hidden": [8], "tower_hidden": [4]}),
        }
    )


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "m", MultiTaskRanker(tiny_config()))


def _error(d: Path, name: str) -> str:
    with pytest.raises(DataError) as info:
        load_checkpoint(d)
    msg = str(info.value)
    assert name in msg and "\n" not in msg and "weights_only" not in msg and "pickle" not in msg.lower(), msg
    return msg


def test_intact_round_trip(ckpt: Path) -> None:
    model = load_checkpoint(ckpt, tiny_config())
    assert model.config.features == tiny_config().features


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "the file is empty"),
        (os.urandom(3000), "not a readable PyTorch state dict"),
        (b"\x80\x04\x95" + os.urandom(100), "not a readable PyTorch state dict"),  # pickle-looking junk
    ],
)
def test_damaged_weights(ckpt: Path, data: bytes, why: str) -> None:
    (ckpt / "model.pt").write_bytes(data)
    assert why in _error(ckpt, "model.pt")


def test_truncated_weights(ckpt: Path) -> None:
    full = (ckpt / "model.pt").read_bytes()
    (ckpt / "model.pt").write_bytes(full[: len(full) // 3])
    assert "corrupt or truncated" in _error(ckpt, "model.pt")


def test_weights_of_another_kind(ckpt: Path) -> None:
    torch.save([torch.zeros(3)], ckpt / "model.pt")
    assert "holds a list, not a state dict" in _error(ckpt, "model.pt")
    torch.save({"nope": torch.zeros(3)}, ckpt / "model.pt")
    assert "do not fit the stored config" in _error(ckpt, "model.pt")


@pytest.mark.parametrize("name", ["ranker_config.json", "feature_spec.json"])
@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "the file is empty"),
        (b'{"ndcg_k": "\xff\xfe"}', "not valid JSON/UTF-8"),
        (b"\xff\xfe\x00{", "not valid JSON/UTF-8"),
        (b"[1, 2]", "Input should be an object"),
        (b'{"features": 3}', "features"),
    ],
)
def test_damaged_json(ckpt: Path, name: str, data: bytes, why: str) -> None:
    (ckpt / name).write_bytes(data)
    msg = _error(ckpt, name)
    assert why in msg, msg


def test_resume_refuses_another_architecture(ckpt: Path) -> None:
    cfg = tiny_config()
    check_resume_compatible(ckpt, cfg)  # same architecture
    check_resume_compatible(ckpt, cfg.model_copy(update={"train": cfg.train.model_copy(update={"lr": 0.1})}))
    other = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(update={"mlp_hidden": [16, 8], "backbone": "mmoe"}),
            "shallow_tower": ShallowTowerConfig(),
            "features": cfg.features.model_copy(update={"embedding_dim": 8}),
        }
    )
    with pytest.raises(ConfigError) as info:
        check_resume_compatible(ckpt, other)
    msg = str(info.value)
    for field in (
        "ranker.model.mlp_hidden: checkpoint [8] vs config [16, 8]",
        "ranker.model.backbone",
        "ranker.shallow_tower: checkpoint None",
        "ranker.features.embedding_dim: checkpoint 4 vs config 8",
    ):
        assert field in msg, msg
    with pytest.raises(DataError, match="nothing to resume"):
        check_resume_compatible(ckpt.parent / "none", cfg)
    (ckpt / "ranker_config.json").write_text(json.dumps({"model": {"backbone": "x"}}))
    with pytest.raises(DataError, match=r"ranker_config\.json: invalid checkpoint config: model\.backbone"):
        check_resume_compatible(ckpt, cfg)


def test_feature_spec_mismatch_still_named(ckpt: Path) -> None:
    spec = FeatureSpecConfig.model_validate_json((ckpt / "feature_spec.json").read_text())
    (ckpt / "feature_spec.json").write_text(spec.model_copy(update={"embedding_dim": 5}).model_dump_json())
    assert "disagrees" in _error(ckpt, "feature_spec.json")
