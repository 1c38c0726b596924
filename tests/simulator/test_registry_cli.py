"""Every policy by name from a fresh process: the registry needs no side-effect imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.trainer import Trainer
from intentrank.simulator.registry import default_registry, get_policy

from ..ranking.conftest import make_events


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory):
    """Run ``intentrank ARGS`` in a fresh interpreter (catalogue cache shared across the module's calls)."""
    cache = tmp_path_factory.mktemp("cache")
    cfg = cache / "config.yaml"
    cfg.write_text(f"simulator:\n  catalogue:\n    cache_dir: {cache}\n")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code = "from intentrank.cli.main import app; app()"
        return subprocess.run(
            [sys.executable, "-c", code, *args, "--config", str(cfg)],
            capture_output=True, text=True, timeout=300, env=os.environ.copy(),
        )  # fmt: skip

    return run


def test_heuristic_over_a_base_from_a_fresh_shell(cli) -> None:
    res = cli("simulate", "--policy", "heuristic", "--base", "ctr_oracle", "--users", "2000", "--days", "2")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    plain = json.loads(cli("simulate", "--policy", "ctr_oracle", "--users", "2000", "--days", "2").stdout)
    k, kp = out["kpis"], plain["kpis"]
    assert k["users"] == 2000 and k["total_impressions"] > 0
    share = lambda x: x["impressions_heavy_per_user"] / x["impressions_per_user"]  # noqa: E731
    assert share(k) < 0.8 * share(kp)  # the penalty pushes heavy clickbait down against the same base


def test_ranker_with_a_model_from_a_fresh_shell(cli, tmp_path: Path) -> None:
    imp, items = make_events(n_slates=300)
    cfg = RankerConfig.model_validate(
        {"train": {"epochs": 1, "progress": False},
         "model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}}}
    )  # fmt: skip
    Trainer(cfg).fit(imp, items).save(tmp_path / "model")
    res = cli("simulate", "--policy", "ranker", "--model", str(tmp_path / "model"), "--users", "500",
              "--days", "2")  # fmt: skip
    assert res.returncode == 0, res.stderr
    k = json.loads(res.stdout)["kpis"]
    assert k["users"] == 500 and k["clicks_per_user"] > 0
    missing = cli("simulate", "--policy", "ranker", "--users", "10", "--days", "1")
    assert missing.returncode == 2 and "needs a model directory" in missing.stderr


def test_registry_knows_every_policy_and_names_unknown_ones() -> None:
    reg = default_registry()
    assert {"random", "popularity", "ctr_oracle", "intent_oracle", "ranker", "heuristic"} <= set(reg.names())
    assert get_policy("random").stochastic
    from intentrank.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown policy 'nope'; known: ctr_oracle"):
        get_policy("nope")
