"""Census-Income loader (validated) and a small, fast version of the MMoE benchmark."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from intentrank.data.census import CENSUS_COLUMNS, census_path, census_task_labels, load_census_income
from intentrank.errors import DataError
from intentrank.ranking.census_benchmark import prepare_census, run_census_benchmark, split_half
from intentrank.ranking.config import ModelConfig


def test_loader_columns_and_labels() -> None:
    df = load_census_income()
    assert list(df.columns) == list(CENSUS_COLUMNS) and len(df) == 99_762
    y = census_task_labels(df)
    assert 0.05 < y["income"].mean() < 0.08 and 0.4 < y["never_married"].mean() < 0.46
    assert df["age"].dtype.kind == "f" and df["det_ind_code"].dtype.kind == "i"


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "c.gz"
    with gzip.open(p, "wt") as f:
        f.write("\n".join(lines) + "\n")
    return p


def test_loader_rejects_malformed_files(tmp_path: Path) -> None:
    with gzip.open(census_path(), "rt") as f:
        good = [next(f).rstrip("\n") for _ in range(3)]
    assert len(load_census_income(_write(tmp_path, good))) == 3
    short = [",".join(line.split(",")[:-1]) for line in good]
    with pytest.raises(DataError, match="expected 42 columns"):
        load_census_income(_write(tmp_path, short))
    bad_age = ["abc" + good[0][2:], *good[1:]]
    with pytest.raises(DataError, match="'age' must be numeric; line 1 has 'abc'"):
        load_census_income(_write(tmp_path, bad_age))
    bad_label = [*good[:2], good[2].rsplit(",", 1)[0] + ", maybe."]
    with pytest.raises(DataError, match=r"'income_50k' must be one of .* line 3 has 'maybe\.'"):
        load_census_income(_write(tmp_path, bad_label))
    with pytest.raises(DataError, match="not found"):
        load_census_income(tmp_path / "missing.gz")


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
