"""``intentrank simulate``: run the traffic simulator, write the events, print per-user KPIs as JSON.

``intentrank simulate --policy NAME --users N --days D --seed S --out PATH`` simulates one policy;
``intentrank simulate --target http://HOST:PORT`` drives a running feed service instead (slates over
HTTP, outcomes posted back; :mod:`intentrank.simulator.http_client`);
``intentrank simulate compare --policies A,B ...`` runs them as arms of an A/B test and prints the KPI
table (relative changes with 95% CIs). ``--out`` ending in ``.parquet`` writes a Parquet file (items
beside it as ``<name>.items.parquet``, written via a temporary file); any other path is a DuckDB event
store, to which the simulation is added as a new run (a re-run needs ``--append`` or ``--replace``).
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

_APPEND_HELP = "Store already holds this run (same settings and seed): add a new run alongside."
_REPLACE_HELP = (
    "Store already holds this run: replace it (deleted only when the new run is complete); "
    "or overwrite an existing Parquet file (atomically)."
)

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


def _policies(
    names: list[str], model: Path | None, base: str | None
) -> dict[str, tuple[Any, dict[str, Any]]]:
    """The named policies from the registry with their parameters; ``--model`` goes to ``ranker``,
    ``--base`` to ``heuristic`` or ``explore`` (and ``--model`` to a ``ranker`` base)."""
    from intentrank.simulator.registry import get_policy

    wrappers = ("heuristic", "explore")
    out: dict[str, tuple[Any, dict[str, Any]]] = {}
    for name in names:
        params: dict[str, Any] = {}
        if name == "ranker" or (name in wrappers and base == "ranker"):
            params["model_dir"] = str(model) if model is not None else None
        if name in wrappers and base is not None:
            params["base"] = base
        out[name] = (get_policy(name, **params), params)
    if model is not None and not any(n == "ranker" or (n in wrappers and base == "ranker") for n in names):
        raise ConfigError("--model is only used by the 'ranker' policy (or --policy heuristic --base ranker)")
    if base is not None and not any(n in wrappers for n in names):
        raise ConfigError("--base is only used by the 'heuristic' and 'explore' policies")
    return out


def _on_existing(append: bool, replace: bool) -> str:
    if append and replace:
        raise ConfigError("--append and --replace exclude each other")
    return "append" if append else "replace" if replace else "refuse"


def _run(
    policies: dict[str, tuple[Any, dict[str, Any]]],
    cfg: IntentRankConfig,
    out: Path | None,
    desc: str,
    on_existing: str = "refuse",
) -> tuple[Any, dict[str, Any]]:
    """Simulate ``policies`` (name → (policy, its parameters)) as arms; events go to a new run of the
    store ``out`` (or a Parquet file), opened first.

    A store that already holds a complete run with the same settings and seed is refused unless
    ``on_existing`` is ``append`` or ``replace``; an existing Parquet file is replaced only with
    ``replace`` (atomically). The run is marked complete at the end only; Ctrl-C marks it failed.
    """
    from contextlib import ExitStack

    from intentrank.errors import DataError, IntentRankError
    from intentrank.simulator.ab import simulate
    from intentrank.simulator.catalogue import build_catalogue
    from intentrank.simulator.resources import check_simulation
    from intentrank.simulator.sinks import ParquetSink, StoreSink
    from intentrank.store import EventStore, config_hash

    check_simulation(cfg, writes_events=out is not None)  # memory and days, before anything is built
    sim_cfg = cfg.simulator
    run_info = {
        "config_hash": config_hash(
            {"command": "simulate", "policies": {n: p for n, (_, p) in policies.items()},
             "simulator": sim_cfg.model_dump(mode="json")}
        ),
        "seed": cfg.seed,
        "policy": ",".join(policies),
        "command": "simulate",
    }
    info: dict[str, Any] = {}
    sink: Any = None
    with ExitStack() as stack:
        store = run = None
        if out is not None and out.suffix == ".parquet":
            if on_existing == "append":
                raise ConfigError("--append: a Parquet file holds one run; append to a DuckDB store instead")
            if out.exists() and on_existing != "replace":
                raise DataError(
                    f"{out} exists; refusing to overwrite it: pass --replace (the old file stays until the "
                    "new one is complete)"
                )
        elif out is not None:
            store = stack.enter_context(EventStore(out))
            run = stack.enter_context(store.begin_run(on_existing=on_existing, **run_info))  # type: ignore[arg-type]
        bar, on_day = _progress(sim_cfg.days, desc)
        stack.callback(bar.close)
        try:
            catalogue = build_catalogue(config=sim_cfg.catalogue, seed=cfg.seed, clickbait=cfg.clickbait)
            if store is not None and run is not None:
                store.write_items(catalogue.items)
                sink = StoreSink(run)
                info["run_id"] = run.run_id
            elif out is not None:
                sink = ParquetSink(out, run=run_info, items=catalogue.items)
                stack.callback(sink.abort)  # no-op once the file is committed
                info["items"] = str(out.with_name(out.stem + ".items.parquet"))
            arms = {n: pol for n, (pol, _) in policies.items()}
            result = simulate(arms, sim_cfg, seed=cfg.seed, catalogue=catalogue, sink=sink, on_day=on_day)
            if isinstance(sink, ParquetSink):
                sink.close()
        except KeyboardInterrupt:
            left = f"; run {run.run_id} of {out} is marked failed" if run is not None else ""
            raise IntentRankError(f"interrupted{left}") from None
        if store is not None:
            info["watermark"] = store.watermark()
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
        "intent_oracle",
        help="Policy name: random, popularity, ctr_oracle, intent_oracle, ranker (--model), "
        "heuristic (--base).",
    ),
    model: Path | None = typer.Option(None, help="Model directory of the 'ranker' policy."),
    base: str | None = typer.Option(None, help="Base policy of 'heuristic' (default ctr_oracle)."),
    users: int | None = typer.Option(None, help="Number of users (default: config simulator.users)."),
    days: int | None = typer.Option(None, help="Number of days (default: config simulator.days)."),
    seed: int | None = typer.Option(None, help="Random seed (default: config seed)."),
    out: Path | None = typer.Option(
        None, help="Events: DuckDB file, or a .parquet file. Omitted: KPIs only."
    ),
    config: Path | None = typer.Option(None, help="Config file (YAML/JSON)."),
    append: bool = typer.Option(False, "--append", help=_APPEND_HELP),
    replace: bool = typer.Option(False, "--replace", help=_REPLACE_HELP),
    target: str | None = typer.Option(
        None,
        help="Drive a running feed service (http://HOST:PORT) instead of an in-process policy: slates "
        "from POST /v1/feed, outcomes back to POST /v1/events (its store keeps them).",
    ),
    token: str | None = typer.Option(
        None, help="Bearer token of the service's /v1/events (default: the INTENTRANK_TOKEN variable)."
    ),
    arms: str | None = typer.Option(
        None, help="With --target: the service arms to split users over (default: all of its arms)."
    ),
    concurrency: int = typer.Option(8, min=1, max=256, help="With --target: feed requests in flight."),
) -> None:
    """Simulate one policy; print the per-user KPI summary as JSON (stdout)."""
    if ctx.invoked_subcommand is not None:
        return
    cfg = _config(config, users, days, seed)
    if target is not None:
        given = [n for n, v in (("--out", out), ("--model", model), ("--base", base)) if v is not None]
        if given or append or replace:
            drop = ", ".join(given) or "--append/--replace"
            raise ConfigError(f"--target: the service ranks and stores the events; drop {drop}")
        _run_target(cfg, target, token, arms, concurrency)
        return
    result, info = _run(_policies([policy], model, base), cfg, out, policy, _on_existing(append, replace))
    summary = {
        "policy": policy,
        "users": cfg.simulator.users,
        "days": cfg.simulator.days,
        "seed": cfg.seed,
        **info,
        "kpis": result.summary()[result.arm_names[0]],
    }
    typer.echo(json.dumps(summary, indent=2))


def _run_target(
    cfg: IntentRankConfig, target: str, token: str | None, arms: str | None, concurrency: int
) -> None:
    """``simulate --target``: the simulated users through a running service; KPIs per arm as JSON."""
    import os

    from intentrank.service.config import TOKEN_ENV
    from intentrank.simulator.catalogue import build_catalogue
    from intentrank.simulator.http_client import ServiceClient, simulate_http
    from intentrank.simulator.resources import check_simulation

    check_simulation(cfg, writes_events=False)
    tok = token or os.environ.get(TOKEN_ENV)
    if not tok:
        raise ConfigError(f"--target needs the service's bearer token: --token or {TOKEN_ENV}")
    names = [a.strip() for a in arms.split(",") if a.strip()] if arms else None
    sim_cfg = cfg.simulator
    bar, on_day = _progress(sim_cfg.days, f"via {target}")
    with ServiceClient(target, tok, pool=concurrency) as client:
        client.health()  # fail early (and clearly) when nothing listens there
        catalogue = build_catalogue(config=sim_cfg.catalogue, seed=cfg.seed, clickbait=cfg.clickbait)
        try:
            result, counts = simulate_http(
                client, sim_cfg, seed=cfg.seed, catalogue=catalogue, arm_names=names,
                concurrency=concurrency, on_day=on_day,
            )  # fmt: skip
        finally:
            bar.close()
    summary = {
        "target": target,
        "users": sim_cfg.users,
        "days": sim_cfg.days,
        "seed": cfg.seed,
        **counts,
        "arms": result.arm_names,
        "kpis": result.summary(),
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
    model: Path | None = typer.Option(None, help="Model directory of the 'ranker' arm."),
    base: str | None = typer.Option(None, help="Base policy of the 'heuristic' arm."),
    append: bool = typer.Option(False, "--append", help=_APPEND_HELP),
    replace: bool = typer.Option(False, "--replace", help=_REPLACE_HELP),
) -> None:
    """Simulate policies as arms of an A/B test; print each KPI vs the first arm with 95% CIs."""
    from intentrank.simulator.ab import format_comparison

    names = [p.strip() for p in policies.split(",") if p.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise ConfigError(f"--policies: need at least two distinct policies, got {policies!r}")
    cfg = _config(config, users, days, seed)
    arms = _policies(names, model, base)
    result, info = _run(arms, cfg, out, "arms " + ",".join(names), _on_existing(append, replace))
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
