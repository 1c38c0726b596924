"""Model directories for loader and CLI tests: the shipped model's lexical member as a lexical-only model
(fast to load and score), and per-test copies of the shipped model to damage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from intentrank.clickbait.scorer import DEFAULT_MODEL_DIR


@pytest.fixture(scope="session")
def lexical_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped ensemble's lexical member saved as a lexical model (real scores, loads in ~50 ms)."""
    d = tmp_path_factory.mktemp("lexical") / "model"
    d.mkdir()
    meta = json.loads((DEFAULT_MODEL_DIR / "model.json").read_text(encoding="utf-8"))
    member = next(m for m in meta["params"]["members"] if m["backend"] == "lexical")
    shutil.copyfile(DEFAULT_MODEL_DIR / member["dir"] / "lexical.npz", d / "lexical.npz")
    meta.update(backend="lexical", params=member["params"])
    (d / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    return d


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    """A copy of the shipped model directory whose files may be overwritten (big files symlinked; a test
    replaces a link by writing through ``damage``)."""
    d = tmp_path / "model"
    for src in DEFAULT_MODEL_DIR.rglob("*"):
        dst = d / src.relative_to(DEFAULT_MODEL_DIR)
        if src.is_dir():
            dst.mkdir(parents=True, exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    return d


def damage(path: Path, data: bytes) -> None:
    """Replace ``path`` (a link into the shipped model) by a file holding ``data``."""
    path.unlink()
    path.write_bytes(data)
