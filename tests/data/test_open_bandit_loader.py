"""Open Bandit Dataset loader: the shipped sample loads typed and in range; bad files are clear errors."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from intentrank.data.open_bandit import load_open_bandit, load_open_bandit_item_context
from intentrank.errors import DataError


@pytest.mark.parametrize("policy", ["random", "bts"])
def test_shipped_logs_load(policy: str) -> None:
    df = load_open_bandit(policy)
    assert len(df) == 10_000
    assert set(df["position"].unique()) == {1, 2, 3}
    assert df["item_id"].between(0, 79).all()
    assert str(df["click"].dtype) == "int8"
    assert df["propensity_score"].between(0, 1, inclusive="right").all()
    if policy == "random":
        assert (df["propensity_score"] == 1 / 80).all()


def test_item_context_loads() -> None:
    ctx = load_open_bandit_item_context()
    assert sorted(ctx["item_id"]) == list(range(80))


def _write_log(tmp_path, df: pd.DataFrame) -> None:
    (tmp_path / "random").mkdir()
    with gzip.open(tmp_path / "random" / "all.csv.gz", "wt") as f:
        df.to_csv(f)


GOOD = pd.DataFrame(
    {"timestamp": ["t0", "t1"], "item_id": [3, 4], "position": [1, 2], "click": [0, 1],
     "propensity_score": [0.0125, 0.0125]}
)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"click": [0, 2]}, "row 1: invalid click 2"),
        ({"position": [0, 2]}, "row 0: invalid position 0"),
        ({"item_id": [3, 80]}, "row 1: invalid item_id 80"),
        ({"propensity_score": [0.0, 0.1]}, "row 0: invalid propensity_score 0.0"),
    ],
)
def test_bad_rows_are_clear_errors(tmp_path, change: dict, message: str) -> None:
    _write_log(tmp_path, GOOD.assign(**change))
    with pytest.raises(DataError, match=message):
        load_open_bandit("random", tmp_path)


def test_missing_column_unknown_policy_and_missing_file(tmp_path) -> None:
    _write_log(tmp_path, GOOD.drop(columns=["propensity_score"]))
    with pytest.raises(DataError, match="missing column\\(s\\) propensity_score"):
        load_open_bandit("random", tmp_path)
    with pytest.raises(DataError, match="unknown policy 'ts'"):
        load_open_bandit("ts")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="file not found"):
        load_open_bandit("bts", tmp_path)
