"""A real ``intentrank serve`` process for the HTTP benchmarks (bench/service_load.py, service_ingest.py).

Writes a catalogue of the shipped size (synthetic items: no scorer needed), a saved ranker (untrained
weights: the arithmetic of serving is a trained model's; ``tiny`` = MLP [16] and one cross layer) and a
config file into a temporary directory, starts the server on a free loopback port and waits for
/healthz. Not a benchmark itself.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "bench-token-0123456789"
TINY = {"model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    tmp: Path, service: dict[str, Any], items: int = 47_290, tiny: bool = False, model: Any = None
) -> tuple[str, Any]:
    """(base URL, the server's Popen) of a server on the given ``service`` settings. ``model``: a
    trained ranker served on the shipped catalogue (default: untrained weights on ``items`` synthetic
    items)."""
    import torch

    from intentrank.ranking.checkpoint import save_checkpoint
    from intentrank.ranking.config import RankerConfig
    from intentrank.ranking.models.multitask import MultiTaskRanker
    from intentrank.simulator.catalogue import synthetic_catalogue

    torch.manual_seed(0)
    catalogue: list[str] = []
    if model is None:
        synthetic_catalogue(items, seed=0).items.to_parquet(tmp / "items.parquet")
        catalogue = ["--items", str(tmp / "items.parquet")]
        model = MultiTaskRanker(RankerConfig.model_validate(TINY if tiny else {}))
    save_checkpoint(tmp / "model", model)
    port = free_port()
    cfg = {"service": {"port": port, "store_path": str(tmp / "events.duckdb"), **service}}
    (tmp / "config.json").write_text(json.dumps(cfg))
    cmd = [sys.executable, "-m", "intentrank.cli.main", "serve", "--config", str(tmp / "config.json"),
           *catalogue, "--model", str(tmp / "model")]  # fmt: skip
    log = open(tmp / "server.log", "w")  # noqa: SIM115 (lives as long as the server)
    proc = subprocess.Popen(cmd, env=os.environ | {"INTENTRANK_TOKEN": TOKEN}, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 180
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {(tmp / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return url, proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not become healthy in 180 s")


def stop(proc: Any) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
