"""Ordering: scores → slates, deterministically (top-S) or by Plackett–Luce sampling with propensities.

For a stochastic policy the slate is a Plackett–Luce sample over ``softmax(scores / T)`` drawn with the
Gumbel top-k trick; each impression's propensity is the probability of that pick given the items above
it, ``p_k = exp(s_k/T) / Σ_{j not yet picked} exp(s_j/T)`` (for position 0, exactly the probability of
being shown first; the product down to position k is the slate-prefix (cascade) probability).

References:
    Plackett, "The Analysis of Permutations", JRSS C 1975; Luce, "Individual Choice Behavior", 1959.
    Kool, van Hoof, Welling, "Stochastic Beams and Where to Find Them: the Gumbel-Top-k Trick", ICML 2019.
"""

from __future__ import annotations

import numpy as np

from intentrank.errors import IntentRankError


def top_s(scores: np.ndarray, S: int) -> np.ndarray:
    """Column indices (B, S) of the S highest scores per row, best first (ties: lower column first)."""
    K = scores.shape[1]
    if S < K:
        part = np.argpartition(-scores, S - 1, axis=1)[:, :S]
        sub = np.take_along_axis(scores, part, axis=1)
        return np.take_along_axis(part, np.argsort(-sub, axis=1, kind="stable"), axis=1)
    return np.argsort(-scores, axis=1, kind="stable")


def select_slates(
    scores: np.ndarray,
    S: int,
    *,
    stochastic: bool = False,
    temperature: float = 1.0,
    rng: np.random.Generator | None = None,
    name: str = "policy",
) -> tuple[np.ndarray, np.ndarray]:
    """Slates from a (B, K) score matrix.

    Args:
        scores: (B, K) finite scores, higher = better.
        S: slate size (≤ K).
        stochastic: Plackett–Luce sampling instead of top-S.
        temperature: T of the softmax (stochastic only).
        rng: random generator (required when stochastic).
        name: the policy's name, for error messages.

    Returns:
        (order, propensity): (B, S) candidate columns best first, and (B, S) float64 probability of each
        pick given the picks above it (all 1.0 when deterministic).

    Example:
        >>> order, p = select_slates(np.array([[0.1, 0.9, 0.5]]), 2)
        >>> order.tolist(), p.tolist()
        ([[1, 2]], [[1.0, 1.0]])
    """
    nb, K = scores.shape
    if not np.all(np.isfinite(scores)):
        raise IntentRankError(f"policy {name!r} returned NaN or infinite scores")
    if not stochastic:
        return top_s(scores, S), np.ones((nb, S), dtype=np.float64)
    if rng is None:
        raise IntentRankError("select_slates: a stochastic policy needs rng")
    logits = scores / np.float32(temperature)
    keys = logits - np.log(
        -np.log(rng.random((nb, K), dtype=np.float32) + np.float32(1e-12)) + np.float32(1e-12)
    )
    order = top_s(keys, S)
    m = logits.max(axis=1, keepdims=True)
    e = np.exp((logits - m).astype(np.float64))
    z = e.sum(axis=1, keepdims=True)
    chosen = np.take_along_axis(e, order, axis=1)
    remaining = z - (np.cumsum(chosen, axis=1) - chosen)
    propensity = np.clip(chosen / remaining, 1e-12, 1.0)
    return order, propensity
