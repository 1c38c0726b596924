"""``intentrank ope``: estimates from a tiny logged store, clear errors before any work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import Catalogue, synthetic_catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.world import World

runner = CliRunner()
USERS = "400"
#: Trust does not move, so the logger cannot leave its users in another state than the target would: the
#: logged contexts are then the target's own (up to session lengths) and the estimate must cover its truth.
STATIC_TRUST = {"behaviour": {"trust_bounce_loss": 0.0, "trust_satisfied_gain": 0.0}}


@pytest.fixture(scope="module")
def small_catalogue() -> Catalogue:
    return synthetic_catalogue(3000, seed=0)


@pytest.fixture(autouse=True, scope="module")
def _small_world(small_catalogue: Catalogue) -> Iterator[None]:
    """The CLI builds the full scored catalogue; tests swap in a small synthetic one."""
    import intentrank.simulator.catalogue as catalogue

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(catalogue, "build_catalogue", lambda **kw: small_catalogue)
        yield


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cfg") / "static_trust.json"
    path.write_text(json.dumps({"simulator": STATIC_TRUST}))
    return path


def _simulate(policy: str, out: Path | None = None, seed: int = 0, config: Path | None = None) -> dict:
    args = ["simulate", "--policy", policy, "--users", USERS, "--days", "1", "--seed", str(seed)]
    args += ["--config", str(config)] if config else []
    res = runner.invoke(app, args + (["--out", str(out)] if out else []))
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def explored(tmp_path_factory: pytest.TempPathFactory, config: Path) -> Path:
    """A store with a deterministic run (0) and an exploring run (1) of the same users."""
    path = tmp_path_factory.mktemp("ope") / "log.duckdb"
    _simulate("ctr_oracle", path, config=config)
    _simulate("explore", path, config=config)
    return path


def _on_policy_ctr(policy: str, catalogue: Catalogue, runs: int = 3) -> float:
    """The policy served to the users of the logged run (same world), CTR averaged over ``runs`` seeds."""
    cfg = SimulatorConfig(users=int(USERS), days=1, **STATIC_TRUST)
    world = World.create(catalogue, cfg, seed=0)
    kpis = [simulate(policy, cfg, seed=100 + s, world=world).per_user for s in range(runs)]
    return float(np.mean([k["clicks"].sum() / k["impressions"].sum() for k in kpis]))


def test_estimates_cover_the_on_policy_truth(
    explored: Path, tmp_path: Path, small_catalogue: Catalogue, config: Path
) -> None:
    """Easy case: the uniformly random policy, whose every slate the logger can show (ε = 0.1 bounds
    the weights by 10). Truth: the same users served by it, averaged over three simulation seeds."""
    out = tmp_path / "ope.json"
    res = runner.invoke(
        app,
        ["ope", "--log", str(explored), "--policy", "random", "--users", USERS, "--config", str(config),
         "--n-bootstrap", "300", "--n-samples", "32",
         "--estimators", "ips,snips,dr,sndr,iips", "--alpha", "0.01", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "snips" in res.stdout and "(logger)" in res.stdout
    payload = json.loads(out.read_text())
    assert (payload["run_id"], payload["logging_policy"], payload["policy"]) == (1, "explore", "random")
    ctr = _on_policy_ctr("random", small_catalogue)
    est = {(r["kpi"], r["estimator"]): r for r in payload["estimates"]}
    for name in ("ips", "snips"):  # DR/SNDR: the context-free reward model adds variance here, see docs
        r = est[("ctr", name)]
        assert r["ci_low"] <= ctr <= r["ci_high"], (name, r, ctr)
    r = est[("clicks_per_slate", "iips")]
    assert r["ci_low"] <= ctr * 20 <= r["ci_high"], (r, ctr * 20)
    # the random target's CTR is well below what the click-seeking logger got, and the estimate says so
    assert est[("ctr", "snips")]["ci_high"] < payload["logged"]["ctr"]


def test_a_log_without_propensities_is_refused(explored: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["ope", "--log", str(explored), "--policy", "random", "--run", "0"])
    assert res.exit_code == 2
    assert "run 0 (policy ctr_oracle) has no logged propensities" in res.output
    det = tmp_path / "det.duckdb"
    _simulate("ctr_oracle", det)
    res = runner.invoke(app, ["ope", "--log", str(det), "--policy", "random"])
    assert res.exit_code == 2 and "no logged propensities" in res.output and "Traceback" not in res.output


def test_unknown_policy_and_estimator_names_are_listed(explored: Path) -> None:
    res = runner.invoke(app, ["ope", "--log", str(explored), "--policy", "nope"])
    assert res.exit_code == 2
    assert "unknown policy 'nope'" in res.output and "truth_formula" in res.output and "explore" in res.output
    res = runner.invoke(app, ["ope", "--log", str(explored), "--policy", "random", "--estimators", "ips,foo"])
    assert res.exit_code == 2 and "unknown estimator(s) foo" in res.output and "rips" in res.output
    res = runner.invoke(app, ["ope", "--log", str(explored), "--policy", "random", "--users", "7"])
    assert res.exit_code == 2 and f"the log holds {USERS} users, not --users 7" in res.output
    res = runner.invoke(app, ["ope", "--log", str(explored.with_name("none.duckdb")), "--policy", "random"])
    assert res.exit_code == 2 and "not found" in res.output
