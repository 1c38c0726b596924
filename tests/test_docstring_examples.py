"""The ``>>>`` examples in the public layers' and estimators' docstrings run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "intentrank.ranking.layers.cross",
    "intentrank.ranking.layers.mlp",
    "intentrank.ranking.layers.mmoe",
    "intentrank.ranking.layers.towers",
    "intentrank.ranking.layers.embedding",
    "intentrank.ranking.models.multitask",
    "intentrank.ranking.models.esmm",
    "intentrank.ranking.models.backbones",
    "intentrank.ranking.losses",
    "intentrank.stats.compare",
    "intentrank.stats.srm",
    "intentrank.stats.multiple",
    "intentrank.stats.calibration",
    "intentrank.mitigation.heuristic",
    "intentrank.mitigation.aux_loss",
    "intentrank.mitigation.adversarial",
    "intentrank.mitigation.shallow_tower",
    "intentrank.mitigation.rl_alignment",
    "intentrank.clickbait.scorer",
    "intentrank.ranking.outputs",
    "intentrank.ranking.candidates",
    "intentrank.ranking.trainer",
    "intentrank.serving.ordering",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    res = doctest.testmod(
        importlib.import_module(name),
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
        report=True,
    )
    assert res.attempted > 0, f"{name} has no docstring example"
    assert res.failed == 0, (
        f"{res.failed} of {res.attempted} examples in {name} failed (see the output above)"
    )
