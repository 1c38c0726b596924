"""Baseline: adversarial learning by gradient negation of an auxiliary task predicting c.

An auxiliary head reads the ranker's shared representation ``model.encode(batch)`` through a
gradient-reversal layer and predicts the clickbait score c (binary cross-entropy with the soft
target c). The head learns to predict c; the reversed gradient pushes the encoder to make c
*unpredictable* from its representation, so the task heads cannot lean on clickbaitness.

Trainer wiring: the head goes into ``extra_modules`` (so its parameters are optimised) and
:class:`AdversarialLoss` into ``extra_losses``. The loss hook receives only (logits, batch), so it
calls ``model.encode(batch)`` itself — one extra encoder pass per batch, no change to the ranker.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from intentrank.errors import ConfigError, DataError
from intentrank.mitigation.config import AdversarialMethod
from intentrank.mitigation.validation import validate_method


class _GradReverse(torch.autograd.Function):
    """Identity forward; backward multiplies the incoming gradient by ``-strength``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, strength: float) -> Tensor:
        ctx.strength = strength
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return -ctx.strength * grad, None


def grad_reverse(x: Tensor, strength: float = 1.0) -> Tensor:
    """Gradient reversal: ``y = x`` forward, ``dL/dx = -strength · dL/dy`` backward."""
    return _GradReverse.apply(x, strength)


class GradientReversal(nn.Module):
    """Gradient reversal as a layer (for use in ``nn.Sequential``)."""

    def __init__(self, strength: float = 1.0) -> None:
        super().__init__()
        if strength < 0:
            raise ConfigError(f"adversarial.reversal: must be >= 0 (got {strength})")
        self.strength = strength

    def forward(self, x: Tensor) -> Tensor:
        return grad_reverse(x, self.strength)

    def extra_repr(self) -> str:
        return f"strength={self.strength}"


class Encoder(Protocol):
    def encode(self, batch: dict[str, Tensor]) -> Tensor: ...


class AdversarialHead(nn.Module):
    """Predicts the logit of c from a representation, behind a gradient-reversal layer."""

    def __init__(self, in_dim: int, hidden: int = 32, reversal: float = 1.0) -> None:
        super().__init__()
        self.reverse = GradientReversal(reversal)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, h: Tensor) -> Tensor:
        return self.net(self.reverse(h)).squeeze(-1)


class AdversarialLoss:
    """``extra_losses`` hook: ``weight · BCE(head(GRL(model.encode(batch))), c)``."""

    def __init__(
        self, model: Encoder, head: AdversarialHead, weight: float = 1.0, feature: str = "clickbait_score"
    ):
        if weight < 0:
            raise ConfigError(f"adversarial.weight: must be >= 0 (got {weight})")
        self.model, self.head, self.weight, self.feature = model, head, weight, feature

    def __call__(self, logits: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor:
        if self.feature not in batch:
            raise DataError(f"adversarial: batch has no '{self.feature}' feature (has {sorted(batch)})")
        h = self.model.encode(batch)
        pred = self.head(h)
        target = batch[self.feature].reshape(-1).to(pred.dtype)
        return self.weight * F.binary_cross_entropy_with_logits(pred, target)


def build_adversarial(
    model: Encoder, cfg: AdversarialMethod | None = None, in_dim: int | None = None, **params: Any
) -> tuple[AdversarialHead, AdversarialLoss]:
    """Head + loss hook for ``model``. ``in_dim`` defaults to the width of ``model.encode`` on a probe
    batch, so pass it explicitly when no batch is at hand."""
    if cfg is None:
        cfg = validate_method(AdversarialMethod, "adversarial", **params)
    if in_dim is None:
        in_dim = _encoder_width(model)
    head = AdversarialHead(in_dim, hidden=cfg.hidden, reversal=cfg.reversal)
    return head, AdversarialLoss(model, head, weight=cfg.weight, feature=cfg.feature)


def _encoder_width(model: Any) -> int:
    for attr in ("encode_dim", "output_dim", "hidden_dim", "repr_dim"):
        v = getattr(model, attr, None)
        if isinstance(v, int):
            return v
    raise ConfigError("adversarial: cannot infer the width of model.encode(); pass in_dim")
