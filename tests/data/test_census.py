"""Census-Income loader: columns, labels and clear errors on malformed files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from intentrank.data.census import CENSUS_COLUMNS, census_path, census_task_labels, load_census_income
from intentrank.errors import DataError


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
