"""The counter-world preset: where clickbait is as good as other content, mitigating it is a cost.

The same harness and arms in both worlds (a CTR-greedy ranker, and the same ranker with the heuristic
clickbait penalty): in the default world the penalty lowers the bounce rate and keeps time spent; in the
counter world (configs/counter_world.yaml) it costs clicks and time spent and gains nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from intentrank.experiments.abtest import run_abtest
from tests.experiments.conftest import pool_for, tiny_config

ROOT = Path(__file__).resolve().parents[2]
ARMS = [
    {"name": "control", "policy": "ctr_oracle"},
    {"name": "penalised", "policy": "ctr_oracle", "mitigation": [{"method": "heuristic", "w": 0.9}]},
]


def _run(simulator: dict) -> dict:
    cfg = tiny_config(ARMS, simulator=simulator, users=3000, aa=False, calibration_splits=0, window_min=720)
    res = run_abtest(cfg, pool=pool_for(cfg), progress=False)
    return res.comparisons.set_index("metric").to_dict("index")


@pytest.fixture(scope="module")
def worlds() -> dict[str, dict]:
    counter = yaml.safe_load((ROOT / "configs" / "counter_world.yaml").read_text())["simulator"]
    return {"default": _run({}), "counter": _run(counter)}


def test_the_preset_removes_every_clickbait_penalty_of_the_world() -> None:
    sim = yaml.safe_load((ROOT / "configs" / "counter_world.yaml").read_text())["simulator"]
    assert sim["behaviour"]["bounce_clickbait"] == 0.0
    assert sim["catalogue"]["quality_clickbait_slope"] == 0.0


def test_default_world_penalising_clickbait_cuts_bounces(worlds) -> None:
    d = worlds["default"]
    assert d["impressions_heavy_cb"]["rel_value"] < -0.5
    assert d["bounce_rate"]["rel_ci_high"] < -0.2  # far fewer bounces


def test_the_world_not_the_harness_turns_the_verdict(worlds) -> None:
    d, c = worlds["default"]["time_spent"], worlds["counter"]["time_spent"]
    assert d["rel_ci_low"] > c["rel_ci_high"]  # time spent: kept in the default world, lost in the counter


def test_counter_world_penalising_clickbait_is_a_cost(worlds) -> None:
    c = worlds["counter"]
    assert c["impressions_heavy_cb"]["rel_value"] < -0.5
    assert c["clicks"]["rel_ci_high"] < 0  # it costs clicks ...
    for m in ("time_spent", "conversions"):  # ... and gains nothing downstream
        assert not (c[m]["rel_ci_low"] > 0), (m, c[m]["rel_value"], c[m]["rel_ci_low"])
    # and the bounce rate no longer falls with clickbait (no extra bounce to remove)
    assert not (c["bounce_rate"]["rel_ci_high"] < -0.05)
