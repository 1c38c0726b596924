"""Semantic backend: frozen MiniLM (int8 ONNX) pooled token states with a ridge or MLP head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from intentrank.clickbait.backends.base import Backend
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.encoder import DIM, POOLINGS, MiniLMEncoder
from intentrank.clickbait.files import load_npz
from intentrank.clickbait.heads import MLPHead, RidgeHead, make_head
from intentrank.errors import DataError

_ENCODERS: dict[tuple[str, ...], MiniLMEncoder] = {}


def shared_encoder(poolings: tuple[str, ...]) -> MiniLMEncoder:
    """One encoder per pooling set per process (the ONNX session is the expensive part)."""
    if poolings not in _ENCODERS:
        _ENCODERS[poolings] = MiniLMEncoder(poolings)
    return _ENCODERS[poolings]


class SemanticBackend(Backend):
    """Regression head on pooled MiniLM features of the normalised title."""

    name = "semantic"
    FILE = "semantic.npz"

    def __init__(
        self,
        head: RidgeHead | MLPHead | None = None,
        poolings: tuple[str, ...] = POOLINGS,
        batch_size: int = 256,
    ) -> None:
        self.head = head or MLPHead()
        self.poolings = tuple(poolings)
        self.batch_size = batch_size
        #: optional feature memo (normalised title -> features) so training encodes each title once
        self.memo: dict[str, np.ndarray] | None = None

    @classmethod
    def from_config(cls, config: ClickbaitConfig) -> SemanticBackend:
        head = (
            RidgeHead(config.semantic_alpha) if config.semantic_head == "ridge" else MLPHead(seed=config.seed)
        )
        self = cls(head=head, batch_size=config.batch_size)
        self.memo = {}  # training: the ensemble fits twice on overlapping titles; encode each once
        return self

    def features(self, titles: list[str], progress: bool = False) -> np.ndarray:
        """Pooled encoder features of normalised titles (from the memo where present)."""
        if self.memo is None:
            return shared_encoder(self.poolings).encode(titles, self.batch_size, progress)
        missing = list(dict.fromkeys(t for t in titles if t not in self.memo))
        if missing:
            X = shared_encoder(self.poolings).encode(missing, self.batch_size, progress)
            self.memo.update(zip(missing, X, strict=True))
        return np.stack([self.memo[t] for t in titles])

    def fit(self, titles: list[str], y: np.ndarray, w: np.ndarray) -> SemanticBackend:
        self.head.fit(self.features(titles, progress=True), y, w)
        return self

    def predict(self, titles: list[str]) -> np.ndarray:
        return np.asarray(self.head.predict(self.features(titles)), dtype=np.float64)

    def save(self, directory: Path) -> dict[str, Any]:
        np.savez_compressed(directory / self.FILE, **self.head.arrays)
        return {"head": self.head.params(), "poolings": list(self.poolings), "batch_size": self.batch_size}

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> SemanticBackend:
        head = make_head(params["head"])
        poolings = tuple(params["poolings"])
        if not poolings or not set(poolings) <= set(POOLINGS):
            raise ValueError(f"poolings must be some of {POOLINGS}, got {poolings}")
        dim = DIM * len(poolings)
        if isinstance(head, RidgeHead):
            shapes = {"coef": (dim,), "bias": (1,)}
        else:
            h = head.hidden
            shapes = {"mu": (dim,), "sd": (dim,), "w1": (dim, h), "b1": (h,), "w2": (h,), "b2": (1,)}
        path = directory / cls.FILE
        arrays = load_npz(path, shapes)
        for k, shape in shapes.items():
            if arrays[k].shape != shape:
                raise DataError(f"{path}: array {k!r} has shape {arrays[k].shape}, expected {shape}")
        head.arrays = arrays
        return cls(head=head, poolings=poolings, batch_size=int(params["batch_size"]))
