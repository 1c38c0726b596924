"""Multi-task losses, kept apart from the models.

- click: BCE over all impressions (row weights ``w``);
- dwell: squared error of log1p(seconds), on clicked rows only (time *given* a click); or
  (``dwell_loss="poisson"``) the Poisson deviance of seconds + 1 under a log link, whose minimiser is
  log1p of the *arithmetic* mean time given a click (the mean of log time is a geometric mean, which
  counts an item that bounces half its readers far lower than its expected seconds do);
- conversion: with ESMM, BCE of pCTCVR against click ∧ conversion over all impressions; without
  ESMM, BCE of pCVR on clicked rows only.
Each term is a weighted mean; the total is the task-weighted sum.

References:
    X. Ma et al., "Entire Space Multi-Task Model: An Effective Approach for Estimating Post-Click
    Conversion Rate", SIGIR 2018 (the conversion term with ESMM).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from intentrank.ranking.config import TaskWeights


def _wmean(values: Tensor, weights: Tensor) -> Tensor:
    return (values * weights).sum() / weights.sum().clamp(min=1e-12)


def poisson_log1p_deviance(f: Tensor, y_log1p: Tensor, weights: Tensor) -> Tensor:
    """Weighted mean Poisson deviance of ``y = exp(y_log1p)`` (seconds + 1) against ``μ = exp(f)``, divided
    by the weighted mean of y (detached; keeps the gradient's scale near 1 whatever the seconds). Its
    minimiser over f is ``log E[seconds + 1]`` = log1p of the mean seconds.

    Example:
        >>> import torch
        >>> y = torch.log1p(torch.tensor([2.0, 2.0]))
        >>> float(poisson_log1p_deviance(y, y, torch.ones(2)))  # zero at f = y
        0.0
    """
    f = f.clamp(max=20.0)
    y = torch.exp(y_log1p)
    dev = torch.exp(f) - y - y * (f - y_log1p)
    scale = _wmean(y, weights).detach().clamp(min=1.0)
    return _wmean(dev, weights) / scale


def multitask_loss(
    out: dict[str, Tensor],
    batch: dict[str, Tensor],
    weights: TaskWeights,
    esmm: bool,
    dwell_loss: str = "log_mse",
) -> tuple[Tensor, dict[str, Tensor]]:
    """The ranker's training loss: ``Σ_t weight_t · L_t`` over click, dwell and conversion.

    ``L_click = Σ w·BCE(click, y_click) / Σ w``; ``L_dwell = Σ w·c·(dwell - y_dwell)² / Σ w·c`` with c
    the clicked flag; ``L_conversion`` = BCE of ``ctcvr`` against c·y_conversion weighted by w (ESMM)
    or BCE of ``conversion`` against y_conversion weighted by w·c (clicked rows only).

    Args:
        out: Model outputs (B,) each: ``click``, ``dwell``, ``conversion`` (and ``ctcvr`` with ESMM).
        batch: Labels (B,) each: ``w`` row weight, ``y_click`` click target (0/1, or long click),
            ``y_dwell`` log1p seconds, ``y_conversion`` 0/1; optional ``clicked`` (0/1, default
            ``y_click``) marks the rows the dwell and CVR terms read.
        weights: Task weights.
        esmm: Fit the conversion term through ``ctcvr`` over all rows.
        dwell_loss: ``"log_mse"`` or ``"poisson"`` (:func:`poisson_log1p_deviance`).

    Returns:
        (total loss, per-task losses): scalar tensors; the total keeps the graph for ``backward``.

    Example:
        >>> import torch
        >>> from intentrank.ranking.config import TaskWeights
        >>> out = {"click": torch.zeros(2), "dwell": torch.zeros(2), "conversion": torch.zeros(2)}
        >>> batch = {"w": torch.ones(2), "y_click": torch.tensor([1.0, 0.0]),
        ...          "y_dwell": torch.tensor([2.0, 0.0]), "y_conversion": torch.tensor([1.0, 0.0])}
        >>> weights = TaskWeights(click=1, dwell=0.5, conversion=1)
        >>> total, parts = multitask_loss(out, batch, weights, esmm=False)
        >>> {k: round(float(v), 4) for k, v in parts.items()}  # BCE at logit 0 is ln 2
        {'click': 0.6931, 'dwell': 4.0, 'conversion': 0.6931}
        >>> round(float(total), 4)
        3.3863
    """
    w = batch["w"]
    y_click = batch["y_click"]
    clicked = batch.get("clicked", y_click)
    parts: dict[str, Tensor] = {}
    parts["click"] = _wmean(F.binary_cross_entropy_with_logits(out["click"], y_click, reduction="none"), w)
    w_clicked = w * clicked
    if dwell_loss == "poisson":
        parts["dwell"] = poisson_log1p_deviance(out["dwell"], batch["y_dwell"], w_clicked)
    else:
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
    """Sum of unweighted mean BCE losses over binary tasks (generic multi-task training, e.g. Census).

    Args:
        out: Task name → logits (B,).
        labels: Task name → 0/1 float labels (B,); the tasks summed are ``labels``' keys.

    Returns:
        Scalar tensor ``Σ_t mean BCE(out[t], labels[t])``.

    Example:
        >>> import torch
        >>> out = {"a": torch.zeros(3), "b": torch.zeros(3)}
        >>> round(float(binary_tasks_loss(out, {"a": torch.ones(3), "b": torch.zeros(3)})), 4)
        1.3863
    """
    return torch.stack([F.binary_cross_entropy_with_logits(out[t], y) for t, y in labels.items()]).sum()
