"""Bad experiment configs fail (or warn) before anything runs, with one line naming the field and value."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.errors import ConfigError
from intentrank.experiments.abtest import assign_users, expected_mde, plan_experiment
from intentrank.stats import srm_check
from tests.experiments.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]


def test_unknown_method_name_names_the_arm_and_the_known_methods() -> None:
    with pytest.raises(ConfigError) as err:
        tiny_config([{"name": "control"}, {"name": "x", "mitigation": ["heuristic", "clickbait_filter"]}])
    msg = str(err.value)
    assert "experiment.abtest.arms.1.mitigation" in msg and "'clickbait_filter'" in msg
    assert "shallow_tower" in msg  # the known names are listed


def test_unknown_policy_of_a_reference_arm() -> None:
    cfg = tiny_config([{"name": "control"}, {"name": "ref", "policy": "truth_formulaa"}])
    with pytest.raises(ConfigError, match=r"arms\.1\.policy: unknown policy 'truth_formulaa'.*truth_formula"):
        plan_experiment(cfg)


def test_bad_parameters_of_a_reference_policy() -> None:
    cfg = tiny_config([{"name": "control"}, {"name": "ref", "policy": "truth_formula", "params": {"q": 1}}])
    with pytest.raises(ConfigError, match=r"arms\.1 \(ref\).*bad parameters \['q'\]"):
        plan_experiment(cfg)


@pytest.mark.parametrize(
    ("arms", "pattern"),
    [
        # control 40% + its A/A copy 40% + 30% = 110%
        ([{"name": "control", "share": 0.4}, {"name": "b", "share": 0.3}], r"add to 110\.0% \(over 100%"),
        ([{"name": "control", "share": 0.2}, {"name": "b", "share": 0.2}], r"add to 60\.0%; they must add"),
        ([{"name": "control", "share": 0.5}, {"name": "b"}], "nothing is left"),
        ([{"name": "control"}, {"name": "control"}], "arm names repeat: control"),
        ([{"name": "a"}, {"name": "b"}], "control 'control' is not an arm"),
        ([{"name": "control"}, {"name": "control_aa"}], "added automatically as the A/A copy"),
        ([{"name": "control"}, {"name": "r", "policy": "ctr_oracle", "mitigation": ["aux_loss"]}],
         "no model to train"),
        ([{"name": "control"}, {"name": "r", "target": "clicks"}], "target"),
    ],
)  # fmt: skip
def test_inconsistent_arms_and_shares_are_rejected(arms, pattern) -> None:
    with pytest.raises(ConfigError, match=pattern):
        tiny_config(arms)


def test_bad_ranker_override_of_an_arm_names_it() -> None:
    cfg = tiny_config([{"name": "control"}, {"name": "b", "ranker": {"model": {"backbone": "transformer"}}}])
    with pytest.raises(ConfigError, match=r"experiment\.abtest\.arms\.1\.ranker\.model\.backbone"):
        plan_experiment(cfg)


def test_shares_are_planned_with_the_aa_copy_taking_controls_share() -> None:
    cfg = tiny_config([{"name": "control", "share": 0.3}, {"name": "b"}, {"name": "c", "share": 0.1}])
    plan = plan_experiment(cfg)
    assert plan.names == ["control", "control_aa", "b", "c"]
    assert plan.shares.tolist() == pytest.approx([0.3, 0.3, 0.3, 0.1])
    assert plan.aa_name == "control_aa" and "aa" in plan.aa_name


def test_too_few_users_for_any_power_warns_and_too_few_for_a_comparison_fails() -> None:
    arms = [{"name": "control"}, {"name": "b"}, {"name": "c"}]
    with pytest.warns(UserWarning, match="too few users for any power"):
        plan = plan_experiment(tiny_config(arms, users=200, mde_warn=0.2))
    assert plan.expected_mde > 0.2
    # 10,000 users per arm: MDE about 3.6%
    assert expected_mde(10_000) == pytest.approx(2.8016 * 0.9 * np.sqrt(2 / 10_000), rel=1e-3)
    with pytest.raises(ConfigError, match="at least 2 per arm"):
        plan_experiment(tiny_config(arms, users=6))


def test_assignment_is_stable_follows_the_shares_and_differs_between_experiments() -> None:
    users = np.arange(40_000, dtype=np.int64)
    shares = np.array([0.5, 0.25, 0.25])
    a = assign_users(users, "exp1", shares)
    assert np.array_equal(a, assign_users(users, "exp1", shares))
    counts = np.bincount(a, minlength=3)
    assert srm_check(counts.tolist(), shares.tolist()).p_value > 0.001
    # a hash, not a bias: with a wrong design the SRM check fires
    assert srm_check(counts.tolist(), [0.4, 0.3, 0.3]).p_value < 1e-6
    b = assign_users(users, "exp2", shares)
    both_first = np.mean((a == 0) & (b == 0))
    assert both_first == pytest.approx(0.25, abs=0.01)  # independent experiments


def test_cli_bad_config_exits_2_with_one_line_before_anything_runs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"experiment": {"abtest": {"arms": [
        {"name": "control"}, {"name": "t", "mitigation": ["nope"]}]}}}))  # fmt: skip
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["abtest", "--config", str(bad), "--out", str(out)])
    assert res.exit_code == 2
    assert res.output.startswith("error: ") and "'nope'" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_cli_check_warns_about_power_and_prints_the_plan(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["abtest", "--config", str(ROOT / "configs" / "paper_comparison.yaml"), "--users", "600", "--check"],
    )
    assert res.exit_code == 0, res.output
    assert "warning: experiment.abtest.users: too few users for any power" in res.output
    assert '"production_aa": 0.0833' in res.output


def test_paper_comparison_config_has_every_arm_of_the_paper() -> None:
    data = yaml.safe_load((ROOT / "configs" / "paper_comparison.yaml").read_text())
    arms = {a["name"]: a for a in data["experiment"]["abtest"]["arms"]}
    methods = {m for a in arms.values() for m in a.get("mitigation", [])}
    assert methods == {"heuristic", "shallow_tower", "plain_feature", "adversarial", "aux_loss", "downweight",
                       "rl_alignment"}  # fmt: skip
    assert arms["truth_formula"]["policy"] == "truth_formula"
    assert arms["click_only"]["target"] == "click" and arms["click_only"]["formula"]["b"] == 0
    assert arms["shallow_tower_pp"]["mitigation"] == ["shallow_tower", "heuristic"]
