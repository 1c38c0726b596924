"""The ranking formula, in one place: ``score = p_click ** a * time ** b * p_conv ** g``.

Defaults a = 1, b = 0.8, g = 0 give the industrial ``ctr · t^0.8``; (1, 0, 0) ranks by p_click alone.
:meth:`RankingFormula.score` works on NumPy arrays and torch tensors alike (natural units);
:meth:`RankingFormula.log_score` gives ``a·log p_click + b·log time + g·log p_conv`` straight from the
model's logits (finite and differentiable: what RL alignment optimises). Both order candidates the same
way (log is increasing), except that log space floors time at 1 ms where the linear form gives 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from intentrank.errors import ConfigError
from intentrank.ranking.outputs import log_natural_units

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@dataclass(frozen=True)
class RankingFormula:
    """Exponents of the ranking score; all must be ≥ 0."""

    a: float = 1.0
    b: float = 0.8
    g: float = 0.0

    def __post_init__(self) -> None:
        for name in ("a", "b", "g"):
            v = getattr(self, name)
            if not (v >= 0 and np.isfinite(v)):
                raise ConfigError(f"ranking formula exponent {name} must be a finite number ≥ 0, got {v!r}")

    @classmethod
    def from_config(cls, cfg: object) -> RankingFormula:
        """From a :class:`intentrank.ranking.config.FormulaConfig`."""
        return cls(a=cfg.a, b=cfg.b, g=cfg.g)  # type: ignore[attr-defined]

    def score(self, p_click: ArrayT, time: ArrayT, p_conv: ArrayT | None = None) -> ArrayT:
        """The score; ``time`` in seconds (clipped at 0); a zero exponent drops its factor (0**0 = 1)."""
        if isinstance(p_click, torch.Tensor):
            out = p_click.clamp(min=0.0) ** self.a if self.a != 1 else p_click
            if self.b:
                out = out * time.clamp(min=0.0) ** self.b
            if self.g:
                if p_conv is None:
                    raise ValueError("formula has g > 0 but no p_conv was given")
                out = out * p_conv.clamp(min=0.0) ** self.g
            return out
        p = np.asarray(p_click, dtype=np.float64)
        out_np = np.clip(p, 0.0, None) ** self.a
        if self.b:
            out_np = out_np * np.clip(np.asarray(time, dtype=np.float64), 0.0, None) ** self.b
        if self.g:
            if p_conv is None:
                raise ValueError("formula has g > 0 but no p_conv was given")
            out_np = out_np * np.clip(np.asarray(p_conv, dtype=np.float64), 0.0, None) ** self.g
        return out_np  # type: ignore[return-value]

    __call__ = score

    def log_score(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """log of the score from the model's outputs (logits; see :func:`log_natural_units`), shape (B,)."""
        logs = log_natural_units(out)
        s = self.a * logs["p_click"]
        if self.b:
            s = s + self.b * logs["time"]
        if self.g:
            s = s + self.g * logs["p_conv"]
        return s
