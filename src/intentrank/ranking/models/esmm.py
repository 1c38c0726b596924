"""ESMM (Ma et al., SIGIR 2018): pCTCVR = pCTR · pCVR, so CVR is learned over the entire impression space.

Computed in log space and returned as a logit, so the loss can use a stable BCE-with-logits and
σ(ctcvr) ≤ σ(click) holds exactly, also under rounding.

References:
    X. Ma, L. Zhao, G. Huang, Z. Wang, Z. Hu, X. Zhu, K. Gai. "Entire Space Multi-Task Model: An
    Effective Approach for Estimating Post-Click Conversion Rate". SIGIR 2018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x < 0, accurate on both sides of -ln 2."""
    return torch.where(x > -0.6931471805599453, torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def ctcvr_logit(click_logit: Tensor, cvr_logit: Tensor) -> Tensor:
    """ESMM's pCTCVR as a logit: ``logit(σ(click_logit) · σ(cvr_logit))``.

    Training pCTCVR = pCTR · pCVR against click ∧ conversion over all impressions lets pCVR learn from
    the entire impression space instead of the (biased, sparse) clicked rows only. Computed as
    ``log p - log(1 - p)`` with ``log p = logσ(a) + logσ(b)``, so it stays finite for large logits.

    Args:
        click_logit: Logit of P(click), any shape.
        cvr_logit: Logit of P(conversion | click), the same shape.

    Returns:
        The logit of P(click & conversion), the same shape; never above either input.

    Example:
        >>> import torch
        >>> a, b = torch.tensor([0.0, 2.0]), torch.tensor([0.0, -1.0])
        >>> torch.sigmoid(ctcvr_logit(a, b))
        tensor([0.2500, 0.2369])
        >>> torch.sigmoid(a) * torch.sigmoid(b)
        tensor([0.2500, 0.2369])

    References:
        Ma et al., "Entire Space Multi-Task Model", SIGIR 2018.
    """
    log_p = (F.logsigmoid(click_logit) + F.logsigmoid(cvr_logit)).clamp(max=-1e-6)
    logit = log_p - _log1mexp(log_p)
    # mathematically logit(σ(a)σ(b)) ≤ min(a, b); enforce it against rounding in the log-space round trip
    return torch.minimum(logit, torch.minimum(click_logit, cvr_logit))
