"""Baseline: adversarial learning by gradient negation of an auxiliary task predicting c.

An auxiliary head reads the ranker's shared representation ``model.encode(batch)`` through a
gradient-reversal layer and predicts the clickbait score c (binary cross-entropy with the soft
target c). The head learns to predict c; the reversed gradient pushes the encoder to make c
*unpredictable* from its representation, so the task heads cannot lean on clickbaitness.

Trainer wiring: the head goes into ``extra_modules`` (so its parameters are optimised) and
:class:`AdversarialLoss` into ``extra_losses``. The loss hook receives only (logits, batch), so it
calls ``model.encode(batch)`` itself — one extra encoder pass per batch, no change to the ranker.

References:
    Y. Ganin, V. Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015
    (the gradient reversal layer).
    "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz): adversarial learning as a baseline.
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
    """Gradient reversal: ``y = x`` forward, ``dL/dx = -strength · dL/dy`` backward.

    Args:
        x: Any tensor.
        strength: λ ≥ 0, the scale of the reversed gradient.

    Returns:
        ``x`` (a view), whose gradient is reversed.

    Example:
        >>> import torch
        >>> x = torch.ones(3, requires_grad=True)
        >>> grad_reverse(x, strength=0.5).sum().backward()
        >>> x.grad
        tensor([-0.5000, -0.5000, -0.5000])

    References:
        Y. Ganin, V. Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015.
    """
    return _GradReverse.apply(x, strength)


class GradientReversal(nn.Module):
    """Gradient reversal as a layer (for use in ``nn.Sequential``); see :func:`grad_reverse`.

    Args:
        strength: λ ≥ 0, the scale of the reversed gradient.

    Raises:
        ConfigError: A negative strength.

    Example:
        >>> import torch
        >>> GradientReversal(strength=2.0)(torch.ones(2, 3)).shape
        torch.Size([2, 3])

    References:
        Y. Ganin, V. Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015.
    """

    def __init__(self, strength: float = 1.0) -> None:
        super().__init__()
        if strength < 0:
            raise ConfigError(f"adversarial.reversal: must be >= 0 (got {strength})")
        self.strength = strength

    def forward(self, x: Tensor) -> Tensor:
        """Identity (any shape); the backward pass reverses and scales the gradient."""
        return grad_reverse(x, self.strength)

    def extra_repr(self) -> str:
        return f"strength={self.strength}"


class Encoder(Protocol):
    def encode(self, batch: dict[str, Tensor]) -> Tensor: ...


class AdversarialHead(nn.Module):
    """Predicts the logit of c from a representation, behind a gradient-reversal layer.

    ``GRL → Linear(in_dim, hidden) → ReLU → Linear(hidden, 1)``. Its own parameters learn to predict
    c; the encoder underneath receives the reversed gradient and unlearns c.

    Args:
        in_dim: Width H of the representation.
        hidden: Hidden units.
        reversal: λ of the gradient reversal.

    Example:
        >>> import torch
        >>> AdversarialHead(in_dim=16)(torch.randn(4, 16)).shape
        torch.Size([4])

    References:
        Y. Ganin, V. Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015.
    """

    def __init__(self, in_dim: int, hidden: int = 32, reversal: float = 1.0) -> None:
        super().__init__()
        self.reverse = GradientReversal(reversal)
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, h: Tensor) -> Tensor:
        """Representation (B, H) → logit of c (B,)."""
        return self.net(self.reverse(h)).squeeze(-1)


class AdversarialLoss:
    """``extra_losses`` hook: ``weight · BCE(head(GRL(model.encode(batch))), c)``.

    Args:
        model: The ranker (anything with ``encode(batch) -> (B, H)``).
        head: The adversarial head (also to be optimised: pass it in the trainer's ``extra_modules``).
        weight: Weight of the adversarial loss, ≥ 0.
        feature: Batch key of the clickbait score c (the soft BCE target).

    Raises:
        ConfigError: A negative weight.

    References:
        Y. Ganin, V. Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015;
        "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz).
    """

    def __init__(
        self, model: Encoder, head: AdversarialHead, weight: float = 1.0, feature: str = "clickbait_score"
    ):
        if weight < 0:
            raise ConfigError(f"adversarial.weight: must be >= 0 (got {weight})")
        self.model, self.head, self.weight, self.feature = model, head, weight, feature

    def __call__(self, logits: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor:
        """The weighted adversarial loss of one batch (scalar); ``logits`` is unused (hook signature).

        Raises:
            DataError: The batch has no ``feature``.
        """
        if self.feature not in batch:
            raise DataError(f"adversarial: batch has no '{self.feature}' feature (has {sorted(batch)})")
        h = self.model.encode(batch)
        pred = self.head(h)
        target = batch[self.feature].reshape(-1).to(pred.dtype)
        return self.weight * F.binary_cross_entropy_with_logits(pred, target)


def build_adversarial(
    model: Encoder, cfg: AdversarialMethod | None = None, in_dim: int | None = None, **params: Any
) -> tuple[AdversarialHead, AdversarialLoss]:
    """Head + loss hook for ``model``.

    Args:
        model: The ranker (``encode(batch) -> (B, H)``).
        cfg: The method's config; None = built from ``params`` (validated).
        in_dim: H; default the model's ``encode_dim`` (or ``output_dim``, ``hidden_dim``,
            ``repr_dim``); pass it when the model has none of them.
        **params: Fields of :class:`~intentrank.mitigation.config.AdversarialMethod` when ``cfg`` is None.

    Returns:
        (head for the trainer's ``extra_modules``, loss hook for its ``extra_losses``).

    Raises:
        ConfigError: Invalid parameters, or the width cannot be inferred.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> class Ranker(nn.Module):
        ...     encode_dim = 8
        ...     def encode(self, batch):
        ...         return batch["x"]
        >>> head, loss = build_adversarial(Ranker(), weight=0.5)
        >>> batch = {"x": torch.randn(4, 8), "clickbait_score": torch.rand(4)}
        >>> loss({}, batch).shape
        torch.Size([])
    """
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
