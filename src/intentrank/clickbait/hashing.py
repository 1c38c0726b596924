"""Vectorised hashed n-gram TF-IDF features of normalised titles (NumPy only, no per-title loops).

Titles are joined into one byte array; every character n-gram and word n-gram is hashed with
tabulation hashing (a random 64-bit table indexed by position and byte, summed with wrap-around) into
a fixed number of buckets. Weights are sublinear TF times IDF, L2-normalised per block (characters,
words). Because nothing but NumPy is needed, the lexical model loads and scores in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_SEP = 10  # "\n" separates titles; normalised titles never contain it
_MAXPOS = 48
_TABLE = np.random.default_rng(20170101).integers(0, 2**63, size=(_MAXPOS, 256), dtype=np.uint64) * np.uint64(
    2
) + (np.uint64(1))
_MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


@dataclass(frozen=True)
class HashSpec:
    """Which n-grams to hash and into how many buckets (2**bits per block)."""

    char_min: int = 1
    char_max: int = 5
    word_max: int = 3
    char_bits: int = 20
    word_bits: int = 20

    @property
    def n_features(self) -> int:
        return 2**self.char_bits + 2**self.word_bits


def _bytes_of(titles: list[str]) -> np.ndarray:
    text = "\n".join(" " + t + " " for t in titles)
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)


def _bucket(h: np.ndarray, bits: int) -> np.ndarray:
    return (h >> np.uint64(64 - bits)).astype(np.int64)


def _char_ngrams(b: np.ndarray, row: np.ndarray, spec: HashSpec) -> tuple[np.ndarray, np.ndarray]:
    csep = np.concatenate(([0], np.cumsum(b == _SEP)))
    L = b.size
    rows, cols = [], []
    h = np.zeros(L, dtype=np.uint64)
    for n in range(1, spec.char_max + 1):
        m = L - n + 1
        if m <= 0:  # the whole input is shorter than n bytes (e.g. one 1-character title)
            break
        h[:m] += _TABLE[n - 1, b[n - 1 :]]
        if n < spec.char_min:
            continue
        start = np.arange(m)
        ok = csep[start + n] == csep[start]
        if n == 1:
            ok &= b[:m] != 32
        idx = start[ok]
        rows.append(row[idx])
        cols.append(_bucket(h[idx] * _MIX[0] + np.uint64(n), spec.char_bits))
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(cols)


def _word_ngrams(b: np.ndarray, row: np.ndarray, spec: HashSpec) -> tuple[np.ndarray, np.ndarray]:
    # word characters: a-z, 0-9 (all digits hashed as "0"), apostrophe, and any non-ASCII byte
    is_digit = (b >= 48) & (b <= 57)
    is_word = ((b >= 97) & (b <= 122)) | is_digit | (b == 39) | (b >= 128)
    if not is_word.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bb = np.where(is_digit, 48, b).astype(np.int64)
    prev = np.concatenate(([False], is_word[:-1]))
    starts = np.flatnonzero(is_word & ~prev)
    pos_all = np.flatnonzero(is_word)
    word_of = np.cumsum(is_word & ~prev)[pos_all] - 1
    offset = np.minimum(pos_all - starts[word_of], _MAXPOS - 1)
    contrib = _TABLE[offset, bb[pos_all]]
    seg = np.searchsorted(pos_all, starts)
    wh = np.add.reduceat(contrib, seg) * _MIX[1]
    wrow = row[starts]
    rows, cols = [wrow], [_bucket(wh, spec.word_bits)]
    for n in range(2, spec.word_max + 1):
        m = wh.size - n + 1
        if m <= 0:
            break
        g = np.zeros(m, dtype=np.uint64)
        ok = np.ones(m, dtype=bool)
        for k in range(n):
            g = g * _MIX[2] + wh[k : k + m]
            ok &= wrow[k : k + m] == wrow[:m]
        rows.append(wrow[:m][ok])
        cols.append(_bucket(g[ok] + np.uint64(n), spec.word_bits))
    return np.concatenate(rows), np.concatenate(cols)


def _tfidf_block(
    rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int, idf: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keys, counts = np.unique(rows * n_cols + cols, return_counts=True)
    r, c = keys // n_cols, keys % n_cols
    if idf is None:  # document frequencies only when learning the IDF (a 2**bits array per call otherwise)
        df = np.bincount(c, minlength=n_cols)
        idf = (np.log((1.0 + n_rows) / (1.0 + df)) + 1.0).astype(np.float32)
    v = (1.0 + np.log(counts)) * idf[c]
    norm = np.sqrt(np.bincount(r, weights=v * v, minlength=n_rows))
    v = v / np.where(norm > 0, norm, 1.0)[r]
    return r, c, v, idf


@dataclass
class HashedTfidf:
    """Hashed character+word n-gram TF-IDF; ``fit`` learns the IDF, ``transform`` gives COO triplets."""

    spec: HashSpec
    idf_char: np.ndarray | None = None
    idf_word: np.ndarray | None = None

    def _raw(self, titles: list[str]) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        b = _bytes_of(titles)
        row = np.cumsum(b == _SEP)
        return _char_ngrams(b, row, self.spec), _word_ngrams(b, row, self.spec)

    def fit_transform(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Learn the IDF on ``titles`` and return their features as (rows, cols, values)."""
        self.idf_char = self.idf_word = None
        return self.transform(titles)

    def transform(self, titles: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Features of normalised titles as COO triplets over ``spec.n_features`` columns."""
        n = len(titles)
        (rc, cc), (rw, cw) = self._raw(titles)
        nc, nw = 2**self.spec.char_bits, 2**self.spec.word_bits
        r1, c1, v1, self.idf_char = _tfidf_block(rc, cc, n, nc, self.idf_char)
        r2, c2, v2, self.idf_word = _tfidf_block(rw, cw, n, nw, self.idf_word)
        return np.concatenate([r1, r2]), np.concatenate([c1, c2 + nc]), np.concatenate([v1, v2])
