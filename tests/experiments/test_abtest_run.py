"""The harness end to end on a tiny world: one loop, own-traffic learners, comparisons, files, report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from intentrank.experiments.abtest import METRICS, run_abtest
from intentrank.stats import compare_experiment
from tests.experiments.conftest import tiny_config

ARMS = [
    {"name": "control"},
    {"name": "heuristic", "mitigation": [{"method": "heuristic", "w": 0.9}]},
    {"name": "click_only", "target": "click", "formula": {"a": 1.0, "b": 0.0, "g": 0.0}},
    {
        "name": "rl",
        "mitigation": [{"method": "rl_alignment", "steps": 5, "set_size": 20, "sets_per_step": 4}],
    },
    {"name": "truth", "policy": "truth_formula"},
]


@pytest.fixture(scope="module")
def run(tiny_pool, tmp_path_factory):
    out = tmp_path_factory.mktemp("abtest")
    res = run_abtest(
        tiny_config(ARMS, users=400, window_min=720), out / "store", pool=tiny_pool, progress=False
    )
    paths = res.write(out / "out")
    return res, paths


def test_results_json_has_exactly_the_documented_shape(run) -> None:
    _res, paths = run
    data = json.loads(paths["results"].read_text())
    assert set(data) == {"arms", "comparisons", "srm_p_value"}
    names = ["control", "control_aa", "heuristic", "click_only", "rl", "truth"]
    assert list(data["arms"]) == names
    assert any("aa" in a for a in data["arms"])
    for arm in names:
        assert list(data["arms"][arm]) == list(METRICS)
    keys = {
        "arm",
        "metric",
        "control",
        "treatment",
        "rel_change",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
    }
    assert all(set(r) == keys for r in data["comparisons"])
    assert {(r["arm"], r["metric"]) for r in data["comparisons"]} == {
        (a, m) for a in names[1:] for m in METRICS
    }
    # arms were assigned by the hash with equal shares: no sample-ratio mismatch
    assert 0.001 < data["srm_p_value"] <= 1.0


def test_every_arm_ran_in_one_loop_and_learners_trained_on_own_traffic(run) -> None:
    res, _ = run
    counts = res.per_user["arm"].value_counts()
    assert set(counts.index) == set(res.plan.names) and counts.min() > 40
    for arm in ("control", "control_aa", "heuristic", "click_only", "rl"):
        assert res.updates[arm] >= 2, res.updates  # a learner per arm, updated in the loop
    assert "truth" not in res.updates  # a reference arm has nothing to learn
    assert res.extra["alignments"]["rl"] >= 1 + res.updates["rl"]  # initial + after each update
    assert set(res.per_day["day"]) == {1, 2}


def test_the_strong_heuristic_cuts_heavy_clickbait_significantly(run) -> None:
    res, _ = run
    row = res.comparisons.set_index(["arm", "metric"]).loc[("heuristic", "impressions_heavy_cb")]
    assert row["rel_value"] < -0.5 and row["p_adjusted"] < 0.05


def test_aa_copy_shows_nothing_after_the_correction(run) -> None:
    res, _ = run
    aa = res.comparisons[res.comparisons["arm"] == "control_aa"]
    assert (aa["p_adjusted"].dropna() > 0.05).all(), aa[["metric", "rel_value", "p_adjusted"]]


def test_comparisons_are_the_stats_packages_with_cuped_on_the_pre_period(run) -> None:
    res, _ = run
    again = compare_experiment(
        res.per_user, "arm", "control", means=["clicks"], ratios={"ctr": ("clicks", "impressions")},
        covariates={"clicks": "pre_clicks", "ctr": ("pre_clicks", "pre_impressions")},
    )  # fmt: skip
    mine = res.comparisons.set_index(["arm", "metric"])
    for r in again.itertuples(index=False):
        assert mine.loc[(r.arm, r.metric), "rel_value"] == pytest.approx(r.rel_value, rel=1e-9)
        assert mine.loc[(r.arm, r.metric), "rel_ci_low"] == pytest.approx(r.rel_ci_low, rel=1e-9)
    # the pre-period predicts clicks: CUPED shrinks the variance
    vr = res.comparisons[res.comparisons["metric"] == "clicks"]["variance_ratio"]
    # CUPED lowers the variance (a pooled θ can leave a metric whose covariate predicts nothing a hair
    # above 1 on a small sample)
    assert np.nanmin(vr) < 1.0 and np.nanmax(vr) < 1.01


def test_aa_calibration_is_in_the_result(run) -> None:
    res, _ = run
    cal = res.calibration.dropna()
    assert len(cal) >= 8 and (cal["splits"] == 30).all()
    assert cal["false_positive_rate"].between(0.0, 0.5).all()
    assert cal["false_positive_rate"].mean() < 0.2


def test_report_is_self_contained(run) -> None:
    _, paths = run
    text = paths["report"].read_text()
    assert text.count("<svg") >= len(METRICS) + 4
    for bad in ("<script", "<link", 'src="http', 'href="http', "@import", "url(http"):
        assert bad not in text


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_report_renders_its_plots_offline_in_headless_chromium(run, tmp_path: Path) -> None:
    from scripts.screenshot_report import screenshot

    _, paths = run
    info = screenshot(paths["report"], tmp_path / "shot.png")
    assert info["ok"], info
    assert info["svgs"] >= len(METRICS) + 4 and info["network"] == []
    assert (tmp_path / "shot.png").stat().st_size > 50_000


def test_report_shows_the_tuners_frontier_and_ope_beside_the_ab(run, tmp_path: Path) -> None:
    from intentrank.errors import IntentRankError
    from intentrank.experiments.report import write_report

    res, _ = run
    rows = [{"params": {"w": w}, "heavy_cb": 2.0 - w, "clicks": 3.0 - w, "conversions": 0.2, "pareto": True}
            for w in (0.2, 0.5, 0.9)]  # fmt: skip
    pareto = {"pareto": rows, "trials": rows, "pick": rows[1]}
    ctr = res.levels["truth"]["ctr"]
    est = {"kpi": "ctr", "estimator": "snips", "value": 0.1, "ci_low": 0.09, "ci_high": 0.11}
    ope = {"policy": "truth_formula", "logging_policy": "random", "impressions": 1000, "estimates": [est]}
    text = write_report(res, tmp_path / "r.html", pareto=pareto, ope=ope).read_text()
    assert "Pareto frontier" in text and "no tuner result given" not in text
    assert "A/B arm: <b>truth</b>" in text and f"{ctr:.4g}</td>" in text
    (tmp_path / "bad.json").write_text('[{"params": {}, "clicks": 1}]')
    with pytest.raises(IntentRankError, match="every row needs heavy_cb"):
        write_report(res, tmp_path / "r2.html", pareto=tmp_path / "bad.json")
