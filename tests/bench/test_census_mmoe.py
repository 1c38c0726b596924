"""A small, fast version of the Census-Income MMoE benchmark (bench/census_mmoe.py, loaded by path)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from intentrank.ranking.config import ModelConfig

BENCH = Path(__file__).resolve().parents[2] / "bench" / "census_mmoe.py"


def _load_bench() -> ModuleType:
    """Import the benchmark script as a module (registered first: its dataclasses need sys.modules)."""
    spec = importlib.util.spec_from_file_location("census_mmoe", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


cm = _load_bench()
split_half, prepare_census, run_census_benchmark = cm.split_half, cm.prepare_census, cm.run_census_benchmark


def test_split_is_fixed_and_disjoint() -> None:
    a, b = split_half(1001, seed=0)
    a2, _ = split_half(1001, seed=0)
    assert (a == a2).all() and len(set(a) & set(b)) == 0 and len(a) + len(b) == 1001


def test_small_mmoe_run_beats_chance_by_far() -> None:
    small = ModelConfig(backbone="mmoe", mmoe={"experts": 4, "expert_hidden": [64]}, tower_hidden=[16])
    res = run_census_benchmark(
        n_rows=10_000,
        epochs=6,
        batch_size=256,
        lr=3e-3,
        progress=False,
        patience=2,
        model=small,
        embedding_dim=8,
        n_models=1,
    )
    assert res.model_auc["income"] > 0.88
    assert res.model_auc["never_married"] > 0.97
    assert res.logreg_auc["income"] > 0.85


def test_init_seed_does_not_move_the_split() -> None:
    a = prepare_census(n_rows=3000, split_seed=0)
    c = prepare_census(n_rows=3000, split_seed=1)
    assert (a.te_idx == split_half(3000, 0)[1]).all()
    assert not (a.te_idx == c.te_idx).all()
    assert len(set(a.fit_idx) & set(a.va_idx)) == 0 and len(set(a.tr_idx) & set(a.te_idx)) == 0
    assert len(a.va_idx) / len(a.tr_idx) == pytest.approx(0.1, abs=0.03)


def test_ensemble_of_checkpoints_and_val_only_mode() -> None:
    tiny = ModelConfig(backbone="mmoe", mmoe={"experts": 2, "expert_hidden": [16]}, tower_hidden=[8])
    kw = dict(n_rows=3000, epochs=2, batch_size=256, lr=3e-3, progress=False, model=tiny, embedding_dim=4)
    res = run_census_benchmark(**kw, n_models=2, top_k=2, evaluate_test=False)  # type: ignore[arg-type]
    assert res.model_auc == {} and res.logreg_auc == {}
    assert set(res.val_auc) == {"income", "never_married"} and len(res.val_variants) == 4
    assert res.val_variants["2_inits_top2"] == res.val_auc
    assert all(0.0 <= v <= 1.0 for v in res.val_auc.values()) and res.val_auc["never_married"] > 0.7
    full = run_census_benchmark(**kw, seed=0, n_models=1, bins=16)  # type: ignore[arg-type]
    again = run_census_benchmark(**kw, seed=0, n_models=1, bins=16)  # type: ignore[arg-type]
    assert full.model_auc == again.model_auc and full.n_test == 1500
