"""Ensemble backend: a linear stack of member backends, its weights fit on a validation split of the
training data (weighted least squares on the members' validation predictions), then the members are
refit on all the training data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from intentrank.clickbait.backends.base import Backend, backend_class
from intentrank.clickbait.config import ClickbaitConfig


class EnsembleBackend(Backend):
    """``coef[0] + sum_k coef[k+1] * member_k(title)``."""

    name = "ensemble"

    def __init__(
        self, members: list[Backend], coef: np.ndarray | None = None, val_fraction: float = 0.2, seed: int = 0
    ) -> None:
        self.members = members
        self.coef = coef
        self.val_fraction, self.seed = val_fraction, seed

    @classmethod
    def from_config(cls, config: ClickbaitConfig) -> EnsembleBackend:
        members = []
        for name in config.ensemble_members:
            mcls = backend_class(name)
            members.append(mcls.from_config(config) if hasattr(mcls, "from_config") else mcls())
        return cls(members, val_fraction=config.val_fraction, seed=config.seed)

    def fit(self, titles: list[str], y: np.ndarray, w: np.ndarray) -> EnsembleBackend:
        n = len(titles)
        perm = np.random.default_rng(self.seed).permutation(n)
        val = np.sort(perm[: max(1, round(n * self.val_fraction))])
        fit = np.sort(perm[len(val) :])
        P = np.ones((len(val), len(self.members) + 1))
        for k, m in enumerate(self.members):
            m.fit([titles[i] for i in fit], y[fit], w[fit])
            P[:, k + 1] = m.predict([titles[i] for i in val])
        s = np.sqrt(w[val])
        self.coef = np.linalg.lstsq(P * s[:, None], y[val] * s, rcond=None)[0]
        for m in self.members:
            m.fit(titles, y, w)
        return self

    def predict(self, titles: list[str]) -> np.ndarray:
        assert self.coef is not None
        out = np.full(len(titles), self.coef[0])
        for c, m in zip(self.coef[1:], self.members, strict=True):
            out += c * m.predict(titles)
        return out

    def save(self, directory: Path) -> dict[str, Any]:
        members = []
        for k, m in enumerate(self.members):
            sub = directory / f"member{k}_{m.name}"
            sub.mkdir(parents=True, exist_ok=True)
            members.append({"backend": m.name, "dir": sub.name, "params": m.save(sub)})
        return {"coef": [float(c) for c in self.coef], "members": members, "val_fraction": self.val_fraction,
                "seed": self.seed}  # fmt: skip

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> EnsembleBackend:
        members = [
            backend_class(m["backend"]).load(directory / m["dir"], m["params"]) for m in params["members"]
        ]
        return cls(members, np.asarray(params["coef"]), params["val_fraction"], params["seed"])
