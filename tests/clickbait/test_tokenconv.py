"""The token-convolution backend: learns word order, scores each title on its own (bit-identical alone or
in any batch), round-trips exactly through save/load, and names a damaged weight file in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from intentrank.clickbait.backends.tokenbag import _tokenizer
from intentrank.clickbait.backends.tokenconv import TokenConvBackend, quantize_rows
from intentrank.errors import IntentRankError

# the same words in both classes: only their order tells them apart, which a bag of tokens cannot see
BAIT = ["you will not believe what happened", "this is why doctors hate him", "what happened next will shock"]
NEWS = ["what happened will not believe you", "him hate doctors why is this", "shock will next happened what"]


@pytest.fixture(scope="module")
def fitted() -> TokenConvBackend:
    conv = TokenConvBackend(hidden=16, width=3, epochs=30, lr=1e-2, batch_size=6, dropout=0.0)
    vocab = _tokenizer(64).get_vocab_size()
    conv.init_embeddings = lambda: np.random.default_rng(0).normal(size=(vocab, 8)).astype(np.float32)
    titles = BAIT + NEWS
    return conv.fit(titles, np.array([0.9] * 3 + [0.1] * 3), np.ones(6))


def test_learns_word_order(fitted: TokenConvBackend) -> None:
    p = fitted.predict(BAIT + NEWS)
    assert p[:3].min() > p[3:].max(), p


def test_each_title_on_its_own(fitted: TokenConvBackend) -> None:
    titles = [*BAIT, "a", "", "x " * 200, *NEWS]
    alone = np.array([fitted.predict([t])[0] for t in titles])
    assert np.array_equal(fitted.predict(titles), alone)
    order = np.random.default_rng(1).permutation(len(titles))
    assert np.array_equal(fitted.predict([titles[i] for i in order]), alone[order])


def test_round_trip(fitted: TokenConvBackend, tmp_path: Path) -> None:
    params = fitted.save(tmp_path)
    again = TokenConvBackend.load(tmp_path, params)
    assert np.array_equal(again.predict(BAIT + NEWS), fitted.predict(BAIT + NEWS))


def test_quantize_rows_error_bound() -> None:
    x = np.random.default_rng(2).normal(size=(2, 50, 7)).astype(np.float32)
    x[0, 3] = 0.0  # an all-zero row keeps a zero scale and zeros
    q, s = quantize_rows(x)
    assert q.dtype == np.int8 and s.shape == (2, 50)
    assert np.all(np.abs(q * s[..., None] - x) <= s[..., None] / 2 + 1e-7)
    assert not q[0, 3].any()


def _resave(src: Path, dst: Path, **change: Any) -> None:
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(dst, **(arrays | change))


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"tables": np.zeros((3, 5), np.int8)}, "'tables' has shape (3, 5)"),
        ({"tables": np.zeros((3, 5, 16), np.float32)}, "expected int8"),
        ({"scales": np.full((3, 7), np.nan, np.float32)}, "'scales' has shape (3, 7)"),
        ({"w": np.zeros(5)}, "'w' has shape (5,)"),
    ],
)
def test_damaged_file_is_named(fitted: TokenConvBackend, tmp_path: Path, change: dict, why: str) -> None:
    params = fitted.save(tmp_path)
    path = tmp_path / TokenConvBackend.FILE
    _resave(path, path, **change)
    with pytest.raises(IntentRankError) as info:
        TokenConvBackend.load(tmp_path, params)
    msg = str(info.value)
    assert str(path) in msg and why in msg and "\n" not in msg, msg
