"""The ranker's outputs in natural units, in one place.

The model's heads are logits / log-seconds (:class:`intentrank.ranking.models.multitask.MultiTaskRanker`):
``click`` (logit of P(click)), ``dwell`` (log1p seconds given a click), ``conversion`` (logit of
P(conversion | click)). Serving, evaluation and RL alignment read them as probabilities and seconds —
:func:`natural_units` — or, where they must stay finite and differentiable, in log space —
:func:`log_natural_units`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: Floor of the predicted time (seconds) in log space, so log time stays finite.
MIN_TIME_S = 1e-3


def natural_units(out: dict[str, Tensor]) -> dict[str, Tensor]:
    """``p_click`` = σ(click), ``time`` = max(expm1(dwell), 0) seconds, ``p_conv`` = σ(conversion).

    Args:
        out: the model's outputs, tensors of shape (B,) keyed ``click``, ``dwell``, ``conversion``.

    Returns:
        Tensors of shape (B,) keyed ``p_click``, ``time``, ``p_conv``.

    Example:
        >>> u = natural_units({"click": torch.zeros(1), "dwell": torch.log1p(torch.tensor([9.0])),
        ...                    "conversion": torch.zeros(1)})
        >>> [round(float(u[k][0]), 3) for k in ("p_click", "time", "p_conv")]
        [0.5, 9.0, 0.5]
    """
    return {
        "p_click": torch.sigmoid(out["click"]),
        "time": torch.expm1(out["dwell"]).clamp(min=0.0),
        "p_conv": torch.sigmoid(out["conversion"]),
    }


def log_natural_units(out: dict[str, Tensor]) -> dict[str, Tensor]:
    """log p_click, log time (time floored at :data:`MIN_TIME_S`) and log p_conv, computed from the logits
    (``logsigmoid``) so they stay finite and differentiable; keys ``p_click``, ``time``, ``p_conv``."""
    return {
        "p_click": F.logsigmoid(out["click"]),
        "time": torch.log(torch.expm1(out["dwell"]).clamp(min=MIN_TIME_S)),
        "p_conv": F.logsigmoid(out["conversion"]),
    }
