"""Catalogue: hidden truth from human labels, quality spread, topics, sources, score caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intentrank.errors import DataError, IntentRankError
from intentrank.simulator.catalogue import build_catalogue, extend_catalogue
from intentrank.simulator.config import CatalogueConfig
from intentrank.simulator.topics import TOPICS, assign_topics
from intentrank.store.schema import ITEM_COLUMNS


def test_truth_follows_human_labels(real_catalogue, headlines: pd.DataFrame) -> None:
    h = headlines.reset_index(drop=True)
    b = real_catalogue.true_clickbait
    stop = (h["dataset"] == "stop-clickbait").to_numpy()
    pos, neg = stop & (h["label"] == 1).to_numpy(), stop & (h["label"] == 0).to_numpy()
    assert b[pos].mean() > 0.6 > 0.2 > b[neg].mean()
    assert b[pos].std() > 0.05  # graded, not 0/1
    webis = ~stop
    assert np.corrcoef(b[webis], h["truth_mean"].to_numpy()[webis])[0, 1] > 0.9
    # the scorer's c is public, the truth is not derived from it
    assert not np.allclose(b, real_catalogue.clickbait_score)


def test_quality_is_lower_for_clickbait_but_spread(real_catalogue) -> None:
    b, q = real_catalogue.true_clickbait, real_catalogue.quality
    assert np.corrcoef(b, q)[0, 1] < -0.3
    heavy = b > 0.7
    assert (q[heavy] > 0.5).mean() > 0.1  # some clickbait keeps readers
    assert ((q >= 0) & (q <= 1)).all()


def test_public_columns_topics_and_sources(real_catalogue) -> None:
    items = real_catalogue.items
    assert list(items.columns) == list(ITEM_COLUMNS)
    assert set(items["topic"]) <= set(TOPICS) and items["topic"].nunique() >= 8
    assert (items["topic"] == "general").mean() < 0.4
    assert items["source"].str.match(r"^(viral|news|social)-\d+$").all()
    assert (items["publish_ts"] <= 0).all()
    assert list(real_catalogue.category) == list(
        np.clip((items["clickbait_score"] >= 0.4).astype(int) + (items["clickbait_score"] >= 0.7), 0, 2)
    )


def test_topics_are_deterministic_and_keyword_driven() -> None:
    titles = [
        "Obama signs the senate bill",
        "Yankees win the league cup",
        "You won't believe this cake recipe",
        "zzz qqq",
    ]
    got = assign_topics(titles)
    assert [TOPICS[t] for t in got] == ["politics", "sports", "food", "general"]
    assert np.array_equal(got, assign_topics(titles))


def test_scores_are_cached(headlines: pd.DataFrame, tmp_path: Path, scorer_fn) -> None:
    calls = []

    def counting(titles):
        calls.append(len(titles))
        return scorer_fn(titles)

    cfg = CatalogueConfig(cache_dir=str(tmp_path))
    h = headlines.head(300)
    a = build_catalogue(scorer=counting, config=cfg, scorer_key="fake", headlines=h)
    b = build_catalogue(scorer=counting, config=cfg, scorer_key="fake", headlines=h)
    assert calls == [300]
    assert np.array_equal(a.clickbait_score, b.clickbait_score)
    build_catalogue(scorer=counting, config=cfg, headlines=h)  # no key: not cached
    assert calls == [300, 300]


def test_bad_scorer_output_and_headlines(headlines: pd.DataFrame, tmp_path: Path, scorer_fn) -> None:
    cfg = CatalogueConfig(cache_dir=str(tmp_path))
    with pytest.raises(IntentRankError, match="outside"):
        build_catalogue(scorer=lambda t: np.full(len(t), 2.0), config=cfg, headlines=headlines.head(10))
    with pytest.raises(IntentRankError, match="shape"):
        build_catalogue(scorer=lambda t: np.zeros(3), config=cfg, headlines=headlines.head(10))
    with pytest.raises(DataError, match="truth_mean"):
        build_catalogue(scorer=scorer_fn, config=cfg, headlines=headlines.head(10).drop(columns="truth_mean"))


def test_extend_catalogue(real_catalogue) -> None:
    big = extend_catalogue(real_catalogue, 5000)
    assert len(big) == 5000 and list(big.items["item_id"]) == list(range(5000))
    assert np.array_equal(big.true_clickbait[: len(real_catalogue)], real_catalogue.true_clickbait)
