"""Feature encoding: an event (or any) frame → the tensors the model reads, following the feature spec.

Ids are hashed into each feature's bucket range with pandas' stable 64-bit hash (the same on every
run and machine), so ids never seen in training still get an embedding row. Small integer features
(position, slate index, hour) can be used directly. Everything is vectorised over rows.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import torch
from pandas.api import types as ptypes
from torch import Tensor

from intentrank.errors import DataError
from intentrank.ranking.config import FeatureSpecConfig, TextFeature

SECONDS_PER_DAY = 86_400.0
_WORD = re.compile(r"\w+")


def derive_event_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Add the derived event columns (:data:`DERIVED_COLUMNS`): ``hour`` (0..23 from ``ts``) and
    ``item_age_h`` (hours between ``publish_ts`` and ``ts``, ≥ 0). Returns a new frame."""
    out = df.copy(deep=False)
    if "ts" in out.columns:
        ts = out["ts"].to_numpy(dtype=np.float64)
        if "hour" not in out.columns:
            out["hour"] = (np.mod(ts, SECONDS_PER_DAY) // 3600.0).astype(np.int64)
        if "publish_ts" in out.columns and "item_age_h" not in out.columns:
            out["item_age_h"] = np.clip(ts - out["publish_ts"].to_numpy(dtype=np.float64), 0.0, None) / 3600.0
    return out


def hash_buckets(values: np.ndarray | pd.Series, buckets: int) -> np.ndarray:
    """Stable hash of each value modulo ``buckets`` (int64)."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.dtype.kind in "OUST" or not isinstance(arr.dtype, np.dtype):
        arr = np.asarray(arr, dtype=object)
    h = pd.util.hash_array(arr, categorize=True)
    return (h % np.uint64(buckets)).astype(np.int64)


_MASK64 = (1 << 64) - 1


def hash_bucket_int(value: int, buckets: int) -> int:
    """:func:`hash_buckets` of one integer (an int64), in plain Python: the same 64-bit mix pandas
    applies to integers (``pandas.core.util.hashing``), without its per-call overhead (~50-100 µs on a
    one-element array; a served request hashes its user id once). Equality with :func:`hash_buckets` is
    tested (``tests/ranking/test_features.py``)."""
    x = int(value) & _MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _MASK64
    x ^= x >> 31
    return x % int(buckets)


def text_ngrams(text: str, feature: TextFeature) -> list[str]:
    """The n-grams of one text, in order: lower-cased words, then word bigrams, then each word's
    character n-grams with ``<``/``>`` boundary marks; at most ``max_tokens``."""
    words = _WORD.findall(str(text).lower())
    grams = [f"w:{w}" for w in words]
    if feature.word_bigrams:
        grams += [f"b:{a} {b}" for a, b in itertools.pairwise(words)]
    n = feature.char_ngrams
    if n:
        for w in words:
            m = f"<{w}>"
            grams += [f"c:{m[i : i + n]}" for i in range(max(len(m) - n + 1, 1))]
    return grams[: feature.max_tokens]


def tokenize_texts(texts: np.ndarray | pd.Series, feature: TextFeature) -> np.ndarray:
    """(N, max_tokens) int64 n-gram ids in 1..buckets-1 (stable hash), 0 = padding. Each distinct text
    is split once (an item table or an event frame repeats titles)."""
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object).fillna(""), use_na_sentinel=False)
    grams = [text_ngrams(t, feature) for t in uniques]
    lengths = np.fromiter((len(g) for g in grams), np.int64, len(grams))
    table = np.zeros((len(grams), feature.max_tokens), np.int64)
    flat = [g for gs in grams for g in gs]
    if flat:
        ids = hash_buckets(np.asarray(flat, dtype=object), feature.buckets - 1) + 1
        rows = np.repeat(np.arange(len(grams)), lengths)
        cols = np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        table[rows, cols] = ids
    return table[codes]


class FeatureEncoder:
    """Validates frames against a :class:`FeatureSpecConfig` and encodes them to tensors."""

    def __init__(self, spec: FeatureSpecConfig) -> None:
        self.spec = spec
        self.cat_names = [f.name for f in spec.categorical]
        self.dense_names = [f.name for f in spec.dense]
        self.text_names = [f.name for f in spec.text]
        #: column offsets of each text feature's tokens in the packed ``"text"`` (B, L) tensor
        self.text_offsets = np.cumsum([0] + [f.max_tokens for f in spec.text]).tolist()

    @property
    def text_width(self) -> int:
        """L: columns of the packed ``"text"`` tensor (the text features' ``max_tokens`` summed)."""
        return int(self.text_offsets[-1])

    @property
    def required_columns(self) -> list[str]:
        """Source columns the spec reads."""
        return (
            [f.source for f in self.spec.categorical]
            + [f.source for f in self.spec.dense]
            + [f.source for f in self.spec.text]
        )

    def validate(self, df: pd.DataFrame, what: str = "event frame") -> None:
        """Raise :class:`DataError` on missing columns, wrong dtypes or NaN/inf in used columns."""
        missing = [c for c in dict.fromkeys(self.required_columns) if c not in df.columns]
        if missing:
            raise DataError(f"{what}: missing columns required by the feature spec: {missing}")
        for f in self.spec.categorical:
            s = df[f.source]
            if f.hashed:
                ok = ptypes.is_integer_dtype(s) or ptypes.is_string_dtype(s) or ptypes.is_object_dtype(s)
                ok = ok or isinstance(s.dtype, pd.CategoricalDtype) or ptypes.is_bool_dtype(s)
                if not ok:
                    raise DataError(
                        f"{what}: column {f.source!r} (categorical feature {f.name!r}) must hold integer or "
                        f"string ids, got dtype {s.dtype}"
                    )
            elif not (ptypes.is_integer_dtype(s) or ptypes.is_bool_dtype(s)):
                raise DataError(
                    f"{what}: column {f.source!r} (feature {f.name!r}) must be integer, got dtype {s.dtype}"
                )
            if s.isna().any():
                raise DataError(f"{what}: column {f.source!r} (feature {f.name!r}) has missing values")
        for f in self.spec.dense:
            s = df[f.source]
            if not (ptypes.is_numeric_dtype(s) or ptypes.is_bool_dtype(s)):
                raise DataError(
                    f"{what}: column {f.source!r} (dense feature {f.name!r}) must be numeric, "
                    f"got dtype {s.dtype}"
                )
            v = s.to_numpy(dtype=np.float64)
            if not np.isfinite(v).all():
                raise DataError(
                    f"{what}: column {f.source!r} (dense feature {f.name!r}) has NaN or inf values"
                )
        for f in self.spec.text:
            s = df[f.source]
            if not (ptypes.is_string_dtype(s) or ptypes.is_object_dtype(s)):
                raise DataError(
                    f"{what}: column {f.source!r} (text feature {f.name!r}) must hold strings, "
                    f"got dtype {s.dtype}"
                )

    def subset(self, cat_idx: list[int], dense_idx: list[int]) -> FeatureEncoder:
        """An encoder of the listed categorical and dense features of this spec (same order and settings)."""
        spec = self.spec
        return FeatureEncoder(
            FeatureSpecConfig.model_construct(
                categorical=[spec.categorical[j] for j in cat_idx],
                dense=[spec.dense[j] for j in dense_idx],
                text=[],
                embedding_dim=spec.embedding_dim,
            )
        )

    def encode_numpy(
        self, df: pd.DataFrame, validate: bool = True, what: str = "event frame"
    ) -> tuple[np.ndarray, np.ndarray]:
        """(cat (N, F) int64 bucket ids, dense (N, D) float32)."""
        if validate:
            self.validate(df, what)
        n = len(df)
        cat = np.empty((n, len(self.spec.categorical)), dtype=np.int64)
        for j, f in enumerate(self.spec.categorical):
            if f.hashed:
                cat[:, j] = hash_buckets(df[f.source], f.buckets)
            else:
                cat[:, j] = np.clip(df[f.source].to_numpy(dtype=np.int64), 0, f.buckets - 1)
        dense = np.empty((n, len(self.spec.dense)), dtype=np.float32)
        for j, f in enumerate(self.spec.dense):
            v = df[f.source].to_numpy(dtype=np.float64)
            if f.transform == "log1p":
                v = np.log1p(np.clip(v, 0.0, None))
            dense[:, j] = v * f.scale
        return cat, dense

    def encode_text(self, df: pd.DataFrame) -> np.ndarray:
        """(N, L) int64 packed n-gram ids of every text feature side by side (0 = padding); L =
        :attr:`text_width` (0 columns when the spec has no text feature)."""
        parts = [tokenize_texts(df[f.source], f) for f in self.spec.text]
        return np.concatenate(parts, axis=1) if parts else np.zeros((len(df), 0), np.int64)

    def encode_text_table(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """``(idx (N,), table (U, L))`` with ``table[idx]`` = :meth:`encode_text`: one packed row per
        distinct text (an event log repeats each title many times; 8 bytes a row instead of 8·L)."""
        if not self.spec.text:
            return np.zeros(len(df), np.int64), np.zeros((1, 0), np.int64)
        cols = [df[f.source].astype(object).fillna("") for f in self.spec.text]
        sources = [f.source for f in self.spec.text]
        if len(cols) == 1:
            idx, uniq = pd.factorize(cols[0])
            distinct = pd.DataFrame({sources[0]: np.asarray(uniq, dtype=object)})
        else:
            idx, uniq = pd.factorize(pd.MultiIndex.from_arrays(cols))
            distinct = pd.DataFrame({s: uniq.get_level_values(i) for i, s in enumerate(sources)})
        return idx.astype(np.int64), self.encode_text(distinct)

    def encode(self, df: pd.DataFrame, validate: bool = True) -> dict[str, Tensor]:
        """Packed ``"cat"``/``"dense"`` (and ``"text"``) tensors plus a named view per feature."""
        cat, dense = self.encode_numpy(df, validate)
        text = torch.from_numpy(self.encode_text(df)) if self.spec.text else None
        return self.to_batch(torch.from_numpy(cat), torch.from_numpy(dense), text)

    def to_batch(self, cat: Tensor, dense: Tensor, text: Tensor | None = None) -> dict[str, Tensor]:
        """Batch dict from packed tensors (named entries are column views, no copies). ``text``: the
        packed (B, L) n-gram ids; required by a model whose spec has text features."""
        batch: dict[str, Tensor] = {"cat": cat, "dense": dense}
        for j, name in enumerate(self.cat_names):
            batch[name] = cat[:, j]
        for j, name in enumerate(self.dense_names):
            batch[name] = dense[:, j]
        if text is not None:
            if text.shape[1] != self.text_width:
                raise DataError(
                    f"packed text has {text.shape[1]} columns, the spec's text features {self.text_width}"
                )
            batch["text"] = text
            for j, name in enumerate(self.text_names):
                batch[name] = text[:, self.text_offsets[j] : self.text_offsets[j + 1]]
        return batch
