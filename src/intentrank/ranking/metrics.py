"""Evaluation metrics: ROC-AUC, log-loss, RMSE, and NDCG@k averaged over slates (vectorised)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score


def auc(y: np.ndarray, p: np.ndarray) -> float | None:
    """ROC-AUC, or None when only one class is present."""
    y = np.asarray(y)
    if y.size == 0 or y.min() == y.max():
        return None
    return float(roc_auc_score(y, p))


def logloss(y: np.ndarray, p: np.ndarray) -> float | None:
    """Binary log-loss (None on an empty set)."""
    if len(y) == 0:
        return None
    return float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1]))


def rmse(y: np.ndarray, p: np.ndarray) -> float | None:
    """Root mean squared error (None on an empty set)."""
    if len(y) == 0:
        return None
    return float(np.sqrt(np.mean((np.asarray(y, np.float64) - np.asarray(p, np.float64)) ** 2)))


def ndcg_per_slate(slate: np.ndarray, score: np.ndarray, rel: np.ndarray, k: int = 20) -> float | None:
    """Mean NDCG@k over slates with at least one relevant item; gains 2^rel - 1, log2 discounts.

    ``slate`` groups rows; ``score`` is the model's ranking score; ``rel`` the graded relevance."""
    slate = np.asarray(slate)
    rel = np.asarray(rel, np.float64)
    if slate.size == 0:
        return None
    _, g = np.unique(slate, return_inverse=True)
    gain = np.exp2(rel) - 1.0

    def dcg(order_key: np.ndarray) -> np.ndarray:
        order = np.lexsort((-order_key, g))
        gs = g[order]
        starts = np.r_[0, np.flatnonzero(np.diff(gs)) + 1]
        rank = np.arange(len(gs)) - np.repeat(starts, np.diff(np.r_[starts, len(gs)]))
        disc = np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)
        return np.bincount(gs, weights=gain[order] * disc, minlength=g.max() + 1)

    ideal = dcg(rel)
    actual = dcg(np.asarray(score, np.float64))
    ok = ideal > 0
    if not ok.any():
        return None
    return float(np.mean(actual[ok] / ideal[ok]))
