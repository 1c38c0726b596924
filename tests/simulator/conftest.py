"""Small worlds for fast simulator tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intentrank.simulator.catalogue import Catalogue, build_catalogue, load_headlines, synthetic_catalogue


@pytest.fixture(scope="session")
def small_catalogue() -> Catalogue:
    return synthetic_catalogue(3000, seed=0)


@pytest.fixture(scope="session")
def headlines() -> pd.DataFrame:
    """A fixed sample of the shipped headlines from both datasets."""
    return load_headlines().sample(4000, random_state=0)


def fake_scorer(titles) -> np.ndarray:
    """Cheap stand-in for the clickbait model: a pseudo-score from title features."""
    return np.array([min(1.0, (t.count(" ") % 7) / 7 + (0.3 if t[:1].isdigit() else 0.0)) for t in titles])


@pytest.fixture(scope="session")
def scorer_fn():
    """The stand-in scorer as a fixture (test modules cannot import conftest)."""
    return fake_scorer


@pytest.fixture(scope="session")
def real_catalogue(headlines: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Catalogue:
    from intentrank.simulator.config import CatalogueConfig

    cfg = CatalogueConfig(cache_dir=str(tmp_path_factory.mktemp("cache")))
    return build_catalogue(scorer=fake_scorer, config=cfg, seed=0, headlines=headlines)
