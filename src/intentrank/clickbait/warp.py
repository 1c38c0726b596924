"""A strictly increasing piecewise-linear map of the ensemble's raw output, pinned at a decision point.

Why: Stop Clickbait is scored by the decision threshold (0.5), Webis-17 by rank (AUC) and squared error
to ``truth_mean``. On the validation split the stack separates Stop titles best at a raw value ``t*``
below 0.5. A strictly increasing map ``g`` with ``g(t*) = threshold`` moves the Stop boundary there
without changing any Webis ranking (AUC is invariant), and its remaining freedom is a least-squares fit to
Webis ``truth_mean`` so the score stays on that scale. Outside the knots ``g`` continues with slope 1.
Scoring needs only ``np.interp``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: interior knots (besides the pinned one) of the map; knots closer than 0.03 to the pin are dropped
BASE_KNOTS = tuple(np.round(np.arange(0.0, 1.001, 0.1), 2).tolist())


def best_threshold(raw: np.ndarray, label: np.ndarray, grid: np.ndarray | None = None) -> float:
    """The raw value on ``grid`` (default 0.30..0.55 by 0.01) with the best accuracy ``(raw >= t) == label``.

    Ties go to the grid point nearest 0.5 (the smallest move).
    """
    g = np.round(np.arange(0.30, 0.5501, 0.01), 2) if grid is None else np.asarray(grid, dtype=np.float64)
    lab = np.asarray(label).astype(bool)
    acc = ((raw[None, :] >= g[:, None]) == lab[None, :]).mean(1)
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    return float(g[best[np.argmin(np.abs(g[best] - 0.5))]])


class MonotoneWarp:
    """``g(x)``: piecewise linear through ``(knots, values)``, slope 1 beyond the end knots."""

    def __init__(self, knots: np.ndarray, values: np.ndarray) -> None:
        self.knots = np.asarray(knots, dtype=np.float64)
        self.values = np.asarray(values, dtype=np.float64)
        if self.knots.ndim != 1 or self.knots.shape != self.values.shape or len(self.knots) < 2:
            raise ValueError("warp knots and values must be 1-D arrays of the same length >= 2")
        if (np.diff(self.knots) <= 0).any() or (np.diff(self.values) <= 0).any():
            raise ValueError("warp knots and values must be strictly increasing")

    @classmethod
    def fit(
        cls,
        raw: np.ndarray,
        y: np.ndarray,
        w: np.ndarray,
        pin: float,
        pin_value: float = 0.5,
        min_slope: float = 0.05,
    ) -> MonotoneWarp:
        """Weighted least squares of ``y`` on ``g(raw)``, ``g(pin) = pin_value``, slopes >= ``min_slope``."""
        from scipy.optimize import lsq_linear

        knots = np.array(sorted({k for k in BASE_KNOTS if abs(k - pin) > 0.03} | {float(pin)}))
        K = len(knots)
        eye = np.eye(K)
        raw = np.asarray(raw, dtype=np.float64)
        phi = np.stack([np.interp(raw, knots, eye[k]) for k in range(K)], 1)
        ext = _interp_lin(raw, knots, np.zeros(K))  # the slope-1 continuation, independent of the values
        cum = np.tril(np.ones((K, K)))  # values = cum @ d: d[0] = first value, d[k] = increments
        s = np.sqrt(np.asarray(w, dtype=np.float64))
        ip = int(np.flatnonzero(knots == pin)[0])
        big = 1e3 * max(1.0, float(s.sum()))
        A = np.vstack([(phi @ cum) * s[:, None], big * cum[ip]])
        b = np.r_[(np.asarray(y, dtype=np.float64) - ext) * s, big * pin_value]
        lb = np.r_[-np.inf, min_slope * np.diff(knots)]
        d = lsq_linear(A, b, bounds=(lb, np.full(K, np.inf))).x
        values = cum @ d
        values += pin_value - values[ip]  # exact pin despite the finite penalty
        return cls(knots, values)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        return _interp_lin(np.asarray(raw, dtype=np.float64), self.knots, self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"knots": self.knots.tolist(), "values": self.values.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonotoneWarp:
        return cls(np.asarray(d["knots"]), np.asarray(d["values"]))


def _interp_lin(x: np.ndarray, knots: np.ndarray, values: np.ndarray) -> np.ndarray:
    """np.interp inside the knots, continued with slope 1 (of ``x``) outside them."""
    return np.interp(x, knots, values) + np.minimum(x - knots[0], 0.0) + np.maximum(x - knots[-1], 0.0)
