"""Clickbait categories for reporting: non (c < light), light (light <= c < heavy), heavy (c >= heavy).

Pure NumPy so every part (simulator, ranking, reports) can use it without loading a model.
"""

from __future__ import annotations

import numpy as np

from intentrank.errors import IntentRankError

#: Category names; :func:`categorize` returns int8 codes indexing this tuple.
CATEGORIES: tuple[str, str, str] = ("non", "light", "heavy")
NON, LIGHT, HEAVY = 0, 1, 2


def categorize(scores: np.ndarray, light: float = 0.4, heavy: float = 0.7) -> np.ndarray:
    """Map clickbait scores in [0, 1] to int8 codes 0/1/2 (``CATEGORIES[code]``).

    ``light`` and ``heavy`` are the lower bounds of the light and heavy categories (inclusive).
    NaN scores are an error: a missing score must not silently count as "non".
    """
    if not 0.0 <= light < heavy <= 1.0:
        raise IntentRankError(
            f"clickbait thresholds must satisfy 0 <= light < heavy <= 1, got {light}, {heavy}"
        )
    s = np.asarray(scores, dtype=np.float64)
    if np.isnan(s).any():
        raise IntentRankError(f"clickbait scores contain NaN at index {int(np.flatnonzero(np.isnan(s))[0])}")
    return (s >= light).astype(np.int8) + (s >= heavy).astype(np.int8)


def category_names(codes: np.ndarray) -> list[str]:
    """Names of int8 category codes, e.g. ``["non", "heavy"]``."""
    return [CATEGORIES[int(c)] for c in np.asarray(codes).ravel()]
