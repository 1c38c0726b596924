"""Regression heads on dense title features: closed-form ridge (NumPy) and a small MLP (trained with
torch, scored with NumPy so that serving never imports torch)."""

from __future__ import annotations

from typing import Any

import numpy as np


class RidgeHead:
    """Weighted ridge regression on standardised features, solved in closed form."""

    kind = "ridge"

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha
        self.arrays: dict[str, np.ndarray] = {}

    def fit(self, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> RidgeHead:
        X = X.astype(np.float64)
        sw = w / w.sum()
        mu = sw @ X
        sd = np.sqrt(sw @ (X - mu) ** 2) + 1e-6
        Z = (X - mu) / sd
        ym = float(sw @ y)
        A = (Z * w[:, None]).T @ Z + self.alpha * np.eye(X.shape[1])
        coef = np.linalg.solve(A, (Z * w[:, None]).T @ (y - ym))
        self.arrays = {"coef": (coef / sd).astype(np.float32), "bias": np.array([ym - (coef / sd) @ mu])}
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return X.astype(np.float32) @ self.arrays["coef"] + float(self.arrays["bias"][0])

    def params(self) -> dict[str, Any]:
        return {"kind": self.kind, "alpha": self.alpha}


class MLPHead:
    """One-hidden-layer MLP (tanh-GELU, dropout) on standardised features; weighted MSE, AdamW."""

    kind = "mlp"

    def __init__(
        self,
        hidden: int = 256,
        epochs: int = 20,
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        dropout: float = 0.2,
        batch_size: int = 128,
        seed: int = 0,
    ) -> None:
        self.hidden, self.epochs, self.lr, self.weight_decay = hidden, epochs, lr, weight_decay
        self.dropout, self.batch_size, self.seed = dropout, batch_size, seed
        self.arrays: dict[str, np.ndarray] = {}

    def fit(self, X: np.ndarray, y: np.ndarray, w: np.ndarray, device: str = "cpu") -> MLPHead:
        import torch
        from torch import nn

        torch.manual_seed(self.seed)
        mu = X.mean(0)
        sd = X.std(0) + 1e-6
        Xt = torch.tensor((X - mu) / sd, dtype=torch.float32, device=device)
        yt = torch.tensor(y, dtype=torch.float32, device=device)
        wt = torch.tensor(w / w.mean(), dtype=torch.float32, device=device)
        net = nn.Sequential(
            nn.Dropout(self.dropout / 2),
            nn.Linear(X.shape[1], self.hidden),
            nn.GELU(approximate="tanh"),
            nn.Dropout(self.dropout),
            nn.Linear(self.hidden, 1),
        ).to(device)
        with torch.no_grad():
            net[-1].bias.fill_(float(np.average(y, weights=w)))
        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps = self.epochs * int(np.ceil(len(y) / self.batch_size))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps)
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        for _ in range(self.epochs):
            perm = torch.randperm(len(y), generator=gen).to(device)
            for s in range(0, len(y), self.batch_size):
                idx = perm[s : s + self.batch_size]
                pred = net(Xt[idx]).squeeze(-1)
                loss = (wt[idx] * (pred - yt[idx]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        l1, l2 = net[1], net[4]
        self.arrays = {
            "mu": mu.astype(np.float32),
            "sd": sd.astype(np.float32),
            "w1": l1.weight.detach().cpu().numpy().T.copy(),
            "b1": l1.bias.detach().cpu().numpy(),
            "w2": l2.weight.detach().cpu().numpy().ravel(),
            "b2": l2.bias.detach().cpu().numpy(),
        }
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        a = self.arrays
        h = ((X.astype(np.float32) - a["mu"]) / a["sd"]) @ a["w1"] + a["b1"]
        h = 0.5 * h * (1.0 + np.tanh(0.7978845608 * (h + 0.044715 * h**3)))
        return (h @ a["w2"] + a["b2"][0]).astype(np.float64)

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "hidden": self.hidden, "epochs": self.epochs, "lr": self.lr,
            "weight_decay": self.weight_decay, "dropout": self.dropout, "batch_size": self.batch_size,
            "seed": self.seed,
        }  # fmt: skip


def make_head(params: dict[str, Any]) -> RidgeHead | MLPHead:
    """A head from its ``params()`` dict."""
    p = dict(params)
    kind = p.pop("kind")
    if kind not in ("ridge", "mlp"):
        raise ValueError(f"head kind must be 'ridge' or 'mlp', got {kind!r}")
    return RidgeHead(**p) if kind == "ridge" else MLPHead(**p)
