"""``clickbait.model`` is honoured by every caller that builds the scorer from the config: the simulator's
catalogue (its scores and their cache key) and the service's catalogue files. The service state and
``intentrank serve`` are in tests/service/test_clickbait_model.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from intentrank.clickbait import ClickbaitConfig, load_default_scorer
from intentrank.service.catalogue_files import read_items
from intentrank.simulator.catalogue import build_catalogue, default_scorer_key
from intentrank.simulator.config import CatalogueConfig

TITLES = [
    "You Won't Believe What This Dog Did Next",
    "Senate passes the annual budget bill",
    "17 Things Only Cat Owners Will Understand",
    "Central bank holds interest rates steady",
    "This Simple Trick Will Change Your Mornings Forever",
    "Flooding closes three roads in the north",
]


@pytest.fixture(scope="module")
def student_scores() -> np.ndarray:
    return load_default_scorer(ClickbaitConfig(model="student")).score(TITLES)


def test_the_two_shipped_models_differ_on_these_titles(student_scores: np.ndarray) -> None:
    ens = load_default_scorer(ClickbaitConfig(model="ensemble"))
    ens.use_cache = False
    assert np.abs(ens.score(TITLES) - student_scores).max() > 1e-3  # else the tests below prove nothing


def test_catalogue_scores_with_the_configured_model(tmp_path: Path, student_scores: np.ndarray) -> None:
    heads = pd.DataFrame(
        {"title": TITLES, "dataset": "stop-clickbait", "label": [1, 0, 1, 0, 1, 0], "truth_mean": np.nan}
    )
    cfg = CatalogueConfig(cache_dir=str(tmp_path))
    cat = build_catalogue(config=cfg, headlines=heads, clickbait=ClickbaitConfig(model="student"))
    np.testing.assert_array_equal(cat.items["clickbait_score"].to_numpy(), student_scores)
    # the score cache is keyed by the selected model's files, so switching models never reuses scores
    assert default_scorer_key(ClickbaitConfig(model="student")) != default_scorer_key(ClickbaitConfig())
    names = {p.name for p in tmp_path.rglob("*")}
    assert any(default_scorer_key(ClickbaitConfig(model="student")) in n for n in names)


def test_items_file_scored_with_the_configured_model(tmp_path: Path, student_scores: np.ndarray) -> None:
    p = tmp_path / "items.csv"
    pd.DataFrame({"title": TITLES, "topic": "t", "source": "s", "publish_ts": 0.0}).to_csv(p, index=False)
    got = read_items(p, clickbait=ClickbaitConfig(model="student"))
    np.testing.assert_array_equal(got["clickbait_score"].to_numpy(), student_scores)


def _calls(name: str) -> list[tuple[str, int, list[str], int]]:
    """(file, line, keyword names, positional count) of every call of ``name`` in src/intentrank."""
    import ast

    src = Path(__file__).resolve().parents[2] / "src" / "intentrank"
    out = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                f = node.func
                called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                if called == name:
                    kws = [k.arg or "**" for k in node.keywords]
                    out.append((str(path.relative_to(src)), node.lineno, kws, len(node.args)))
    return out


def test_every_caller_passes_the_clickbait_config() -> None:
    """No caller falls back to the default model silently: ``load_default_scorer`` always gets a config,
    and every catalogue built where the root config is at hand (cli, experiments) gets ``clickbait=``."""
    bare = [(f, n) for f, n, kws, npos in _calls("load_default_scorer") if not kws and not npos]
    assert not bare, f"load_default_scorer() without a config at {bare}"
    cats = [c for c in _calls("build_catalogue") if c[0].split("/")[0] in ("cli", "experiments", "service")]
    # parallel.py only receives a built catalogue or the simulator config; its callers build with clickbait=
    missing = [(f, n) for f, n, kws, _ in cats if "clickbait" not in kws and not f.endswith("parallel.py")]
    assert cats and not missing, f"build_catalogue without clickbait= at {missing}"
