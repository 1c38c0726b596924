"""Heuristic post-processing: multiply any ranking score by the adjustable sigmoid f(c; h, l, d, w).

    f(c) = (1 - w) + w / (1 + ((1 - d) / d) ** ((2c - h - l) / (h - l)))

The sigmoid part equals ``1 - d`` at ``c = l`` and ``d`` at ``c = h``; ``w`` scales it, so f lies in
``[1 - w, 1]`` and is non-increasing in c for ``d < 0.5``. It is model-agnostic: it needs only the
scores and the items' clickbait scores, so it works on a plain CTR model, the multi-task ranker
(``RankerPolicy(post_processors=[penalty])``) and any simulator policy (:class:`PenalizedPolicy`).

Numerics: the power is rewritten as a logistic, ``1 / (1 + exp(k·t)) = sigmoid(-k·t)`` with
``k = ln((1-d)/d)``, ``t = (2c-h-l)/(h-l)``, which never overflows; the log-space form uses
``logaddexp``/``logsigmoid`` so ``log f`` stays finite even for ``w = 1``.

References:
    "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz): the heuristic
    post-processing method and its adjustable sigmoid (parameters h, l, d, w).
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np
import torch
from scipy.special import expit

from intentrank.errors import DataError
from intentrank.mitigation.config import HeuristicMethod
from intentrank.mitigation.validation import validate_method

ArrayLike = np.ndarray | torch.Tensor


class HeuristicPenalty:
    """The adjustable sigmoid f(c; h, l, d, w) and the post-processor that applies it to scores.

    Call it as a post-processor ``penalty(scores, clickbait) -> scores`` (the ``RankerPolicy``
    contract), or evaluate ``penalty.f(c)`` / ``penalty.log_f(c)`` directly. NumPy in, NumPy out;
    torch in, torch out (differentiable).

    ``f(c) = (1 - w) + w / (1 + ((1 - d) / d) ** ((2c - h - l) / (h - l)))``: about 1 for clean items,
    ``1 - w + w(1 - d)`` at ``c = l``, ``1 - w + w·d`` at ``c = h``, towards ``1 - w`` for heavy clickbait.
    It needs no retraining, so it works on top of any ranker.

    Args:
        l: Clickbait score where the penalty starts (``f = 1 - w·d``); the paper's l.
        h: Clickbait score where it is nearly complete (``f = 1 - w + w·d``); must exceed ``l``.
        d: Sharpness, in (0, 0.5): the sigmoid's distance from its asymptotes at l and h.
        w: Strength in [0, 1]: the largest share of a score taken away.
        score_space: ``"linear"`` multiplies non-negative scores by f; ``"log"`` adds log f to logits or
            log-scores.

    Raises:
        ConfigError: Parameters out of range (via the mitigation config's validation).

    Example:
        >>> import numpy as np
        >>> penalty = HeuristicPenalty(l=0.4, h=0.7, d=0.1, w=0.5)
        >>> penalty.f(np.array([0.4, 0.7])).round(3)
        array([0.95, 0.55])
        >>> penalty(np.array([0.2, 0.2]), clickbait=np.array([0.0, 1.0])).round(3)  # scores · f(c)
        array([0.2, 0.1])

    References:
        "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz), heuristic post-processing.
    """

    def __init__(
        self,
        l: float = 0.4,  # noqa: E741 (the paper's name)
        h: float = 0.7,
        d: float = 0.1,
        w: float = 0.5,
        score_space: Literal["linear", "log"] = "linear",
    ) -> None:
        cfg = validate_method(HeuristicMethod, "heuristic", l=l, h=h, d=d, w=w, score_space=score_space)
        self.config = cfg
        self.l, self.h, self.d, self.w = cfg.l, cfg.h, cfg.d, cfg.w
        self.score_space = cfg.score_space
        self._k = math.log((1.0 - cfg.d) / cfg.d)  # > 0 since d < 0.5

    @classmethod
    def from_config(cls, cfg: HeuristicMethod) -> HeuristicPenalty:
        """Build from a validated config entry."""
        return cls(l=cfg.l, h=cfg.h, d=cfg.d, w=cfg.w, score_space=cfg.score_space)

    def __repr__(self) -> str:
        p = f"l={self.l}, h={self.h}, d={self.d}, w={self.w}"
        return f"HeuristicPenalty({p}, score_space={self.score_space!r})"

    # -- f and log f -------------------------------------------------------------------------------
    def _kt(self, c: ArrayLike) -> ArrayLike:
        return self._k * (2.0 * c - self.h - self.l) / (self.h - self.l)

    @overload
    def f(self, c: np.ndarray) -> np.ndarray: ...
    @overload
    def f(self, c: torch.Tensor) -> torch.Tensor: ...
    def f(self, c: ArrayLike) -> ArrayLike:
        """The penalty factor, elementwise.

        Args:
            c: Clickbait scores in [0, 1], any shape (NumPy or torch).

        Returns:
            f(c) in [1 - w, 1], the same shape and kind as ``c``.

        Raises:
            DataError: A score outside [0, 1] or not finite.
        """
        if isinstance(c, torch.Tensor):
            _check_c(c)
            return (1.0 - self.w) + self.w * torch.sigmoid(-self._kt(c))
        c = _as_float_array(c)
        _check_c(c)
        return (1.0 - self.w) + self.w * expit(-self._kt(c))

    @overload
    def log_f(self, c: np.ndarray) -> np.ndarray: ...
    @overload
    def log_f(self, c: torch.Tensor) -> torch.Tensor: ...
    def log_f(self, c: ArrayLike) -> ArrayLike:
        """log f(c), finite for every valid c (also for w = 1), for log-space rankers.

        Args:
            c: Clickbait scores in [0, 1], any shape (NumPy or torch).

        Returns:
            log f(c) in [log(1 - w), 0], the same shape and kind as ``c``.
        """
        log1mw = math.log1p(-self.w) if self.w < 1.0 else -math.inf
        logw = math.log(self.w) if self.w > 0.0 else -math.inf
        if isinstance(c, torch.Tensor):
            _check_c(c)
            log_sig = torch.nn.functional.logsigmoid(-self._kt(c))
            return torch.logaddexp(torch.full_like(log_sig, log1mw), logw + log_sig)
        c = _as_float_array(c)
        _check_c(c)
        log_sig = -np.logaddexp(0.0, self._kt(c))
        return np.logaddexp(log1mw, logw + log_sig)

    # -- post-processor ----------------------------------------------------------------------------
    def __call__(self, scores: ArrayLike, clickbait: ArrayLike) -> ArrayLike:
        """Penalise scores: ``scores · f(c)`` (linear) or ``scores + log f(c)`` (log space).

        Args:
            scores: Ranking scores, any shape (non-negative in linear space).
            clickbait: The items' clickbait scores in [0, 1], the same shape.

        Returns:
            Penalised scores, the same shape and kind as ``scores`` (NumPy float64 for NumPy input).

        Raises:
            DataError: Shapes differ, negative scores in linear space, or invalid clickbait scores.
        """
        if tuple(scores.shape) != tuple(clickbait.shape):
            raise DataError(
                f"heuristic: scores shape {tuple(scores.shape)} != clickbait shape {tuple(clickbait.shape)}"
            )
        if self.score_space == "log":
            return scores + self.log_f(clickbait)
        if isinstance(scores, torch.Tensor):
            if bool((scores < 0).any()):
                raise DataError(_NEG_MSG)
            return scores * self.f(clickbait.to(scores.dtype))
        scores = np.asarray(scores, dtype=np.float64)
        if np.any(scores < 0):
            raise DataError(_NEG_MSG)
        return scores * self.f(np.asarray(clickbait))


_NEG_MSG = (
    "heuristic: negative scores cannot be penalised by multiplication (a factor < 1 would raise them); "
    "use score_space='log' for logit / log-score policies"
)


def _as_float_array(c: object) -> np.ndarray:
    arr = np.asarray(c, dtype=np.float64)
    return arr


def _check_c(c: ArrayLike) -> None:
    if isinstance(c, torch.Tensor):
        bad = ~torch.isfinite(c) | (c < 0) | (c > 1)
        if bool(bad.any()):
            raise DataError(
                f"heuristic: clickbait scores must be finite and in [0, 1] (got {c[bad][0].item()!r})"
            )
        return
    bad = ~np.isfinite(c) | (c < 0) | (c > 1)
    if np.any(bad):
        raise DataError(f"heuristic: clickbait scores must be finite and in [0, 1] (got {c[bad].flat[0]!r})")
