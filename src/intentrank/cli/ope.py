"""``intentrank ope``: estimate a registered policy's KPIs from a logged run, before it serves.

``intentrank ope --log STORE --policy NAME [--run ID] [--estimators ips,snips,...] [--out FILE]`` reads
an exploring logging policy's run (impressions + slate records with propensities) from a DuckDB event
store, asks the target policy for its probabilities on every logged context and prints, per KPI and
estimator, the estimate with its bootstrap 95 % CI (JSON with ``--out``). Everything that can be
checked (the policy name, the estimators, that the log carries propensities) is checked before any work.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer

from intentrank.cli.common import user_errors
from intentrank.errors import ConfigError, DataError


def _target(name: str, model: Path | None, base: str | None) -> Any:
    from intentrank.cli.simulate import _policies
    from intentrank.simulator.registry import policy_names

    if name not in policy_names():
        raise ConfigError(f"--policy: unknown policy {name!r}; known: {', '.join(policy_names())}")
    return _policies([name], model, base)[name][0]


def _fmt(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:.4g}"


def format_table(table: Any, logged: dict[str, float]) -> str:
    """Plain-text table: KPI, estimator, estimate, 95 % CI, bootstrap SE; the logger's own value per KPI."""
    lines = [f"{'kpi':<22}{'estimator':<11}{'estimate':>10}  {'CI':<22}{'se':>9}  note"]
    for kpi, rows in table.groupby("kpi", sort=False):
        for r in rows.itertuples():
            ci = f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]" if np.isfinite(r.value) else ""
            lines.append(f"{kpi:<22}{r.estimator:<11}{_fmt(r.value):>10}  {ci:<22}{_fmt(r.se):>9}  {r.note}")
        lines.append(f"{kpi:<22}{'(logger)':<11}{_fmt(logged[kpi]):>10}  what the logging policy got")
    return "\n".join(lines)


@user_errors
def ope(
    log: Path = typer.Option(..., "--log", help="DuckDB event store holding an exploring policy's run."),
    policy: str = typer.Option(..., "--policy", help="Registered policy to evaluate (e.g. truth_formula)."),
    run: int | None = typer.Option(None, "--run", help="Run id (default: the latest run with propensities)."),
    estimators: str = typer.Option(
        "ips,snips,dm,dr,sndr,iips,rips,pi", "--estimators", help="Comma-separated estimators."
    ),
    out: Path | None = typer.Option(None, "--out", help="Also write the estimates as JSON here."),
    model: Path | None = typer.Option(None, "--model", help="Model directory of a 'ranker' target."),
    base: str | None = typer.Option(None, "--base", help="Base policy of a 'heuristic'/'explore' target."),
    config: Path | None = typer.Option(
        None, "--config", help="Config the run was simulated with (oracle targets rebuild its users)."
    ),
    users: int | None = typer.Option(
        None, "--users", help="Users of the simulated run (default: as many as the log holds)."
    ),
    n_bootstrap: int = typer.Option(1000, "--n-bootstrap", min=0, help="Bootstrap resamples (of users)."),
    n_samples: int = typer.Option(256, "--n-samples", min=1, help="Monte Carlo rankings per slate."),
    alpha: float = typer.Option(0.05, "--alpha", min=1e-6, max=0.5, help="1 - confidence level of the CIs."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap and the Monte Carlo."),
) -> None:
    """Estimate a policy's CTR, clicks, conversions per slate from a logged run, with bootstrap 95 % CIs."""
    from intentrank.config import load_config
    from intentrank.simulator.catalogue import build_catalogue
    from intentrank.simulator.offpolicy import (
        check_estimators,
        estimate_kpis,
        fit_reward_models,
        logged_kpis,
        read_logged_run,
        target_probabilities,
    )
    from intentrank.simulator.world import World

    names = check_estimators(estimators.split(","))
    target = _target(policy, model, base)
    if not log.is_file():
        raise DataError(f"--log: event store not found: {log}")
    stored = read_logged_run(log, run)  # DataError here when the log has no propensities
    cfg = load_config(config)
    seed_run = int(stored.run["seed"]) if pd.notna(stored.run.get("seed")) else cfg.seed
    catalogue = build_catalogue(config=cfg.simulator.catalogue, seed=seed_run, clickbait=cfg.clickbait)
    if len(catalogue) != stored.n_items:
        raise DataError(
            f"{log}: the store holds {stored.n_items} items but the configured catalogue has "
            f"{len(catalogue)}; "
            "pass the --config the run was simulated with"
        )
    # every simulated user browses on the first day, so the run's users are 0 .. max id
    n_users = int(stored.log.user_id.max()) + 1
    if users is not None and users != n_users:
        raise DataError(
            f"{log} run {stored.run['run_id']}: the log holds {n_users} users, not --users {users}"
        )
    world = World.create(catalogue, cfg.simulator, seed=seed_run, n_users=n_users)
    target.bind(world)
    print(
        f"run {stored.run['run_id']} of {log}: {stored.log.n_slates:,} slates logged by "
        f"{stored.run['policy']}; evaluating {policy}",
        file=sys.stderr,
    )
    models = fit_reward_models(stored.log)
    probs = target_probabilities(stored.log, target, catalogue, models, n_samples=n_samples, seed=seed)
    table = estimate_kpis(stored.log, probs, models, names, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)
    logged = logged_kpis(stored.log)
    typer.echo(format_table(table, logged))
    if out is not None:
        payload = {
            "store": str(log),
            "run_id": int(stored.run["run_id"]),
            "logging_policy": stored.run["policy"],
            "policy": policy,
            "alpha": alpha,
            "slates": stored.log.n_slates,
            "impressions": stored.log.n_slates * stored.log.slate_size,
            "logged": logged,
            "estimates": [
                {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()}
                for row in table.to_dict(orient="records")
            ],
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, default=float))
