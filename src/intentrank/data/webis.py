"""Loader of Webis Clickbait Corpus 2017 (Potthast et al., COLING 2018; CC BY 4.0).

``train.jsonl.gz``: one JSON object per line with ``text_id``, ``post_text`` (the tweet),
``truth_mean``/``truth_median``/``truth_mode`` (graded clickbaitiness in [0, 1], mean of five
annotators) and ``click_bait`` (0/1, the binary truth class).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from intentrank.data._text_files import read_lines
from intentrank.data.paths import dataset_path
from intentrank.errors import DataError

COLUMNS = ("text_id", "post_text", "truth_mean", "truth_median", "truth_mode", "click_bait")
_SCORES = ("truth_mean", "truth_median", "truth_mode")


def _check_row(obj: object, where: str) -> tuple:
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [c for c in COLUMNS if c not in obj]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    if not isinstance(obj["post_text"], str):
        raise DataError(f"{where}: post_text must be a string, got {obj['post_text']!r:.60}")
    if not isinstance(obj["text_id"], int) or isinstance(obj["text_id"], bool):
        raise DataError(f"{where}: text_id must be an integer, got {obj['text_id']!r}")
    for c in _SCORES:
        v = obj[c]
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0:
            raise DataError(f"{where}: {c} must be a number in [0, 1], got {v!r}")
    if obj["click_bait"] not in (0, 1) or isinstance(obj["click_bait"], bool):
        raise DataError(f"{where}: click_bait must be 0 or 1, got {obj['click_bait']!r}")
    return tuple(obj[c] for c in COLUMNS)


def load_webis17(path: str | Path | None = None) -> pd.DataFrame:
    """Rows of the Webis-17 file as a DataFrame with :data:`COLUMNS` (float64 scores, int8 click_bait).

    Blank lines are skipped. Raises DataError naming the file and line of the first malformed row,
    or if the file holds no rows or repeats a text_id.
    """
    p = Path(path) if path is not None else dataset_path("webis-clickbait-17", "train.jsonl.gz")
    rows = []
    for i, line in enumerate(read_lines(p), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{p}:{i}: not valid JSON ({err.msg})") from None
        rows.append(_check_row(obj, f"{p}:{i}"))
    if not rows:
        raise DataError(f"{p}: no rows in the file")
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    dup = df["text_id"].duplicated()
    if dup.any():
        raise DataError(f"{p}: text_id {int(df['text_id'][dup].iloc[0])} appears more than once")
    df = df.astype(
        {
            "text_id": np.int64,
            "truth_mean": np.float64,
            "truth_median": np.float64,
            "truth_mode": np.float64,
            "click_bait": np.int8,
        }
    )
    return df
