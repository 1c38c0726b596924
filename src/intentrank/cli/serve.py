"""``intentrank serve``: the endless-feed HTTP service under uvicorn (OpenAPI at /docs).

Embedded defaults: the shipped catalogue (headlines scored by the shipped clickbait model, cached) and
a model from ``--model DIR``, or a quick one trained at start on a small random simulated log. A user's
own catalogue: ``--items FILE.parquet`` with columns title, topic, source, publish_ts (seconds relative
to the service's start; optional: item_id = 0..n-1, length, clickbait_score — scored on load if absent).
The bearer token of write/admin endpoints comes from INTENTRANK_TOKEN or service.token, else a random
one is made and printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from intentrank.cli.common import user_errors


def read_items(path: Path) -> object:
    """The item table in a Parquet file (see the module docstring), validated; DataError names the problem."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from intentrank.errors import DataError
    from intentrank.store.event_store import conform
    from intentrank.store.schema import ITEM_COLUMNS

    if not path.is_file():
        raise DataError(f"items file not found: {path}")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None
    df = table.to_pandas()
    missing = [c for c in ("title", "topic", "source", "publish_ts") if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    if "item_id" not in df.columns:
        df.insert(0, "item_id", np.arange(len(df), dtype=np.int64))
    if "length" not in df.columns:
        df["length"] = df["title"].astype(str).str.split().str.len().astype(np.int32)
    if "clickbait_score" not in df.columns:
        from intentrank.clickbait import load_default_scorer

        df["clickbait_score"] = np.asarray(load_default_scorer().score(df["title"].astype(str).tolist()))
    checked = conform(
        pa.Table.from_pandas(df, preserve_index=False), ITEM_COLUMNS, tuple(ITEM_COLUMNS), str(path)
    )
    return checked.to_pandas()


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
        Path | None, typer.Option(help="Own catalogue (Parquet; default: the shipped one).")
    ] = None,
    store: Annotated[Path | None, typer.Option(help="Event store (default: service.store_path).")] = None,
    host: Annotated[str | None, typer.Option(help="Override service.host.")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Override service.port.")] = None,
    bootstrap_users: Annotated[
        int | None, typer.Option(min=1, help="Override service.bootstrap_users.")
    ] = None,
) -> None:
    """Serve the endless feed over HTTP until interrupted (Ctrl-C marks the store's run complete)."""
    import torch
    import uvicorn

    from intentrank.config import load_config
    from intentrank.service.app import create_app
    from intentrank.service.auth import resolve_token
    from intentrank.service.bootstrap import say, serving_model
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
        ],
    )
    svc = cfg.service
    token, origin = resolve_token(svc.token, generate=True)
    if items is not None:
        say(f"[serve] reading the catalogue {items}")
        table = read_items(items)
        cat = None
    else:
        say("[serve] building the shipped catalogue (clickbait scores cached after the first run)")
        cat = build_catalogue(config=cfg.simulator.catalogue, seed=cfg.seed)
        table = cat.items
    model_dir = model if model is not None else (Path(svc.model_dir) if svc.model_dir else None)
    if model_dir is None and not isinstance(cat, Catalogue):
        from intentrank.errors import ConfigError

        raise ConfigError("--items needs --model (the quick model is trained on the shipped catalogue)")
    ranker, source = serving_model(cat, cfg, model_dir)  # type: ignore[arg-type]
    torch.set_num_threads(svc.torch_threads)
    with EventStore(svc.store_path) as ev_store:
        state = ServiceState(svc, table, ranker, ev_store, token, model_source=source)  # type: ignore[arg-type]
        app = create_app(state, model_dir)
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
            uvicorn.run(app, host=svc.host, port=svc.port, log_level="warning", access_log=False)
        finally:
            state.close()
