import importlib.util

import numpy as np
import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.clickbait import ClickbaitScorer
from intentrank.clickbait.backends.ensemble import EnsembleBackend
from intentrank.clickbait.backends.lexical import LexicalBackend
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.hashing import HashSpec
from intentrank.clickbait.training import auc, train_scorer
from intentrank.clickbait.warp import MonotoneWarp, best_threshold
from intentrank.errors import IntentRankError


def test_best_threshold_and_ties_toward_half():
    raw = np.array([0.1, 0.2, 0.38, 0.45, 0.7, 0.9])
    lab = np.array([0, 0, 0, 1, 1, 1])
    t = best_threshold(raw, lab)
    assert 0.38 < t <= 0.45 and t == pytest.approx(0.45)  # 0.39..0.45 all perfect: nearest 0.5 wins
    assert best_threshold(np.array([0.2, 0.8]), np.array([0, 1])) == pytest.approx(0.5)


def test_warp_is_pinned_strictly_increasing_and_keeps_ranking():
    rng = np.random.default_rng(0)
    raw = rng.uniform(-0.1, 1.1, 2000)
    y = np.clip(raw + rng.normal(0, 0.1, raw.size), 0, 1)
    lab = y > 0.5
    g = MonotoneWarp.fit(raw, y, np.ones_like(y), pin=0.4, pin_value=0.5)
    assert g(np.array([0.4]))[0] == pytest.approx(0.5)
    x = np.linspace(-2, 3, 5001)
    assert (np.diff(g(x)) > 0).all()
    # slope 1 beyond the knots
    assert g(np.array([3.0]))[0] - g(np.array([2.0]))[0] == pytest.approx(1.0)
    assert auc(lab, g(raw)) == pytest.approx(auc(lab, raw))
    again = MonotoneWarp.from_dict(g.to_dict())
    assert again(raw) == pytest.approx(g(raw))
    with pytest.raises(ValueError, match="strictly increasing"):
        MonotoneWarp(np.array([0.0, 1.0]), np.array([0.5, 0.2]))


BAIT = ["you won't believe what this dog did", "17 things only 90s kids will understand",
        "this one trick will change your life", "which disney princess are you"]  # fmt: skip
NEWS = ["senate passes budget bill after long debate", "earthquake strikes northern indonesia",
        "central bank raises interest rates", "court rejects appeal in fraud case"]  # fmt: skip


def test_ensemble_fits_warp_from_binary_rows_and_roundtrips(tmp_path):
    spec = HashSpec(char_bits=12, word_bits=12)
    ens = EnsembleBackend([LexicalBackend(0.1, spec), LexicalBackend(10.0, spec)], val_fraction=0.5, seed=0)
    rng = np.random.default_rng(1)
    graded = BAIT * 10 + NEWS * 10
    yg = np.clip(np.r_[np.full(40, 0.7), np.full(40, 0.15)] + rng.normal(0, 0.05, 80), 0, 1)
    binary_titles = [t + " today" for t in BAIT] * 5 + [t + " today" for t in NEWS] * 5
    yb = np.r_[np.full(20, 0.688), np.full(20, 0.207)]
    titles = graded + binary_titles
    binary = np.r_[np.zeros(80, bool), np.ones(40, bool)]
    sc = ClickbaitScorer(ens).fit(titles, np.r_[yg, yb], binary=binary)
    assert ens.warp is not None
    s = sc.score(titles)
    assert ((s[80:] >= 0.5) == (yb > 0.5)).all()
    sc.save(tmp_path / "e")
    assert ClickbaitScorer.load(tmp_path / "e").score(titles) == pytest.approx(s)
    # without binary rows (or with the warp switched off) there is no warp
    ens2 = EnsembleBackend([LexicalBackend(0.1, spec)], val_fraction=0.5, use_warp=False)
    ClickbaitScorer(ens2).fit(titles, np.r_[yg, yb], binary=binary)
    assert ens2.warp is None


def test_default_train_without_onnx_is_a_clear_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "onnx" else real(n, *a))
    with pytest.raises(IntentRankError, match=r"onnx.*--backend lexical"):
        train_scorer(ClickbaitConfig())  # fails before loading any data
    res = CliRunner().invoke(app, ["clickbait", "train"])
    assert res.exit_code == 2 and "--backend lexical" in res.stderr


def test_default_train_without_gpu_is_a_clear_error(monkeypatch):
    import torch

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "onnx" else real(n, *a))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(IntentRankError, match=r"CUDA GPU.*finetune_on_cpu.*--backend lexical"):
        train_scorer(ClickbaitConfig(), "finetuned")
