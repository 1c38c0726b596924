"""Ordering: scores → slates, deterministically (top-S) or by Plackett–Luce sampling with propensities.

For a stochastic policy the slate is a Plackett–Luce sample over ``softmax(scores / T)`` drawn with the
Gumbel top-k trick; each impression's propensity is the probability of that pick given the items above
it, ``p_k = exp(s_k/T) / Σ_{j not yet picked} exp(s_j/T)`` (for position 0, exactly the probability of
being shown first; the product down to position k is the slate-prefix (cascade) probability).

ε-uniform mixing (``epsilon``): with probability ε the whole slate is drawn uniformly at random instead
(every ordered slate of distinct candidates equally likely), so every candidate has a positive chance at
every position whatever the scores. The logged probabilities are those of the mixture:
cascade ``ε·Π_{j≤k} 1/(K−j) + (1−ε)·Π_{j≤k} p_j`` and conditional = cascade_k / cascade_{k−1}.

:func:`slate_probabilities` gives, for any given slates (logged by whichever policy), a policy's
conditional, cascade and item-position (marginal) probabilities — what off-policy evaluation needs of
the logging policy (at log time) and of a target policy (on the logged contexts). The Plackett–Luce
marginal ``P(item at position k)`` has no closed form beyond k = 0; it is estimated by Rao–Blackwellised
Monte Carlo over sampled prefixes (exact at position 0, unbiased elsewhere; see
:func:`plackett_luce_marginals`).

References:
    Plackett, "The Analysis of Permutations", JRSS C 1975; Luce, "Individual Choice Behavior", 1959.
    Kool, van Hoof, Welling, "Stochastic Beams and Where to Find Them: the Gumbel-Top-k Trick", ICML 2019.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    epsilon: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Slates from a (B, K) score matrix.

    Args:
        scores: (B, K) finite scores, higher = better.
        S: slate size (≤ K).
        stochastic: Plackett–Luce sampling instead of top-S.
        temperature: T of the softmax (stochastic only).
        rng: random generator (required when stochastic).
        name: the policy's name, for error messages.
        epsilon: probability that a row's slate is drawn uniformly at random instead (stochastic only).

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
    if epsilon > 0:
        uniform = rng.random(nb) < epsilon
        logits = np.where(uniform[:, None], np.float32(0.0), logits)
    keys = logits - np.log(
        -np.log(rng.random((nb, K), dtype=np.float32) + np.float32(1e-12)) + np.float32(1e-12)
    )
    order = top_s(keys, S)
    if epsilon > 0:
        logits = scores / np.float32(temperature)
    return order, _mixture_conditional(logits, order, epsilon)


def _pl_conditional(logits: np.ndarray, order: np.ndarray) -> np.ndarray:
    """(B, S) Plackett–Luce probability of each pick of ``order`` given the picks above it."""
    m = logits.max(axis=1, keepdims=True)
    e = np.exp((logits - m).astype(np.float64))
    z = e.sum(axis=1, keepdims=True)
    chosen = np.take_along_axis(e, order, axis=1)
    remaining = z - (np.cumsum(chosen, axis=1) - chosen)
    return np.clip(chosen / remaining, 1e-300, 1.0)


def _uniform_cascade(K: int, S: int) -> np.ndarray:
    """(S,) probability of a given ordered prefix of length k+1 when S of K are drawn uniformly in order."""
    return np.cumprod(1.0 / (K - np.arange(S, dtype=np.float64)))


def _mixture_conditional(logits: np.ndarray, order: np.ndarray, epsilon: float) -> np.ndarray:
    cond = _pl_conditional(logits, order)
    if epsilon <= 0:
        return np.clip(cond, 1e-12, 1.0)
    cascade = _mixture_cascade(cond, logits.shape[1], epsilon)
    prev = np.concatenate([np.ones((len(cascade), 1)), cascade[:, :-1]], axis=1)
    return np.clip(cascade / prev, 1e-12, 1.0)


def _mixture_cascade(cond: np.ndarray, K: int, epsilon: float) -> np.ndarray:
    pl = np.cumprod(cond, axis=1)
    if epsilon <= 0:
        return pl
    return epsilon * _uniform_cascade(K, cond.shape[1])[None, :] + (1.0 - epsilon) * pl


def plackett_luce_marginals(
    logits: np.ndarray,
    S: int,
    *,
    items: np.ndarray | None = None,
    positions: np.ndarray | None = None,
    n_samples: int = 256,
    rng: np.random.Generator,
    chunk_elements: int = 4_000_000,
) -> np.ndarray:
    """Item-position probabilities ``P(item at position k)`` of a Plackett–Luce ranking, softmax(logits).

    Rao–Blackwellised Monte Carlo: draw ``n_samples`` rankings (Gumbel top-S); for each, the probability
    that item ``i`` is picked at position ``k`` given the sampled prefix above ``k`` is
    ``1[i not in prefix] · e^{l_i} / (Σ_j e^{l_j} − Σ_{prefix} e^{l_j})``; its mean over samples is an
    unbiased estimate of the marginal (exact at k = 0, where the prefix is empty), with far less noise than
    counting how often ``i`` lands at ``k``.

    Args:
        logits: (B, K) log-weights.
        S: ranking length (positions 0..S-1).
        items, positions: optional (B, L) column indices and 0-based positions: return only
            ``P(items[b, l] at positions[b, l])``, shape (B, L). Without them, the full (B, K, S) matrix.
        n_samples: Monte Carlo rankings per row.
        rng: random generator.
    """
    logits = np.asarray(logits, dtype=np.float64)
    B, K = logits.shape
    w = np.exp(logits - logits.max(axis=1, keepdims=True))
    W = w.sum(axis=1)
    want = items is not None
    out = np.empty((B, items.shape[1]) if want else (B, K, S))  # type: ignore[union-attr]
    step = max(1, chunk_elements // max(1, n_samples * K))
    for b0 in range(0, B, step):
        sl = slice(b0, b0 + step)
        lg, wb, Wb = logits[sl], w[sl], W[sl]
        nb = len(lg)
        # exponential race: item j arrives at E_j / w_j; the ranking is the order of arrival
        arrival = rng.standard_exponential((nb, n_samples, K), dtype=np.float32) * np.exp(
            -(lg - lg.max(axis=1, keepdims=True))
        ).astype(np.float32)[:, None, :]
        samp = top_s(-arrival.reshape(nb * n_samples, K), S).reshape(nb, n_samples, S)  # sampled rankings
        cw = np.cumsum(np.take_along_axis(wb[:, None, :], samp, axis=2), axis=2)
        before = np.concatenate([np.zeros((nb, n_samples, 1)), cw[:, :, :-1]], axis=2)
        denom = Wb[:, None, None] - before  # (nb, M, S): weight left before each position
        if want:
            it, pos = items[sl], positions[sl]  # type: ignore[index]
            eq = samp[:, :, :, None] == it[:, None, None, :]  # (nb, M, S, L)
            rank = np.where(eq.any(axis=2), eq.argmax(axis=2), S)  # sampled position of each item
            d = np.take_along_axis(denom, np.broadcast_to(pos[:, None, :], rank.shape), axis=2)
            wi = np.take_along_axis(wb, it, axis=1)[:, None, :]
            out[sl] = np.mean((rank >= pos[:, None, :]) * wi / d, axis=1)
        else:
            rank = np.full((nb, n_samples, K), S, dtype=np.int64)  # sampled position of every item
            np.put_along_axis(rank, samp, np.broadcast_to(np.arange(S), samp.shape), axis=2)
            for k in range(S):
                out[sl, :, k] = np.mean((rank >= k) * wb[:, None, :] / denom[:, :, k : k + 1], axis=1)
    return np.clip(out, 0.0, 1.0)


@dataclass(frozen=True)
class SlateProbabilities:
    """A policy's probabilities of given slates, (B, S) each, per position (0-based) of the slate.

    ``conditional``: P(this pick | the picks above it); ``cascade``: P(the slate's prefix down to here) =
    the product of the conditionals; ``marginal``: P(this item at this position) (item-position propensity).
    For a deterministic policy all three are 1 where the slate agrees with the policy's top-S and 0 where
    it does not.
    """

    conditional: np.ndarray
    cascade: np.ndarray
    marginal: np.ndarray


def slate_probabilities(
    scores: np.ndarray,
    order: np.ndarray,
    *,
    stochastic: bool = False,
    temperature: float = 1.0,
    epsilon: float = 0.0,
    n_samples: int = 256,
    rng: np.random.Generator | None = None,
) -> SlateProbabilities:
    """Probabilities that a policy with these ``scores`` (B, K) would show the slates ``order`` (B, S).

    ``order`` holds candidate columns best first (what :func:`select_slates` returns, or a logged slate
    mapped back to its candidates). Deterministic policies: indicators of agreement with :func:`top_s`.
    Stochastic (Plackett–Luce at ``temperature`` with ε-uniform mixing): conditional and cascade exactly,
    the marginal as ``ε/K + (1 − ε)·P_PL(item at k)`` with :func:`plackett_luce_marginals` (``n_samples``
    rankings; exact at position 0).

    Example:
        >>> p = slate_probabilities(np.zeros((1, 4)), np.array([[2, 0]]), stochastic=True,
        ...                         rng=np.random.default_rng(0))
        >>> np.round(p.cascade, 4).tolist(), float(p.marginal[0, 0])  # position 0: exact
        ([[0.25, 0.0833]], 0.25)
    """
    scores = np.asarray(scores, dtype=np.float64)
    order = np.asarray(order, dtype=np.int64)
    B, K = scores.shape
    S = order.shape[1]
    if order.shape[0] != B or (order.size and (order.min() < 0 or order.max() >= K)):
        raise IntentRankError(
            f"slate_probabilities: order {order.shape} does not index scores {scores.shape}"
        )
    if not stochastic:
        agree = (top_s(scores, S) == order).astype(np.float64)
        cascade = np.cumprod(agree, axis=1)
        prev = np.concatenate([np.ones((B, 1)), cascade[:, :-1]], axis=1)
        return SlateProbabilities(np.where(prev > 0, agree, 0.0), cascade, agree)
    if rng is None:
        raise IntentRankError("slate_probabilities: a stochastic policy needs rng (for the marginals)")
    logits = scores / temperature
    cond = _pl_conditional(logits, order)
    cascade = _mixture_cascade(cond, K, epsilon)
    prev = np.concatenate([np.ones((B, 1)), cascade[:, :-1]], axis=1)
    pos = np.broadcast_to(np.arange(S), order.shape)
    marg = plackett_luce_marginals(logits, S, items=order, positions=pos, n_samples=n_samples, rng=rng)
    # position 0: exact, whatever the Monte Carlo
    marg[:, 0] = cond[:, 0]
    marginal = epsilon / K + (1.0 - epsilon) * marg
    # the prefix ending here is one way of placing the item here: the marginal is at least the cascade
    # (Monte Carlo noise could put it below)
    marginal = np.maximum(marginal, cascade)
    return SlateProbabilities(np.clip(cascade / prev, 0.0, 1.0), cascade, np.clip(marginal, 0.0, 1.0))


def marginal_matrix(
    scores: np.ndarray,
    S: int,
    *,
    stochastic: bool = False,
    temperature: float = 1.0,
    epsilon: float = 0.0,
    n_samples: int = 256,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """(B, K, S): the policy's probability of each candidate at each position (one-hot if deterministic)."""
    scores = np.asarray(scores, dtype=np.float64)
    B, K = scores.shape
    if not stochastic:
        out = np.zeros((B, K, S))
        top = top_s(scores, S)
        out[np.arange(B)[:, None], top, np.arange(S)[None, :]] = 1.0
        return out
    if rng is None:
        raise IntentRankError("marginal_matrix: a stochastic policy needs rng")
    m = plackett_luce_marginals(scores / temperature, S, n_samples=n_samples, rng=rng)
    return epsilon / K + (1.0 - epsilon) * m
