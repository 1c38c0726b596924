"""``intentrank abtest --config CFG --out DIR``: the A/B harness (``experiment.abtest`` of the config).

Checks the experiment before anything runs (unknown arm, policy or method names, traffic shares that do
not add up, too few users for any power: errors exit 2, warnings go to stderr), runs every arm in one
closed loop, and writes ``DIR/results.json`` (per-arm metrics, every arm-vs-control comparison, the SRM
p-value), ``DIR/report.html`` (one self-contained file) and the tables beside them. ``--pareto`` adds the
trade-off tuner's ``pareto.json`` to the report, ``--ope`` the off-policy estimates of ``intentrank ope``.
Progress goes to stderr, the KPI table to stderr at the end, the output paths as JSON to stdout.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import typer

from intentrank.cli.common import check_output_dir, user_errors


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``{"a": {"b": 1}}`` → ``[("a.b", 1)]`` (lists and scalars are leaves)."""
    out: list[tuple[str, Any]] = []
    for k, v in data.items():
        key = f"{prefix}{k}"
        out += _flatten(v, key + ".") if isinstance(v, dict) and v else [(key, v)]
    return out


@user_errors
def abtest(
    config: Path = typer.Option(..., "--config", "-c", help="Experiment config (YAML/JSON)."),
    out: Path = typer.Option(Path("runs/abtest"), "--out", help="Output folder."),
    pareto: Path | None = typer.Option(None, "--pareto", help="The tuner's pareto.json, for the report."),
    ope: Path | None = typer.Option(None, "--ope", help="Off-policy estimates (intentrank ope --out)."),
    world: Path | None = typer.Option(
        None, "--world", help="A simulator preset (its 'simulator' section goes over the config's)."
    ),
    users: int | None = typer.Option(None, "--users", min=2, help="Override experiment.abtest.users."),
    days: int | None = typer.Option(None, "--days", min=1, help="Override experiment.abtest.days."),
    seed: int | None = typer.Option(None, "--seed", min=0, help="Override the master seed."),
    check: bool = typer.Option(False, "--check", help="Only check the experiment; run nothing."),
) -> None:
    """Run an A/B(/n) experiment in the simulator's closed loop and write results.json and report.html."""
    from intentrank.config import load_config, read_config_file
    from intentrank.errors import ConfigError, IntentRankError
    from intentrank.experiments.abtest import format_table, plan_experiment, run_abtest
    from intentrank.experiments.report import _read_json

    flags = []
    if world is not None:
        preset = read_config_file(world)
        if set(preset) - {"simulator"}:
            raise ConfigError(
                f"{world}: a world preset holds only a 'simulator' section, not {sorted(preset)}"
            )
        flags = [(k, v, f"--world {world}") for k, v in _flatten(preset)]
    cfg = load_config(
        config,
        [
            *flags,
            ("experiment.abtest.users", users, "--users"),
            ("experiment.abtest.days", days, "--days"),
            ("seed", seed, "--seed"),
        ],
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = plan_experiment(cfg)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    check_output_dir(out)
    pareto_data = _read_json(pareto, "pareto") if pareto is not None else None
    ope_data = _read_json(ope, "OPE") if ope is not None else None
    if check:
        arms = {a.name: round(a.share, 4) for a in plan.arms}
        typer.echo(json.dumps({"arms": arms, "expected_mde_clicks": round(plan.expected_mde, 4)}))
        return
    result = run_abtest(cfg, out, plan=plan)
    try:
        paths = result.write(out, pareto=pareto_data, ope=ope_data)
    except OSError as err:
        raise IntentRankError(f"cannot write the results to {out}: {err.strerror or err}") from None
    print(format_table(result), file=sys.stderr)
    typer.echo(json.dumps({k: str(v) for k, v in paths.items()} | {"seconds": result.seconds}))
