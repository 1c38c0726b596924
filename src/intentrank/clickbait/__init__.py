"""Clickbait scoring of item titles: a graded score in [0, 1] and non / light / heavy categories.

Light to import (NumPy and pydantic only); encoder runtimes load only with a model that needs them.
"""

from intentrank.clickbait.categories import CATEGORIES, categorize
from intentrank.clickbait.config import ClickbaitConfig
from intentrank.clickbait.scorer import DEFAULT_MODEL_DIR, ClickbaitScorer, load_default_scorer

__all__ = [
    "CATEGORIES",
    "DEFAULT_MODEL_DIR",
    "ClickbaitConfig",
    "ClickbaitScorer",
    "categorize",
    "load_default_scorer",
]
