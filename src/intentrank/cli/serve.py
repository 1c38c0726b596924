"""``intentrank serve``: the endless-feed HTTP service under uvicorn (OpenAPI at /docs).

Embedded defaults: the shipped catalogue (headlines scored by the shipped clickbait model, cached) and
a model from ``--model DIR``, or a quick one trained at start on a small random simulated log. A user's
own catalogue: ``--items FILE`` (CSV or Parquet) and own events ``--events FILE`` (a quick model is
trained on them at start); formats in :mod:`intentrank.service.catalogue_files` and docs/service.md.
The bearer token of write/admin endpoints comes from INTENTRANK_TOKEN or service.token, else a random
one is made and printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from intentrank.cli.common import user_errors


@user_errors
def serve(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Config file (YAML/JSON).")] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            help="Saved ranker to serve (default: service.model_dir, else a quick model trained at start)."
        ),
    ] = None,
    items: Annotated[
        Path | None,
        typer.Option(help="Own catalogue, CSV or Parquet (docs/service.md; default: the shipped one)."),
    ] = None,
    events: Annotated[
        Path | None,
        typer.Option(help="Own events, CSV or Parquet: a quick model is trained on them at start."),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Let the demo page at / post events (an events-only token).")
    ] = False,
    store: Annotated[Path | None, typer.Option(help="Event store (default: service.store_path).")] = None,
    host: Annotated[str | None, typer.Option(help="Override service.host.")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Override service.port.")] = None,
    bootstrap_users: Annotated[
        int | None, typer.Option(min=1, help="Override service.bootstrap_users.")
    ] = None,
) -> None:
    """Serve the endless feed over HTTP until interrupted (Ctrl-C marks the store's run complete)."""
    import importlib.util

    import torch
    import uvicorn

    from intentrank.config import load_config
    from intentrank.errors import ConfigError
    from intentrank.service.app import create_app
    from intentrank.service.auth import resolve_token
    from intentrank.service.bootstrap import say, serving_model, start_worker, train_quick
    from intentrank.service.catalogue_files import read_events, read_items
    from intentrank.service.state import ServiceState
    from intentrank.simulator.catalogue import Catalogue, build_catalogue
    from intentrank.store import EventStore

    cfg = load_config(
        config,
        [
            ("service.host", host, "--host"),
            ("service.port", port, "--port"),
            ("service.store_path", str(store) if store else None, "--store"),
            ("service.bootstrap_users", bootstrap_users, "--bootstrap-users"),
            ("service.demo", True if demo else None, "--demo"),
        ],
    )
    svc = cfg.service
    token, origin = resolve_token(svc.token, generate=True)
    if items is not None:
        say(f"[serve] reading the catalogue {items}")
        table = read_items(items, clickbait=cfg.clickbait)
        cat = None
    else:
        say("[serve] building the shipped catalogue (clickbait scores cached after the first run)")
        cat = build_catalogue(config=cfg.simulator.catalogue, seed=cfg.seed, clickbait=cfg.clickbait)
        table = cat.items
    model_dir = model if model is not None else (Path(svc.model_dir) if svc.model_dir else None)
    if events is not None:
        if model_dir is not None:
            raise ConfigError("--events trains the model at start: give --events or --model, not both")
        say(f"[serve] reading the events {events}")
        own = read_events(events, len(table))
        ranker, source = train_quick(own, table, cfg), f"quick model ({events.name})"
    else:
        if model_dir is None and not isinstance(cat, Catalogue):
            raise ConfigError(
                "--items needs --model or --events (the quick model otherwise learns the shipped catalogue)"
            )
        ranker, source = serving_model(cat, cfg, model_dir)  # type: ignore[arg-type]
    for name, module in (("loop", "uvloop"), ("http", "httptools")):
        if getattr(svc.server, name) == module and importlib.util.find_spec(module) is None:
            raise ConfigError(f"service.server.{name}: {module} is not installed (pip install {module}, "
                              f"or set it to auto)")  # fmt: skip
    torch.set_num_threads(svc.torch_threads)
    with EventStore(svc.store_path) as ev_store:
        state = ServiceState(
            svc, table, ranker, ev_store, token, model_source=source, clickbait=cfg.clickbait  # type: ignore[arg-type]
        )
        app = create_app(state, model_dir)
        start_worker(state)  # stopped by state.close()
        if origin == "generated":
            say(f"[serve] bearer token of write/admin endpoints (INTENTRANK_TOKEN chooses one): {token}")
        else:
            say(f"[serve] bearer token from {origin}")
        say(
            f"[serve] {len(table):,} items, model v{state.slot.version} ({source}), arms "
            f"{', '.join(state.arm_names)}, store {svc.store_path} run {state.run.run_id}"
        )
        say(f"[serve] listening on http://{svc.host}:{svc.port} (OpenAPI at /docs)")
        try:
            srv = svc.server
            uvicorn.run(
                app, host=svc.host, port=svc.port, log_level="warning", access_log=srv.access_log,
                loop=srv.loop, http=srv.http, backlog=srv.backlog,
            )  # fmt: skip
        finally:
            state.close()
