"""Multi-task losses, kept apart from the models.

- click: BCE over all impressions (row weights ``w``);
- dwell: squared error of log1p(seconds), on clicked rows only (time *given* a click);
- conversion: with ESMM, BCE of pCTCVR against click ∧ conversion over all impressions; without
  ESMM, BCE of pCVR on clicked rows only.
Each term is a weighted mean; the total is the task-weighted sum.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from intentrank.ranking.config import TaskWeights


def _wmean(values: Tensor, weights: Tensor) -> Tensor:
    return (values * weights).sum() / weights.sum().clamp(min=1e-12)


def multitask_loss(
    out: dict[str, Tensor], batch: dict[str, Tensor], weights: TaskWeights, esmm: bool
) -> tuple[Tensor, dict[str, Tensor]]:
    """(total loss, per-task losses) for the ranker's heads."""
    w = batch["w"]
    y_click = batch["y_click"]
    clicked = batch.get("clicked", y_click)
    parts: dict[str, Tensor] = {}
    parts["click"] = _wmean(F.binary_cross_entropy_with_logits(out["click"], y_click, reduction="none"), w)
    w_clicked = w * clicked
    parts["dwell"] = _wmean((out["dwell"] - batch["y_dwell"]) ** 2, w_clicked)
    if esmm:
        y_ctcvr = clicked * batch["y_conversion"]
        parts["conversion"] = _wmean(
            F.binary_cross_entropy_with_logits(out["ctcvr"], y_ctcvr, reduction="none"), w
        )
    else:
        parts["conversion"] = _wmean(
            F.binary_cross_entropy_with_logits(out["conversion"], batch["y_conversion"], reduction="none"),
            w_clicked,
        )
    total = (
        weights.click * parts["click"]
        + weights.dwell * parts["dwell"]
        + weights.conversion * parts["conversion"]
    )
    return total, parts


def binary_tasks_loss(out: dict[str, Tensor], labels: dict[str, Tensor]) -> Tensor:
    """Sum of unweighted BCE losses over binary tasks (generic multi-task training, e.g. Census-Income)."""
    return torch.stack([F.binary_cross_entropy_with_logits(out[t], y) for t, y in labels.items()]).sum()
