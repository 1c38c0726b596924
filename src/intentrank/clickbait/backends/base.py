"""The backend interface and the name → class registry (lazy imports)."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from intentrank.errors import IntentRankError

_REGISTRY = {
    "lexical": "intentrank.clickbait.backends.lexical:LexicalBackend",
    "semantic": "intentrank.clickbait.backends.semantic:SemanticBackend",
    "finetuned": "intentrank.clickbait.backends.finetuned:FinetunedBackend",
    "ensemble": "intentrank.clickbait.backends.ensemble:EnsembleBackend",
    "tokenbag": "intentrank.clickbait.backends.tokenbag:TokenBagBackend",
    "tokenconv": "intentrank.clickbait.backends.tokenconv:TokenConvBackend",
}


class Backend(ABC):
    """Regressor from normalised titles to a raw clickbait score (Webis-17 truth_mean scale)."""

    name: str

    @abstractmethod
    def fit(self, titles: list[str], y: np.ndarray, w: np.ndarray) -> Backend:
        """Fit on normalised titles, targets ``y`` and sample weights ``w``."""

    @abstractmethod
    def predict(self, titles: list[str]) -> np.ndarray:
        """Raw (unclipped) float64 predictions for normalised, non-empty titles."""

    @abstractmethod
    def save(self, directory: Path) -> dict[str, Any]:
        """Write the fitted state under ``directory``; return JSON-able params for ``load``."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> Backend:
        """Read a backend written by :meth:`save`."""


def backend_class(name: str) -> type[Backend]:
    """The backend class registered under ``name`` (lexical, semantic, finetuned, ensemble, tokenbag,
    tokenconv)."""
    if name not in _REGISTRY:
        raise IntentRankError(f"unknown clickbait backend {name!r}; choose one of {', '.join(_REGISTRY)}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)
