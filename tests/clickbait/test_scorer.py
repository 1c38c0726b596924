import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intentrank.clickbait import ClickbaitScorer, load_default_scorer
from intentrank.clickbait.backends.ensemble import EnsembleBackend
from intentrank.clickbait.backends.lexical import LexicalBackend
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.hashing import HashedTfidf, HashSpec
from intentrank.clickbait.text import normalise_title
from intentrank.errors import IntentRankError

BAIT = ["you won't believe what this dog did", "17 things only 90s kids will understand",
        "this one trick will change your life", "which disney princess are you"]  # fmt: skip
NEWS = ["senate passes budget bill after long debate", "earthquake strikes northern indonesia",
        "central bank raises interest rates", "court rejects appeal in fraud case"]  # fmt: skip


@pytest.fixture(scope="module")
def small_scorer():
    titles = BAIT * 5 + NEWS * 5
    y = np.array([0.8] * 20 + [0.1] * 20)
    return ClickbaitScorer(LexicalBackend(alpha=0.1, spec=HashSpec(char_bits=14, word_bits=14))).fit(
        titles, y
    )


def test_normalisation_removes_style():
    assert normalise_title("You Won\u2019t Believe THIS \u2014 “Wow”") == 'you won\'t believe this - "wow"'
    assert normalise_title("  a\tb\n c  ") == "a b c"


def test_features_of_a_title_do_not_depend_on_its_batch():
    f = HashedTfidf(HashSpec(char_bits=12, word_bits=12))
    f.fit_transform(BAIT + NEWS)
    _, c1, v1 = f.transform([NEWS[0]])
    r2, c2, v2 = f.transform([BAIT[0], NEWS[0], BAIT[1]])
    sel = r2 == 1
    o1, o2 = np.lexsort((v1, c1)), np.lexsort((v2[sel], c2[sel]))
    assert (c1[o1] == c2[sel][o2]).all()
    assert v1[o1] == pytest.approx(v2[sel][o2])
    norms = np.bincount(r2, weights=v2**2)
    assert norms == pytest.approx([2.0, 2.0, 2.0])  # two L2-normalised blocks per title


def test_fit_score_ranks_and_is_case_invariant(small_scorer):
    s = small_scorer.score(BAIT + NEWS)
    assert s.dtype == np.float64 and ((s >= 0) & (s <= 1)).all()
    assert s[:4].min() > s[4:].max()
    assert small_scorer.score([t.upper() for t in BAIT]) == pytest.approx(s[:4])
    assert small_scorer.category(["which disney princess are you"]) in (["light"], ["heavy"])


def test_bad_input(small_scorer):
    s = small_scorer.score(["", "   \t ", BAIT[0]])
    assert s[0] == 0.0 and s[1] == 0.0 and s[2] > 0.4
    with pytest.raises(IntentRankError, match="title at index 1 is int"):
        small_scorer.score(["ok", 3])
    with pytest.raises(IntentRankError, match="title at index 0 is NoneType"):
        small_scorer.score([None])
    with pytest.raises(IntentRankError, match="not a single string"):
        small_scorer.score("a title")
    assert small_scorer.score([]).shape == (0,)
    one = small_scorer.score(["x"])  # shorter than the longest character n-gram
    assert one.shape == (1,) and 0.0 <= one[0] <= 1.0
    assert small_scorer.score(["x", "senate passes budget bill after long debate"])[0] == one[0]


def test_huge_title_is_truncated_deterministically(small_scorer):
    huge = "you won't believe " * 6000  # about 108 kB
    cut = huge[: small_scorer.config.max_chars]
    a, b = small_scorer.score([huge, cut])
    assert a == b
    assert small_scorer.score([huge])[0] == a


def test_save_load_roundtrip(tmp_path, small_scorer):
    small_scorer.save(tmp_path / "m")
    again = ClickbaitScorer.load(tmp_path / "m")
    assert again.score(BAIT + NEWS) == pytest.approx(small_scorer.score(BAIT + NEWS))
    with pytest.raises(IntentRankError, match=r"missing model\.json"):
        ClickbaitScorer.load(tmp_path / "nothing")
    (tmp_path / "m" / "model.json").write_text('{"format_version": 1}')
    with pytest.raises(IntentRankError, match="malformed clickbait model"):
        ClickbaitScorer.load(tmp_path / "m")


def test_unfitted_and_bad_targets():
    sc = ClickbaitScorer("lexical")
    with pytest.raises(IntentRankError, match="not fitted"):
        sc.score(["x"])
    with pytest.raises(IntentRankError, match="targets must be finite numbers in"):
        sc.fit(["a", "b"], np.array([0.1, 2.0]))
    with pytest.raises(IntentRankError, match="unknown clickbait backend"):
        ClickbaitScorer("nope")


def test_ensemble_fits_stack_weights_and_roundtrips(tmp_path):
    spec = HashSpec(char_bits=12, word_bits=12)
    ens = EnsembleBackend([LexicalBackend(0.1, spec), LexicalBackend(10.0, spec)], val_fraction=0.25, seed=0)
    titles = BAIT * 5 + NEWS * 5
    sc = ClickbaitScorer(ens).fit(titles, np.array([0.8] * 20 + [0.1] * 20))
    assert ens.coef is not None and ens.coef.shape == (3,)
    sc.save(tmp_path / "e")
    assert ClickbaitScorer.load(tmp_path / "e").score(titles) == pytest.approx(sc.score(titles))


def test_default_model_contract_and_cache_consistency():
    sc = load_default_scorer(ClickbaitConfig())
    titles = ["Which Disney Princess Are You?", "Senate passes budget bill after long debate"]
    s = sc.score(titles)
    assert s.dtype == np.float64 and s.shape == (2,) and s[0] > s[1]
    assert sc.cache is not None
    shipped = ["Flying mattress strikes biker at 50 mph, ends up cushioning his fall by"]
    cached = sc.score(shipped)
    sc.use_cache = False
    # the cache was computed on the build machine; int8 ONNX kernels differ slightly between CPUs (AVX2 vs
    # VNNI), so elsewhere the live score may differ from the cached one by a few thousandths
    assert sc.score(shipped) == pytest.approx(cached, abs=0.05)
    # a title's score does not depend on the other titles in the call (int8 ONNX runs one title at a time)
    alone = sc.score([titles[0]])
    assert sc.score([*shipped, titles[0], titles[1]])[1] == alone[0]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(max_size=40), max_size=6))
def test_any_unicode_titles_score_in_range_and_batch_independent(small_scorer, titles):
    s = small_scorer.score(titles)
    assert s.shape == (len(titles),) and ((s >= 0) & (s <= 1)).all()
    if titles:
        assert small_scorer.score(titles[:1])[0] == pytest.approx(s[0])
