"""Ensemble backend: a linear stack of member backends, its weights fit on a validation split of the
training data (weighted least squares on the members' validation predictions), then the members are
refit on all the training data.

Optionally (``binary`` rows given to ``fit``, e.g. Stop Clickbait's class-coded titles) the stack's output
goes through a :class:`~intentrank.clickbait.warp.MonotoneWarp` fit on the same validation split: pinned so
that the raw value separating the binary rows best maps to ``threshold``, least squares to the graded rows'
targets elsewhere. Strictly increasing, so rankings (AUC) of the graded rows are unchanged."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from intentrank.clickbait.backends.base import Backend, backend_class
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.warp import MonotoneWarp, best_threshold


class EnsembleBackend(Backend):
    """``warp(coef[0] + sum_k coef[k+1] * member_k(title))`` (identity warp when ``warp`` is None)."""

    name = "ensemble"
    accepts_binary = True  # ClickbaitScorer.fit passes its ``binary`` mask on

    def __init__(
        self,
        members: list[Backend],
        coef: np.ndarray | None = None,
        val_fraction: float = 0.2,
        seed: int = 0,
        warp: MonotoneWarp | None = None,
        use_warp: bool = True,
        threshold: float = 0.5,
    ) -> None:
        self.members = members
        self.coef = coef
        self.val_fraction, self.seed = val_fraction, seed
        self.warp, self.use_warp, self.threshold = warp, use_warp, threshold

    @classmethod
    def from_config(cls, config: ClickbaitConfig) -> EnsembleBackend:
        members = []
        for name in config.ensemble_members:
            mcls = backend_class(name)
            members.append(mcls.from_config(config) if hasattr(mcls, "from_config") else mcls())
        return cls(
            members, val_fraction=config.val_fraction, seed=config.seed, use_warp=config.ensemble_warp,
            threshold=config.decision_threshold,
        )  # fmt: skip

    def fit(
        self, titles: list[str], y: np.ndarray, w: np.ndarray, binary: np.ndarray | None = None
    ) -> EnsembleBackend:
        """Fit; ``binary`` marks rows whose target codes a class (label = target >= threshold)."""
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
        self.warp = None
        if self.use_warp and binary is not None:
            self.warp = self.fit_warp(P @ self.coef, y[val], w[val], np.asarray(binary, dtype=bool)[val])
        for m in self.members:
            m.fit(titles, y, w)
        return self

    def fit_warp(
        self, raw: np.ndarray, y: np.ndarray, w: np.ndarray, binary: np.ndarray
    ) -> MonotoneWarp | None:
        """The warp from validation predictions ``raw`` (None without both classes and graded rows)."""
        lab = y[binary] >= self.threshold
        graded = ~binary
        if lab.all() or not lab.any() or graded.sum() < 20:
            return None
        pin = best_threshold(raw[binary], lab)
        return MonotoneWarp.fit(raw[graded], y[graded], w[graded], pin, self.threshold)

    def predict(self, titles: list[str]) -> np.ndarray:
        assert self.coef is not None
        out = np.full(len(titles), self.coef[0])
        for c, m in zip(self.coef[1:], self.members, strict=True):
            out += c * m.predict(titles)
        return out if self.warp is None else self.warp(out)

    def save(self, directory: Path) -> dict[str, Any]:
        members = []
        for k, m in enumerate(self.members):
            sub = directory / f"member{k}_{m.name}"
            sub.mkdir(parents=True, exist_ok=True)
            members.append({"backend": m.name, "dir": sub.name, "params": m.save(sub)})
        return {"coef": [float(c) for c in self.coef], "members": members, "val_fraction": self.val_fraction,
                "seed": self.seed, "warp": None if self.warp is None else self.warp.to_dict(),
                "threshold": self.threshold}  # fmt: skip

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> EnsembleBackend:
        members = []
        for m in params["members"]:
            sub = Path(m["dir"])
            if sub.name != m["dir"] or sub.name in ("", ".", ".."):  # stay inside the model directory
                raise ValueError(f"member dir must be a plain directory name, got {m['dir']!r}")
            members.append(backend_class(m["backend"]).load(directory / sub, m["params"]))
        coef = np.asarray(params["coef"], dtype=np.float64)
        if coef.shape != (len(members) + 1,) or not np.isfinite(coef).all():
            raise ValueError(f"coef must be {len(members) + 1} finite numbers (intercept + one per member)")
        warp = params.get("warp")
        return cls(
            members, coef, params["val_fraction"], params["seed"],
            warp=None if warp is None else MonotoneWarp.from_dict(warp), use_warp=warp is not None,
            threshold=params.get("threshold", 0.5),
        )  # fmt: skip
