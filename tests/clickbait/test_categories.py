import numpy as np
import pytest

from intentrank.clickbait import CATEGORIES, categorize
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.errors import IntentRankError


def test_categories_boundaries_are_inclusive_lower_bounds():
    s = np.array([0.0, 0.399, 0.4, 0.69, 0.7, 1.0])
    codes = categorize(s)
    assert codes.dtype == np.int8
    assert codes.tolist() == [0, 0, 1, 1, 2, 2]
    assert [CATEGORIES[c] for c in codes] == ["non", "non", "light", "light", "heavy", "heavy"]


def test_categories_custom_thresholds_and_errors():
    assert categorize(np.array([0.5]), light=0.6, heavy=0.9).tolist() == [0]
    with pytest.raises(IntentRankError, match="light < heavy"):
        categorize(np.array([0.5]), light=0.8, heavy=0.7)
    with pytest.raises(IntentRankError, match="NaN at index 1"):
        categorize(np.array([0.1, np.nan]))


def test_config_rejects_unordered_thresholds():
    with pytest.raises(ValueError, match="light_threshold"):
        ClickbaitConfig(light_threshold=0.8, heavy_threshold=0.7)
