"""Downstream-signal labels and row weights from impression outcomes.

- ``clicked``: the raw click (masks the dwell and conversion-given-click tasks);
- ``long``: a *successful* click: clicked, not bounced, and dwell ≥ ``long_click_threshold_s``;
  a bounced click is never a success, whatever its dwell;
- ``y_click``: the click task's positive — the raw click, or the successful click (``click_target``);
- ``y_dwell``: log1p(dwell seconds) (only read on clicked rows);
- ``y_conversion``: the conversion;
- ``w``: ``(1 + long_click_weight·long + conversion_weight·conversion) · (bounce_weight if bounced)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api import types as ptypes

from intentrank.errors import DataError
from intentrank.ranking.config import LabelConfig

OUTCOME_COLUMNS = ("click", "dwell_s", "bounce", "conversion")


def _flag(df: pd.DataFrame, col: str, what: str) -> np.ndarray:
    s = df[col]
    if s.isna().any():
        raise DataError(f"{what}: label column {col!r} has {int(s.isna().sum())} missing (NaN) values")
    if ptypes.is_bool_dtype(s):
        return s.to_numpy(dtype=bool)
    if ptypes.is_numeric_dtype(s):
        v = s.to_numpy(dtype=np.float64)
        if not np.isin(v, (0.0, 1.0)).all():
            raise DataError(f"{what}: label column {col!r} must be boolean (or 0/1), found other values")
        return v.astype(bool)
    raise DataError(f"{what}: label column {col!r} must be boolean, got dtype {s.dtype}")


def make_labels(df: pd.DataFrame, cfg: LabelConfig, what: str = "event frame") -> dict[str, np.ndarray]:
    """float32 arrays ``clicked, long, y_click, y_dwell, y_conversion, w`` (one per row)."""
    missing = [c for c in OUTCOME_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{what}: missing outcome columns {missing}")
    click = _flag(df, "click", what)
    bounce = _flag(df, "bounce", what)
    conv = _flag(df, "conversion", what)
    s = df["dwell_s"]
    if not ptypes.is_numeric_dtype(s) or ptypes.is_bool_dtype(s):
        raise DataError(f"{what}: label column 'dwell_s' must be numeric seconds, got dtype {s.dtype}")
    dwell = s.to_numpy(dtype=np.float64)
    if np.isnan(dwell).any():
        raise DataError(
            f"{what}: label column 'dwell_s' has {int(np.isnan(dwell).sum())} missing (NaN) values"
        )
    if (dwell < 0).any() or np.isinf(dwell).any():
        raise DataError(f"{what}: label column 'dwell_s' must be finite and ≥ 0")
    long = click & ~bounce & (dwell >= cfg.long_click_threshold_s)
    y_click = click if cfg.click_target == "click" else long
    w = 1.0 + cfg.long_click_weight * long + cfg.conversion_weight * (conv & click)
    w = np.where(bounce & click, w * cfg.bounce_weight, w)
    f32 = np.float32
    return {
        "clicked": click.astype(f32),
        "long": long.astype(f32),
        "y_click": y_click.astype(f32),
        "y_dwell": np.log1p(np.where(click, dwell, 0.0)).astype(f32),
        "y_conversion": (conv & click).astype(f32),
        "w": w.astype(f32),
    }
