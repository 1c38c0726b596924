"""The trade-off tuner at toy scale: frontier, constrained pick, confirmation, determinism, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.config import load_config
from intentrank.errors import ConfigError
from intentrank.experiments.config import parse_constraint
from intentrank.experiments.tuner import (
    OBJECTIVES,
    _holds_with_ci,
    holds_at_bound,
    method_settings,
    paired_relative,
    tune,
    write_result,
)

TINY = {
    "simulator": {"candidates": 40, "max_slates": 3},
    "ranker": {"train": {"progress": False, "epochs": 1}},
    "tuner": {"trials": 3, "log_users": 100, "users": 80, "confirm_users": 120, "holdout_users": 60,
              "holdout_candidates": 2, "constraint": "heavy_cb<=-10%,clicks>=-60%"},
}  # fmt: skip


def _quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def result():
    return tune(load_config(None, overrides=TINY), say=_quiet, progress=False)


def test_frontier_is_non_dominated_and_pick_is_the_best_feasible(result) -> None:
    assert len(result.trials) == 3 and result.frontier
    sign = {"minimize": 1.0, "maximize": -1.0}
    loss = lambda t: [sign[d] * t.metrics[m] for m, d in OBJECTIVES.items()]  # noqa: E731
    for t in result.frontier:  # no trial dominates a frontier trial
        for o in result.trials:
            lo, lt = loss(o), loss(t)
            pairs = list(zip(lo, lt, strict=True))
            assert not (all(a <= b for a, b in pairs) and any(a < b for a, b in pairs))
    for t in result.trials:  # feasibility is the constraint on the relative changes
        assert t.feasible == (t.rel["heavy_cb"] <= -0.10 and t.rel["clicks"] >= -0.60)
    terms = parse_constraint(TINY["tuner"]["constraint"])
    for t in result.trials:  # eligibility: every term at the pessimistic end of the trial's paired bound
        assert t.feasible_ci == all(holds_at_bound(term, t.ci[term.metric]) for term in terms)
        assert t.ci["heavy_cb"][0] <= t.rel["heavy_cb"] <= t.ci["heavy_cb"][1]
        assert not t.feasible_ci or t.feasible  # eligible implies feasible on the point estimates
    rank = lambda t: (t.metrics["conversions"], t.metrics["clicks"])  # noqa: E731
    eligible = sorted((t for t in result.trials if t.feasible_ci), key=rank, reverse=True)
    if not eligible:
        assert result.pick is None and result.confirm is None and result.holdout is None
        return
    # the top eligible trials were re-served to the holdout; the pick is the best one still eligible there
    h = result.holdout
    assert h is not None and [int(k) for k in h["candidates"]] == [t.number for t in eligible[:2]]
    kept = {int(k): v for k, v in h["candidates"].items() if v["eligible"]}
    for v in h["candidates"].values():
        assert v["eligible"] == all(holds_at_bound(term, v["ci"][term.metric]) for term in terms)
    if not kept:
        assert result.pick is None and result.confirm is None
        return
    best = max(kept.values(), key=lambda v: (v["metrics"]["conversions"], v["metrics"]["clicks"]))
    assert result.pick is not None and kept[result.pick.number] is best
    c = result.confirm
    assert c is not None and set(c["users"]) == {"baseline", "pick"}
    for m in ("heavy_cb", "clicks", "conversions"):
        v = c["metrics"][m]
        if v["ci_low"] == v["ci_low"]:
            assert v["ci_low"] <= v["rel_change"] <= v["ci_high"]
        else:  # no delta-method interval (a treatment mean of 0): said, and the difference's CI is there
            assert v["note"] and v["treatment"] == 0
            assert v["diff_ci_low"] <= v["diff"] <= v["diff_ci_high"]
    assert c["constraint_met"] == (c["metrics"]["heavy_cb"]["rel_change"] <= -0.10
                                   and c["metrics"]["clicks"]["rel_change"] >= -0.60)  # fmt: skip
    assert c["confirmed"] == (c["constraint_met"] and c["constraint_met_within_margin"])
    assert c["constraint_met_within_margin"] or not c["constraint_met_with_ci"]  # strict implies loose


def test_a_penalty_cuts_heavy_clickbait_on_the_cohort(result) -> None:
    # the strongest penalty tried (largest w) shows fewer heavy-clickbait impressions than the baseline
    strongest = max(result.trials, key=lambda t: t.params["w"])
    assert strongest.params["w"] > 0.3
    assert strongest.metrics["heavy_cb"] < result.baseline["heavy_cb"]


def test_same_seed_same_trials_and_a_stored_study_re_picks(result, tmp_path: Path) -> None:
    # two trials of the same seed: the sampler's first (random) proposals and their results repeat
    two = TINY | {"tuner": TINY["tuner"] | {"trials": 2, "constraint": "heavy_cb<=-99.9%"}}
    db = tmp_path / "study.db"
    again = tune(load_config(None, overrides=two), say=_quiet, progress=False, storage=db)
    assert [t.params for t in again.trials] == [t.params for t in result.trials[:2]]
    assert [t.metrics for t in again.trials] == [t.metrics for t in result.trials[:2]]
    assert again.baseline == result.baseline
    # the same study under another constraint: no new trial, feasibility and pick made anew (here by the
    # plain rule: the feasible trial with the most conversions, no holdout)
    loose = TINY | {"tuner": TINY["tuner"] | {"trials": 2, "constraint": "clicks>=-100%", "pick_by": "point",
                                              "holdout_users": 0}}  # fmt: skip
    repick = tune(load_config(None, overrides=loose), say=_quiet, progress=False, storage=db)
    assert [t.metrics for t in repick.trials] == [t.metrics for t in again.trials]
    assert all(t.feasible for t in repick.trials) and repick.pick is not None
    assert repick.pick.metrics["conversions"] == max(t.metrics["conversions"] for t in repick.trials)
    assert repick.holdout is None and repick.pick_by == "point"
    # other settings than the stored study's: refused before anything runs
    other = TINY | {"tuner": TINY["tuner"] | {"trials": 2, "users": 81}}
    with pytest.raises(ConfigError, match="other tuner"):
        tune(load_config(None, overrides=other), say=_quiet, progress=False, storage=db)


def test_write_result_json_and_svg(result, tmp_path: Path) -> None:
    path = write_result(result, tmp_path)
    data = json.loads(path.read_text())
    assert {"params", "heavy_cb", "clicks", "conversions"} <= set(data["pareto"][0])
    assert len(data["trials"]) == 3
    assert (tmp_path / "pareto.svg").read_text().lstrip().startswith("<?xml")


def test_heuristic_gap_keeps_l_below_h() -> None:
    cfg = load_config(None).tuner
    s = method_settings(cfg, {"w": 0.5, "h": 0.6, "gap": 0.7, "d": 0.1})
    assert s["l"] == 0.0 and s["h"] == 0.6 and "gap" not in s


@pytest.mark.parametrize(
    ("text", "needle"),
    [("heavy<=-50%", "unknown"), ("heavy_cb<-50%", "not METRIC"), ("clicks>=-2", "not METRIC"),
     ("", "no terms")],
)
def test_bad_constraints_are_clear(text: str, needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        parse_constraint(text)
    with pytest.raises(ConfigError, match="tuner"):
        load_config(None, overrides={"tuner": {"constraint": text}})


def test_bad_method_and_knob_names() -> None:
    with pytest.raises(ConfigError, match="unknown method"):
        load_config(None, overrides={"tuner": {"method": "magic"}})
    with pytest.raises(ConfigError, match="unknown knobs"):
        load_config(None, overrides={"tuner": {"method": "aux_loss", "space": {"w": {"low": 0, "high": 1}}}})
    with pytest.raises(ConfigError, match="low must be < high"):
        load_config(None, overrides={"tuner": {"space": {"w": {"low": 1, "high": 0}}}})


def test_cli_bad_constraint_exits_2() -> None:
    res = CliRunner().invoke(app, ["tune", "--constraint", "heavy_cb<=half"])
    assert res.exit_code == 2 and "error:" in res.output and "heavy_cb<=half" in res.output


def _paired_users(n: int, rng: np.random.Generator, ratio: float, rho: float) -> tuple[pd.DataFrame, ...]:
    """Per-user clicks of a baseline and a trial served to the same users: a shared user activity
    (correlation ``rho`` on the log scale) and the trial's mean ``ratio`` times the baseline's."""
    z = rng.normal(size=(n, 3))  # column 0: the user's own activity, shared by both servings
    act = np.exp(0.5 * (np.sqrt(rho) * z[:, :1] + np.sqrt(1 - rho) * z[:, 1:]))
    b, t = rng.poisson(5 * act[:, 0]), rng.poisson(5 * ratio * act[:, 1])
    frames = []
    for clicks in (t, b):
        frames.append(pd.DataFrame({"user_id": np.arange(n), "clicks": clicks, "impressions": 20 + clicks,
                                    "impressions_heavy": clicks, "conversions": clicks,
                                    "time_spent_s": clicks, "bounces": clicks // 2}))  # fmt: skip
    return tuple(frames)


def test_paired_interval_covers_the_true_ratio_and_pairing_narrows_it() -> None:
    rng = np.random.default_rng(0)
    hits, width_paired, width_indep = 0, [], []
    for _ in range(300):
        t, b = _paired_users(400, rng, ratio=0.9, rho=0.8)
        lo, hi = paired_relative(t, b)["clicks"]
        hits += lo <= -0.1 <= hi
        width_paired.append(hi - lo)
        t2, b2 = _paired_users(400, rng, ratio=0.9, rho=0.0)
        lo2, hi2 = paired_relative(t2, b2)["clicks"]
        width_indep.append(hi2 - lo2)
    assert 0.92 <= hits / 300 <= 0.98  # a 95 % interval
    assert np.mean(width_paired) < 0.8 * np.mean(width_indep)  # correlated users: a narrower interval


def test_paired_interval_edge_cases() -> None:
    rng = np.random.default_rng(1)
    t, b = _paired_users(300, rng, ratio=1.0, rho=0.5)
    same = paired_relative(b, b)
    assert same["clicks"] == pytest.approx((0.0, 0.0))  # the baseline against itself: no uncertainty
    zero = t.assign(impressions_heavy=0)  # a -100 % change: the difference's interval, not below -100 %
    lo, hi = paired_relative(zero, b)["heavy_cb"]
    assert lo == -1.0 and -1.0 < hi < -0.8
    with pytest.raises(Exception, match="other users"):
        paired_relative(t.iloc[:-1], b)
    ci80, ci95 = paired_relative(t, b, alpha=0.2)["ctr"], paired_relative(t, b, alpha=0.05)["ctr"]
    assert ci95[0] < ci80[0] < ci80[1] < ci95[1]  # a ratio metric; the one-sided 90 % bounds lie inside


def test_confirmation_criterion_point_and_margin() -> None:
    (clicks,) = parse_constraint("clicks>=-8%")
    (heavy,) = parse_constraint("heavy_cb<=-50%")
    m = {"ci_low": -0.11, "ci_high": -0.03, "control": 5.0, "diff_ci_low": 0.0, "diff_ci_high": 0.0}
    assert not _holds_with_ci(clicks, m)  # the whole CI is not above -8 %
    assert not _holds_with_ci(clicks, m, margin=0.02)  # -11 % is a violation by more than 2 points
    assert _holds_with_ci(clicks, m, margin=0.04)
    h = {"ci_low": -0.62, "ci_high": -0.49, "control": 16.0, "diff_ci_low": 0.0, "diff_ci_high": 0.0}
    assert not _holds_with_ci(heavy, h) and _holds_with_ci(heavy, h, margin=0.02)
    assert holds_at_bound(heavy, [-0.62, -0.51]) and not holds_at_bound(clicks, [-0.09, -0.05])


def test_cli_bad_pick_settings_exit_2() -> None:
    res = CliRunner().invoke(app, ["tune", "--pick-by", "best"])
    assert res.exit_code == 2 and "error:" in res.output and "pick_by" in res.output
    with pytest.raises(ConfigError, match="pick_confidence"):
        load_config(None, overrides={"tuner": {"pick_confidence": 0.4}})
