"""ESMM (Ma et al., SIGIR 2018): pCTCVR = pCTR · pCVR, so CVR is learned over the entire impression space.

Computed in log space and returned as a logit, so the loss can use a stable BCE-with-logits and
σ(ctcvr) ≤ σ(click) holds exactly, also under rounding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x < 0, accurate on both sides of -ln 2."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def ctcvr_logit(click_logit: Tensor, cvr_logit: Tensor) -> Tensor:
    """logit(σ(click_logit) · σ(cvr_logit))."""
    log_p = (F.logsigmoid(click_logit) + F.logsigmoid(cvr_logit)).clamp(max=-1e-6)
    logit = log_p - _log1mexp(log_p)
    # mathematically logit(σ(a)σ(b)) ≤ min(a, b); enforce it against rounding in the log-space round trip
    return torch.minimum(logit, torch.minimum(click_logit, cvr_logit))
