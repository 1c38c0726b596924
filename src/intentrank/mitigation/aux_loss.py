"""Auxiliary clickbait loss and its row down-weighting variant (trainer hooks).

``L_cb = -log(1 - p_click) · (2c - 1)`` pushes the predicted CTR down for clickbait (c > 0.5) and
up for clean items (c < 0.5). It is computed from the click *logit* z: ``-log(1 - sigmoid(z)) =
softplus(z)``, which is finite for every z (also as p_click → 1, where the naive form is log 0).
Its gradient with respect to z is ``sigmoid(z)·(2c - 1)``.

Note: for c < 0.5 the term is unbounded below as z grows; on its own it would push clean items'
p_click towards 1. It is meant to be added to the click loss (binary cross-entropy), which bounds
it, with a moderate weight λ_cb.

References:
    "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz): the auxiliary clickbait loss L_cb.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from intentrank.errors import DataError
from intentrank.mitigation.config import AuxLossMethod, DownweightMethod
from intentrank.mitigation.validation import validate_method


def clickbait_loss(click_logit: Tensor, clickbait: Tensor, weights: Tensor | None = None) -> Tensor:
    """The auxiliary clickbait loss ``L_cb = -log(1 - p_click) · (2c - 1)``, averaged over rows.

    Computed as ``softplus(z) · (2c - 1)`` from the click logit z (finite for every z).

    Args:
        click_logit: Click logits z (B,).
        clickbait: Clickbait scores c in [0, 1] (B,).
        weights: Optional row weights (B,); the mean is then ``Σ w·L / Σ w``.

    Returns:
        Scalar tensor.

    Example:
        >>> import torch
        >>> z = torch.zeros(2)  # p_click = 0.5
        >>> float(clickbait_loss(z, torch.tensor([1.0, 0.0])))  # +ln 2 and -ln 2 cancel
        0.0
        >>> round(float(clickbait_loss(z, torch.tensor([1.0, 1.0]))), 4)
        0.6931

    References:
        "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz), auxiliary loss.
    """
    per_row = F.softplus(click_logit) * (2.0 * clickbait.to(click_logit.dtype) - 1.0)
    if weights is None:
        return per_row.mean()
    weights = weights.to(per_row.dtype)
    return (per_row * weights).sum() / weights.sum().clamp_min(1e-12)


class AuxClickbaitLoss:
    """``extra_losses`` hook for the trainer: ``(logits, batch) -> λ_cb · L_cb``.

    Reads the click logit from ``logits[logit]`` and c from ``batch[feature]``; uses the batch's
    per-row weights ``batch["w"]`` when present, so it averages like the main loss.

    Args:
        weight: λ_cb, the loss's weight next to the ranker's own loss.
        feature: Batch key of the clickbait score.
        logit: Model output key of the click logit.

    Example:
        >>> import torch
        >>> hook = AuxClickbaitLoss(weight=0.5)
        >>> loss = hook({"click": torch.zeros(2)}, {"clickbait_score": torch.tensor([1.0, 1.0])})
        >>> round(float(loss), 4)  # 0.5 · ln 2
        0.3466

    References:
        "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz), auxiliary loss.
    """

    def __init__(self, weight: float = 0.5, feature: str = "clickbait_score", logit: str = "click") -> None:
        cfg = validate_method(AuxLossMethod, "aux_loss", weight=weight, feature=feature, logit=logit)
        self.weight, self.feature, self.logit = cfg.weight, cfg.feature, cfg.logit

    @classmethod
    def from_config(cls, cfg: AuxLossMethod) -> AuxClickbaitLoss:
        return cls(weight=cfg.weight, feature=cfg.feature, logit=cfg.logit)

    def __call__(self, logits: dict[str, Tensor], batch: dict[str, Tensor]) -> Tensor:
        """``λ_cb · L_cb`` of one batch.

        Args:
            logits: Model outputs; ``logits[logit]`` (B,).
            batch: Batch tensors; ``batch[feature]`` (B,) and optional ``batch["w"]`` (B,).

        Returns:
            Scalar tensor.

        Raises:
            DataError: The logit or the feature is missing.
        """
        if self.logit not in logits:
            raise DataError(f"aux_loss: model output has no '{self.logit}' logit (has {sorted(logits)})")
        if self.feature not in batch:
            raise DataError(f"aux_loss: batch has no '{self.feature}' feature (has {sorted(batch)})")
        z = logits[self.logit].reshape(-1)
        c = batch[self.feature].reshape(-1)
        w = batch.get("w")
        return self.weight * clickbait_loss(z, c, None if w is None else w.reshape(-1))

    def __repr__(self) -> str:
        return f"AuxClickbaitLoss(weight={self.weight}, feature={self.feature!r})"


class ClickbaitDownweight:
    """``sample_weight_fn`` for the trainer: row weight ``1 - strength·clip((c - t)/(1 - t), 0, 1)``.

    Clean rows (c ≤ t) keep weight 1; a row with c = 1 gets ``1 - strength``. With ``rows="clicks"``
    (default) only clicked rows (``batch["y_click"] > 0``) are down-weighted, which lowers the
    learned p_click of clickbait; with ``rows="all"`` the item-level CTR estimate is unchanged (the
    weights cancel) and only the items' pull on shared parameters shrinks.

    Args:
        strength: Weight taken from a row with c = 1, in [0, 1].
        threshold: c up to which rows keep weight 1, in [0, 1).
        feature: Batch key of the clickbait score.
        rows: ``"clicks"`` (clicked rows only) or ``"all"``.

    Example:
        >>> import torch
        >>> down = ClickbaitDownweight(strength=0.5, threshold=0.5)
        >>> down({"clickbait_score": torch.tensor([0.2, 0.75, 1.0, 1.0]),
        ...       "y_click": torch.tensor([1.0, 1.0, 1.0, 0.0])})
        tensor([1.0000, 0.7500, 0.5000, 1.0000])

    References:
        "Clickbait Mitigation in Industrial Recommender System" (Seznam.cz)
        (a row-weighting variant of its auxiliary loss).
    """

    def __init__(
        self,
        strength: float = 0.5,
        threshold: float = 0.5,
        feature: str = "clickbait_score",
        rows: str = "clicks",
    ) -> None:
        cfg = validate_method(
            DownweightMethod, "downweight", strength=strength, threshold=threshold, feature=feature, rows=rows
        )
        self.strength, self.threshold, self.feature = cfg.strength, cfg.threshold, cfg.feature
        self.rows = cfg.rows

    @classmethod
    def from_config(cls, cfg: DownweightMethod) -> ClickbaitDownweight:
        return cls(strength=cfg.strength, threshold=cfg.threshold, feature=cfg.feature, rows=cfg.rows)

    def __call__(self, batch: dict[str, Tensor]) -> Tensor:
        """Row weights (B,) in [1 - strength, 1] for one batch (``batch[feature]``, ``batch["y_click"]``).

        Raises:
            DataError: The feature (or, with ``rows="clicks"``, ``y_click``) is missing.
        """
        if self.feature not in batch:
            raise DataError(f"downweight: batch has no '{self.feature}' feature (has {sorted(batch)})")
        c = batch[self.feature].reshape(-1).to(torch.float32)
        ramp = ((c - self.threshold) / (1.0 - self.threshold)).clamp(0.0, 1.0)
        if self.rows == "clicks":
            if "y_click" not in batch:
                raise DataError(f"downweight: batch has no 'y_click' label (has {sorted(batch)})")
            ramp = ramp * (batch["y_click"].reshape(-1) > 0)
        return 1.0 - self.strength * ramp

    def __repr__(self) -> str:
        return (
            f"ClickbaitDownweight(strength={self.strength}, threshold={self.threshold}, rows={self.rows!r})"
        )
