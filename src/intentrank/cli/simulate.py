"""``intentrank simulate``: run the traffic simulator, write the events, print per-user KPIs as JSON.

``intentrank simulate --policy NAME --users N --days D --seed S --out PATH`` simulates one policy;
``intentrank simulate compare --policies A,B ...`` runs them as arms of an A/B test and prints the KPI
table (relative changes with 95% CIs). ``--out`` ending in ``.parquet`` writes a Parquet file (items
beside it as ``<name>.items.parquet``); any other path is a DuckDB event store (appended to).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from tqdm import tqdm

from intentrank.cli.common import user_errors
from intentrank.config import IntentRankConfig, load_config
from intentrank.errors import ConfigError

simulate_app = typer.Typer(
    help="Simulate users under a ranking policy and write the event log.", invoke_without_command=True
)


def _config(config: Path | None, users: int | None, days: int | None, seed: int | None) -> IntentRankConfig:
    flags = [("simulator.users", users, "--users"), ("simulator.days", days, "--days")]
    return load_config(config, [*flags, ("seed", seed, "--seed")])


def _progress(days: int, desc: str) -> tuple[tqdm, Any]:
    bar = tqdm(total=days, desc=desc, unit="day", file=sys.stderr, disable=None)

    def on_day(result: Any) -> None:
        bar.update(1)
        bar.set_postfix(impressions=result.impressions, active=result.active_users)

    return bar, on_day


def _run(
    policies: list[str], cfg: IntentRankConfig, out: Path | None, desc: str
) -> tuple[Any, dict[str, Any]]:
    from intentrank.simulator.catalogue import build_catalogue
    from intentrank.simulator.experiment import simulate
    from intentrank.simulator.resources import check_simulation
    from intentrank.simulator.sinks import ParquetSink, StoreSink
    from intentrank.store import EventStore

    check_simulation(cfg, writes_events=out is not None)  # memory and days, before anything is built
    sim_cfg = cfg.simulator
    catalogue = build_catalogue(config=sim_cfg.catalogue, seed=cfg.seed)
    info: dict[str, Any] = {}
    sink: Any = None
    store = None
    if out is not None:
        if out.suffix == ".parquet":
            sink = ParquetSink(out)
            items_path = out.with_name(out.stem + ".items.parquet")
            catalogue.items.to_parquet(items_path, index=False)
            info["items"] = str(items_path)
        else:
            store = EventStore(out)
            store.write_items(catalogue.items)
            sink = StoreSink(store)
    bar, on_day = _progress(sim_cfg.days, desc)
    try:
        result = simulate(policies, sim_cfg, seed=cfg.seed, catalogue=catalogue, sink=sink, on_day=on_day)
    finally:
        bar.close()
        if isinstance(sink, ParquetSink):
            sink.close()
        if store is not None:
            info["watermark"] = store.watermark()
            store.close()
    if out is not None:
        info["events"] = str(out)
        if isinstance(sink, StoreSink):
            info["first_event_id"], info["last_event_id"] = sink.first, sink.last
    return result, info


@simulate_app.callback()
@user_errors
def simulate_cmd(
    ctx: typer.Context,
    policy: str = typer.Option(
        "intent_oracle", help="Policy name: random, popularity, ctr_oracle, intent_oracle."
    ),
    users: int | None = typer.Option(None, help="Number of users (default: config simulator.users)."),
    days: int | None = typer.Option(None, help="Number of days (default: config simulator.days)."),
    seed: int | None = typer.Option(None, help="Random seed (default: config seed)."),
    out: Path | None = typer.Option(
        None, help="Events: DuckDB file, or a .parquet file. Omitted: KPIs only."
    ),
    config: Path | None = typer.Option(None, help="Config file (YAML/JSON)."),
) -> None:
    """Simulate one policy; print the per-user KPI summary as JSON (stdout)."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = _config(config, users, days, seed)
    result, info = _run([policy], cfg, out, policy)
    summary = {
        "policy": policy,
        "users": cfg.simulator.users,
        "days": cfg.simulator.days,
        "seed": cfg.seed,
        **info,
        "kpis": result.summary()[result.arm_names[0]],
    }
    typer.echo(json.dumps(summary, indent=2))


@simulate_app.command("compare")
@user_errors
def compare_cmd(
    policies: str = typer.Option(
        "intent_oracle,ctr_oracle", help="Comma-separated arms; the first is control."
    ),
    users: int | None = typer.Option(None, help="Total users, split evenly over the arms by a stable hash."),
    days: int | None = typer.Option(None, help="Number of days."),
    seed: int | None = typer.Option(None, help="Random seed."),
    out: Path | None = typer.Option(None, help="Events of all arms: DuckDB file or .parquet file."),
    config: Path | None = typer.Option(None, help="Config file (YAML/JSON)."),
    json_output: bool = typer.Option(
        False, "--json", help="Print the comparison as JSON instead of a table."
    ),
) -> None:
    """Simulate policies as arms of an A/B test; print each KPI vs the first arm with 95% CIs."""
    from intentrank.simulator.experiment import format_comparison

    names = [p.strip() for p in policies.split(",") if p.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"--policies: need at least two distinct policies, got {policies!r}")
    cfg = _config(config, users, days, seed)
    result, info = _run(names, cfg, out, "arms " + ",".join(names))
    srm = result.srm()
    control = names[0]
    tables = {t: result.compare(control, t) for t in names[1:]}
    if json_output:
        payload = {
            "control": control,
            "users": cfg.simulator.users,
            "days": cfg.simulator.days,
            "seed": cfg.seed,
            **info,
            "srm": {"observed": srm.observed, "p_value": srm.p_value, "mismatch": srm.mismatch},
            "summary": result.summary(),
            "comparisons": {t: tab.to_dict(orient="records") for t, tab in tables.items()},
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(
        f"users={cfg.simulator.users} days={cfg.simulator.days} seed={cfg.seed}  "
        f"arms={dict(zip(names, srm.observed, strict=True))}"
        f"  SRM p={srm.p_value:.3f}{' MISMATCH' if srm.mismatch else ''}"
    )
    for t, tab in tables.items():
        typer.echo(
            f"\n{t} vs {control} (per-user KPIs; ratio KPIs by the delta method; * = 95% CI excludes 0;"
            " holm p = p-value Holm-adjusted over the table's metrics)"
        )
        typer.echo(format_comparison(tab, control, t))
