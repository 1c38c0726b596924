"""Damaged model files give one clear error naming the file, never a traceback or a library's advice to
load pickles. Each case damages one file of a copy of the shipped model (see conftest)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from intentrank.clickbait import ClickbaitScorer, load_default_scorer
from intentrank.errors import DataError, IntentRankError

from .conftest import damage

UNSAFE = ("allow_pickle", "weights_only", "Traceback")
LEX = Path("member0_lexical") / "lexical.npz"


def _load_error(d: Path) -> str:
    with pytest.raises(IntentRankError) as info:
        ClickbaitScorer.load(d).score(["You won't believe this", "Senate passes budget"])
    msg = str(info.value)
    assert "\n" not in msg and not any(u in msg for u in UNSAFE), msg
    return msg


def _npz(**arrays: object) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # object arrays are pickled inside the archive
    return buf.getvalue()


def _meta(**update: object) -> bytes:
    meta = {"format_version": 1, "backend": "lexical", "params": {}, "max_chars": 3, "empty_score": 0.0}
    return json.dumps(meta | update).encode()


def test_intact_copy_loads(shipped_copy: Path) -> None:
    s = ClickbaitScorer.load(shipped_copy).score(["Senate passes budget bill"])
    assert s.shape == (1,) and 0 <= s[0] <= 1
    # the intact copy scores exactly as the shipped model does
    assert s[0] == load_default_scorer().score(["Senate passes budget bill"])[0]


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("model.json", b"", "empty"),
        ("model.json", b"\xff\xfe{}", "not valid JSON/UTF-8"),
        ("model.json", b'{"format_version": 1,', "not valid JSON"),
        ("model.json", b"[1, 2, 3]", "Input should be an object"),
        ("model.json", b'{"format_version": 1}', "backend: Field required"),
        ("model.json", _meta(max_chars="lots"), "max_chars"),
        ("model.json", _meta(format_version=2), "unsupported format_version 2"),
        (str(LEX), b"", "empty"),
        (str(LEX), os.urandom(4096), "not a readable .npz archive"),
        (str(LEX), (Path(__file__).parent / "conftest.py").read_bytes(), "not a readable .npz archive"),
        (str(LEX), b"PK\x03\x04" + os.urandom(200), "not a readable .npz archive"),
        (str(LEX), _npz(coef=np.array([object()])), "not a readable .npz archive"),
        (str(LEX), _npz(coef=np.zeros(3), idf_char=np.zeros(3), idf_word=np.zeros(3)), "'coef' has shape"),
        (str(LEX), _npz(coef=np.zeros(3)), "missing array(s) ['idf_char', 'idf_word']"),
        ("score_cache.npz", os.urandom(1000), "not a readable .npz archive"),
        ("score_cache.npz", _npz(keys=np.arange(3, dtype=np.uint64), values=np.zeros(2)), "'values' has"),
        ("score_cache.npz", _npz(keys=np.zeros(2), values=np.zeros(2)), "expected uint64"),
        ("member1_finetuned/finetuned.onnx", b"", "not a readable ONNX model"),
        ("member1_finetuned/finetuned.onnx", os.urandom(5000), "not a readable ONNX model"),
    ],
)
def test_damaged_file_is_named(shipped_copy: Path, name: str, data: bytes, why: str) -> None:
    damage(shipped_copy / name, data)
    msg = _load_error(shipped_copy)
    assert str(shipped_copy / name) in msg and why in msg, msg


def test_truncated_lexical_archive(shipped_copy: Path) -> None:
    full = (shipped_copy / LEX).read_bytes()
    damage(shipped_copy / LEX, full[: len(full) // 2])
    assert "not a readable .npz archive" in _load_error(shipped_copy)


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda m: m["params"]["members"][0].update(dir="../../elsewhere"), "plain directory name"),
        (lambda m: m["params"].update(coef=[0.1, 0.2]), "coef must be 3 finite numbers"),
        (lambda m: m["params"]["members"][0]["params"].pop("alpha"), "missing key 'alpha'"),
        (lambda m: m["params"]["members"][0]["params"]["spec"].update(char_bits="20"), "spec values"),
        (lambda m: m["params"]["members"][1].update(backend="nope"), "unknown clickbait backend 'nope'"),
        (lambda m: m["params"].update(warp={"knots": [0.5]}), "malformed ensemble params"),
    ],
)
def test_valid_json_of_the_wrong_shape(shipped_copy: Path, edit, why: str) -> None:
    meta = json.loads((shipped_copy / "model.json").read_text(encoding="utf-8"))
    edit(meta)
    damage(shipped_copy / "model.json", json.dumps(meta).encode())
    assert why in _load_error(shipped_copy)


def test_zip_member_corrupted_inside(shipped_copy: Path) -> None:
    """A valid zip whose compressed member is damaged: the error comes at load, not at scoring."""
    src = (shipped_copy / "score_cache.npz").read_bytes()
    zin = zipfile.ZipFile(io.BytesIO(src))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            zout.writestr(info, zin.read(info.filename))
    data = bytearray(buf.getvalue())
    data[200:260] = os.urandom(60)
    damage(shipped_copy / "score_cache.npz", bytes(data))
    with pytest.raises(DataError, match=r"score_cache\.npz: not a readable \.npz archive"):
        ClickbaitScorer.load(shipped_copy)


def test_cli_reports_a_damaged_model_in_one_line(shipped_copy: Path, tmp_path: Path) -> None:
    damage(shipped_copy / LEX, os.urandom(2048))
    res = subprocess.run(
        [sys.executable, "-m", "intentrank.cli.main", "clickbait", "score", "-", "-m", str(shipped_copy)],
        input=b"a title\n", capture_output=True, timeout=120,
    )  # fmt: skip
    err = res.stderr.decode()
    assert res.returncode == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert "lexical.npz" in err and not any(u in err for u in UNSAFE)


@pytest.fixture
def semantic_model(tmp_path: Path) -> Path:
    """A semantic (ridge head) model written without running the encoder."""
    from intentrank.clickbait.backends.semantic import SemanticBackend
    from intentrank.clickbait.encoder import DIM
    from intentrank.clickbait.heads import RidgeHead

    head = RidgeHead()
    head.arrays = {"coef": np.zeros(DIM * 3, dtype=np.float32), "bias": np.array([0.3])}
    sc = ClickbaitScorer(SemanticBackend(head=head))
    sc.fitted = True
    return sc.save(tmp_path / "sem")


def test_semantic_model_files(semantic_model: Path) -> None:
    assert ClickbaitScorer.load(semantic_model).backend_name == "semantic"
    npz = semantic_model / "semantic.npz"
    npz.write_bytes(_npz(coef=np.zeros(7), bias=np.zeros(1)))
    assert "'coef' has shape (7,), expected (1152,)" in _load_error(semantic_model)
    npz.write_bytes(b"")
    assert "semantic.npz: the file is empty" in _load_error(semantic_model)
    meta = json.loads((semantic_model / "model.json").read_text(encoding="utf-8"))
    meta["params"]["head"]["kind"] = "forest"
    (semantic_model / "model.json").write_text(json.dumps(meta), encoding="utf-8")
    assert "head kind must be 'ridge' or 'mlp'" in _load_error(semantic_model)
