"""Fast lexical backend: hashed character (1-5) and word (1-3) n-gram TF-IDF with a ridge regression.

Scoring needs only NumPy (see :mod:`intentrank.clickbait.hashing`); scikit-learn is imported for fitting.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from intentrank.clickbait.backends.base import Backend
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.files import check_array, load_npz
from intentrank.clickbait.hashing import HashedTfidf, HashSpec


class LexicalBackend(Backend):
    """Ridge regression on hashed n-gram TF-IDF features."""

    name = "lexical"
    FILE = "lexical.npz"

    def __init__(self, alpha: float = 1.0, spec: HashSpec | None = None) -> None:
        self.alpha = alpha
        self.features = HashedTfidf(spec or HashSpec())
        self.coef: np.ndarray | None = None
        self.intercept = 0.0

    @classmethod
    def from_config(cls, config: ClickbaitConfig) -> LexicalBackend:
        return cls(alpha=config.lexical_alpha)

    def design(self, titles: list[str], fit: bool = False):  # -> scipy.sparse.csr_matrix
        """Sparse feature matrix of normalised titles (learns the IDF when ``fit``)."""
        import scipy.sparse as sp

        r, c, v = (self.features.fit_transform if fit else self.features.transform)(titles)
        return sp.csr_matrix((v, (r, c)), shape=(len(titles), self.features.spec.n_features))

    def fit(self, titles: list[str], y: np.ndarray, w: np.ndarray) -> LexicalBackend:
        from sklearn.linear_model import Ridge

        X = self.design(titles, fit=True)
        model = Ridge(alpha=self.alpha, solver="sparse_cg", tol=1e-5, max_iter=2000)
        model.fit(X, y, sample_weight=w)
        self.coef = model.coef_.astype(np.float32)
        self.intercept = float(model.intercept_)
        return self

    def predict(self, titles: list[str]) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("LexicalBackend is not fitted")
        r, c, v = self.features.transform(titles)
        return np.bincount(r, weights=v * self.coef[c], minlength=len(titles)) + self.intercept

    def save(self, directory: Path) -> dict[str, Any]:
        np.savez_compressed(
            directory / self.FILE,
            coef=self.coef,
            idf_char=self.features.idf_char,
            idf_word=self.features.idf_word,
        )
        return {"alpha": self.alpha, "intercept": self.intercept, "spec": asdict(self.features.spec)}

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> LexicalBackend:
        spec = HashSpec(**params["spec"])
        if not all(isinstance(v, int) and 0 < v <= 30 for v in asdict(spec).values()):
            raise ValueError(f"spec values must be integers in 1..30, got {asdict(spec)}")
        self = cls(alpha=float(params["alpha"]), spec=spec)
        path = directory / cls.FILE
        z = load_npz(path, ("coef", "idf_char", "idf_word"))
        self.coef = check_array(path, "coef", z["coef"], spec.n_features)
        self.features.idf_char = check_array(path, "idf_char", z["idf_char"], 2**spec.char_bits)
        self.features.idf_word = check_array(path, "idf_word", z["idf_word"], 2**spec.word_bits)
        self.intercept = float(params["intercept"])
        return self
