"""A user's own catalogue and events for ``intentrank serve`` (CSV or Parquet): read, completed with
defaults, and refused with one clear line when wrong."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.errors import DataError
from intentrank.service.catalogue_files import read_events, read_items

ITEMS = pd.DataFrame(
    {
        "title": ["You won't believe this", "Council approves budget", "Rain tomorrow"],
        "topic": ["fun", "politics", "weather"],
        "source": ["a", "b", "c"],
        "publish_ts": [-3600.0, -60.0, 0.0],
        "clickbait_score": [0.9, 0.1, 0.2],
    }
)


def test_items_csv_and_parquet(tmp_path: Path) -> None:
    ITEMS.to_csv(tmp_path / "i.csv", index=False)
    ITEMS.assign(item_id=[2, 0, 1]).to_parquet(tmp_path / "i.parquet")
    a = read_items(tmp_path / "i.csv")
    assert a["item_id"].tolist() == [0, 1, 2] and a["length"].tolist() == [4, 3, 2]
    b = read_items(tmp_path / "i.parquet")
    assert b["title"].tolist()[0] == "Council approves budget"  # sorted by the given item_id


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns=["source"]), "missing column(s) source"),
        (lambda d: d.assign(item_id=[0, 0, 1]), "item_id must be the numbers 0..2"),
        (lambda d: d.assign(clickbait_score=[0.1, 2.0, 0.3]), "clickbait_score must be numbers in [0, 1]"),
        (lambda d: d.assign(title=["a", "", "c"]), "column 'title' is empty in row 1"),
        (lambda d: d.assign(publish_ts=["x", "y", "z"]), "column 'publish_ts'"),
    ],
)
def test_bad_items_are_refused(tmp_path: Path, change, message: str) -> None:
    change(ITEMS).to_csv(tmp_path / "i.csv", index=False)
    with pytest.raises(DataError, match=None) as err:
        read_items(tmp_path / "i.csv")
    assert message in str(err.value) and "\n" not in str(err.value)


def test_events_with_defaults(tmp_path: Path) -> None:
    pd.DataFrame({"user_id": [1, 1, 2], "item_id": [0, 2, 1], "click": ["true", "false", "1"],
                  "dwell_s": [12.0, 0.0, 3.0]}).to_csv(tmp_path / "e.csv", index=False)  # fmt: skip
    ev = read_events(tmp_path / "e.csv", n_items=3)
    assert ev["click"].tolist() == [True, False, True] and ev["slate_id"].tolist() == [0, 1, 2]
    assert (ev["policy"] == "imported").all() and (ev["propensity"] == 1.0).all()
    assert ev["session_id"].tolist() == [1, 1, 2]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ({"user_id": [1], "item_id": [7], "click": [True]}, "refer to items not in the catalogue"),
        ({"user_id": [1], "item_id": [0]}, "missing column(s) click"),
        ({"user_id": [-1], "item_id": [0], "click": [True]}, "'user_id' must be integers >= 0"),
        ({"user_id": [1], "item_id": [0], "click": ["maybe"]}, "'click' must be true/false"),
        ({"user_id": [1], "item_id": [0], "click": [False], "bounce": [True]}, "bounce"),
    ],
)
def test_bad_events_are_refused(tmp_path: Path, events: dict, message: str) -> None:
    pd.DataFrame(events).to_parquet(tmp_path / "e.parquet")
    with pytest.raises(DataError) as err:
        read_events(tmp_path / "e.parquet", n_items=3)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_serve_refuses_events_with_model_and_unknown_file_type(tmp_path: Path) -> None:
    ITEMS.to_csv(tmp_path / "i.csv", index=False)
    (tmp_path / "e.json").write_text("[]")
    runner = CliRunner()
    own = ["serve", "--items", str(tmp_path / "i.csv"), "--events", str(tmp_path / "e.json")]
    res = runner.invoke(app, own)
    assert res.exit_code == 2 and "unknown file type '.json'" in res.stderr
    res = runner.invoke(app, [*own, "--model", str(tmp_path)])
    assert res.exit_code == 2 and "give --events or --model, not both" in res.stderr
