"""The distilled student: selectable by name, batch-independent, above a quality floor on the held-out split,
saved and loaded exactly, and damaged weight files named in one clear error."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from intentrank.clickbait import ClickbaitConfig, ClickbaitScorer, load_default_scorer
from intentrank.clickbait.backends.tokenbag import TokenBagBackend, _tokenizer
from intentrank.clickbait.scorer import DEFAULT_MODEL_DIR, STUDENT_MODEL_DIR, default_model_dir
from intentrank.clickbait.training import evaluate, load_corpus
from intentrank.errors import IntentRankError

from .conftest import damage

TOKENCONV = Path("member1_tokenconv") / "tokenconv.npz"
TITLES = [
    "You Won't Believe What This Dog Did Next",
    "Senate passes the budget bill after a long night of votes on amendments and procedure",
    "17 things only 90s kids remember",
    "a",
    "Ünïcödé — “quotes” and dashes… 🙂",
    "Central bank holds interest rates " * 30,
    "This is why you should never eat bananas",
    "This is why you should never eat bananas",
]


@pytest.fixture(scope="module")
def student() -> ClickbaitScorer:
    return load_default_scorer(ClickbaitConfig(model="student"))


@pytest.fixture
def student_copy(tmp_path: Path) -> Path:
    """A copy of the shipped student whose files a test may damage."""
    d = tmp_path / "student"
    shutil.copytree(STUDENT_MODEL_DIR, d)
    return d


def test_selected_by_name() -> None:
    assert default_model_dir(ClickbaitConfig(model="student")) == STUDENT_MODEL_DIR
    assert default_model_dir(ClickbaitConfig(model="ensemble")) == DEFAULT_MODEL_DIR
    assert default_model_dir(ClickbaitConfig(model="student", model_dir=Path("/x"))) == Path("/x")
    names = [m.name for m in load_default_scorer(ClickbaitConfig(model="student")).backend.members]
    assert names == ["lexical", "tokenconv"]
    with pytest.raises(ValidationError, match="model"):
        ClickbaitConfig(model="teacher")


def test_scores_do_not_depend_on_batch_neighbours(student: ClickbaitScorer) -> None:
    alone = np.array([student.score([t])[0] for t in TITLES])
    together = student.score(TITLES)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(TITLES))
    shuffled = student.score([TITLES[i] for i in order] + ["filler " * k for k in range(1, 40)])
    assert np.array_equal(alone, together)
    assert np.array_equal(alone[order], shuffled[: len(TITLES)])
    assert alone[0] > alone[1] and np.all((alone >= 0) & (alone <= 1))


def test_quality_on_held_out_split(student: ClickbaitScorer) -> None:
    """Floors below the measured figures (docs/clickbait.md); the held-out 20% was never trained on."""
    cfg = ClickbaitConfig()
    m = evaluate(student, cfg, load_corpus(cfg))
    assert m["webis_auc"] >= 0.875 and m["webis_mse"] <= 0.034 and m["stop_accuracy_lower"] >= 0.96, m


def test_save_load_round_trip(student: ClickbaitScorer, tmp_path: Path) -> None:
    student.save(tmp_path / "m")
    again = ClickbaitScorer.load(tmp_path / "m")
    assert np.array_equal(again.score(TITLES), student.score(TITLES))


@pytest.mark.parametrize("pooling", ["mean", "meanmax"])
def test_tokenbag_fits_and_round_trips(tmp_path: Path, pooling: str) -> None:
    titles = ["you will not believe this trick", "parliament passes the budget"] * 20
    y = np.array([0.9, 0.1] * 20)
    bag = TokenBagBackend(hidden=8, epochs=3, lr=1e-2, batch_size=8, pooling=pooling)
    vocab = _tokenizer(64).get_vocab_size()
    bag.init_embeddings = lambda: np.random.default_rng(0).normal(size=(vocab, 16)).astype(np.float32)
    bag.fit(titles, y, np.ones(40))
    p = bag.predict(titles[:2])
    assert p[0] > p[1]
    params = bag.save(tmp_path)
    assert np.array_equal(TokenBagBackend.load(tmp_path, params).predict(titles[:2]), p)
    # per-title arithmetic: the same score alone as next to a longer neighbour
    assert bag.predict([titles[0]])[0] == bag.predict([titles[1] * 3, titles[0]])[1]


def test_unknown_pooling_is_refused() -> None:
    with pytest.raises(IntentRankError, match="pooling"):
        TokenBagBackend(pooling="attention")


def _load_error(d: Path) -> str:
    with pytest.raises(IntentRankError) as info:
        ClickbaitScorer.load(d).score(["You won't believe this"])
    msg = str(info.value)
    assert "\n" not in msg and "allow_pickle" not in msg and "Traceback" not in msg, msg
    return msg


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (None, "missing model file"),
        (b"", "the file is empty"),
        (b"PK\x03\x04" + bytes(range(256)) * 4, "not a readable .npz archive"),
    ],
)
def test_damaged_weights_are_named(student_copy: Path, data: bytes | None, why: str) -> None:
    path = student_copy / TOKENCONV
    if data is None:
        path.unlink()
    else:
        damage(path, data)
    msg = _load_error(student_copy)
    assert str(path) in msg and why in msg, msg


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"tables": np.zeros((3, 5), np.int8)}, "'tables' has shape (3, 5)"),
        ({"bias": np.full(128, np.nan, np.float32)}, "NaN or infinite"),
    ],
)
def test_wrong_table_is_named(student_copy: Path, change: dict, why: str) -> None:
    path = student_copy / TOKENCONV
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    path.unlink()
    np.savez(path, **(arrays | change))
    msg = _load_error(student_copy)
    assert str(path) in msg and why in msg, msg
