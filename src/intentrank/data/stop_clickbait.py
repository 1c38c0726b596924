"""Loader of the Stop Clickbait headlines (Chakraborty et al., ASONAM 2016; MIT licence).

Two gzipped text files, one headline per line with blank lines between: ``clickbait_data.gz``
(label 1) and ``non_clickbait_data.gz`` (label 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from intentrank.data._text_files import read_lines
from intentrank.data.paths import dataset_path
from intentrank.errors import DataError

FILES = {1: "clickbait_data.gz", 0: "non_clickbait_data.gz"}


def load_stop_clickbait(directory: str | Path | None = None) -> pd.DataFrame:
    """Headlines as a DataFrame with columns ``title`` (str) and ``label`` (int8: 1 = clickbait).

    Clickbait rows come first, then non-clickbait, each in file order. Blank lines are skipped.
    Raises DataError if a file is missing, unreadable, not UTF-8 or holds no headline.
    """
    base = Path(directory) if directory is not None else dataset_path("stop-clickbait")
    frames = []
    for label, name in FILES.items():
        path = base / name
        titles = [t.strip() for t in read_lines(path)]
        titles = [t for t in titles if t]
        if not titles:
            raise DataError(f"{path}: no headlines in the file")
        frames.append(pd.DataFrame({"title": titles, "label": np.full(len(titles), label, dtype=np.int8)}))
    return pd.concat(frames, ignore_index=True)
