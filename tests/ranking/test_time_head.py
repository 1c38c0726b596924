"""The time head's loss: log-MSE predicts the mean of log time, the Poisson deviance the mean time."""

from __future__ import annotations

import math

import pytest
import torch

from intentrank.ranking.config import TaskWeights
from intentrank.ranking.losses import multitask_loss


def _argmin(dwell_loss: str, seconds: torch.Tensor) -> float:
    """The constant dwell output minimising the loss over clicked rows."""
    n = len(seconds)
    batch = {"w": torch.ones(n), "y_click": torch.ones(n), "y_dwell": torch.log1p(seconds),
             "y_conversion": torch.zeros(n)}  # fmt: skip
    weights = TaskWeights(click=0.0, dwell=1.0, conversion=0.0)

    def loss(f: float) -> float:
        out = {"click": torch.zeros(n), "dwell": torch.full((n,), f), "conversion": torch.zeros(n)}
        return float(multitask_loss(out, batch, weights, esmm=False, dwell_loss=dwell_loss)[0])

    lo, hi = 0.0, 8.0  # both losses are convex in f: ternary search
    for _ in range(60):
        a, b = lo + (hi - lo) / 3, hi - (hi - lo) / 3
        lo, hi = (lo, b) if loss(a) < loss(b) else (a, hi)
    return (lo + hi) / 2


def test_poisson_time_head_predicts_the_mean_seconds_of_a_bounce_mixture() -> None:
    seconds = torch.tensor([3.0] * 5 + [120.0] * 5)  # half bounce, half read
    mean = float(seconds.mean())
    assert math.expm1(_argmin("poisson", seconds)) == pytest.approx(mean, rel=2e-3)
    geometric = float(torch.exp(torch.log1p(seconds).mean()) - 1)
    assert math.expm1(_argmin("log_mse", seconds)) == pytest.approx(geometric, rel=2e-3)
    assert geometric < 0.4 * mean  # the log-MSE head counts the bouncy item far below its mean time
