"""Loader of the Open Bandit Dataset sample (Saito et al., NeurIPS 2021 D&B; CC BY 4.0).

ZOZOTOWN fashion e-commerce logged bandit feedback, "all" campaign, the 10,000-row sample shipped in
the Open Bandit Pipeline package: one log per logging policy, ``random`` (uniform random, propensity
1/80) and ``bts`` (Bernoulli Thompson Sampling). Each row is one impression: ``timestamp``, ``item_id``
(0–79), ``position`` (1–3, three slots shown together), ``click`` (0/1), ``propensity_score`` (the
logging policy's probability of that item at that position), ``user_feature_0..3`` (hashed strings)
and ``user-item_affinity_0..79``. ``item_context.csv`` holds per-item features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from intentrank.data.paths import dataset_path
from intentrank.errors import DataError

POLICIES = ("random", "bts")
REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score")
N_ITEMS, N_POSITIONS = 80, 3


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        return pd.read_csv(path, index_col=0)
    except (OSError, ValueError, UnicodeDecodeError, EOFError) as exc:
        raise DataError(f"{path}: cannot read as CSV ({exc})") from None


def load_open_bandit(
    policy: Literal["random", "bts"], directory: str | Path | None = None
) -> pd.DataFrame:
    """One logging policy's log as a DataFrame, validated.

    Columns as in the file (see the module docstring); ``position`` stays 1-based, ``click`` is int8.
    Raises DataError for an unknown policy, a missing or unreadable file, a missing column, a click
    that is not 0/1, a position outside 1–3, an item outside 0–79 or a propensity outside (0, 1].
    """
    if policy not in POLICIES:
        raise DataError(f"open bandit: unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    base = Path(directory) if directory is not None else dataset_path("open-bandit-dataset")
    path = base / policy / "all.csv.gz"
    df = _read_csv(path)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    checks = {
        "click": df["click"].isin([0, 1]),
        "position": df["position"].between(1, N_POSITIONS),
        "item_id": df["item_id"].between(0, N_ITEMS - 1),
        "propensity_score": (df["propensity_score"] > 0) & (df["propensity_score"] <= 1),
    }
    for col, ok in checks.items():
        if not ok.all():
            row = int((~ok).to_numpy().nonzero()[0][0])
            raise DataError(f"{path}: row {row}: invalid {col} {df[col].iloc[row]}")
    return df.assign(click=df["click"].astype("int8")).reset_index(drop=True)


def load_open_bandit_item_context(
    policy: Literal["random", "bts"] = "random", directory: str | Path | None = None
) -> pd.DataFrame:
    """Per-item features (``item_id``, ``item_feature_0..3``); the same file ships with both logs."""
    if policy not in POLICIES:
        raise DataError(f"open bandit: unknown policy {policy!r}; expected one of {', '.join(POLICIES)}")
    base = Path(directory) if directory is not None else dataset_path("open-bandit-dataset")
    df = _read_csv(base / policy / "item_context.csv")
    if "item_id" not in df.columns:
        raise DataError(f"{base / policy / 'item_context.csv'}: missing column item_id")
    return df.reset_index(drop=True)
