"""Data-parallel training under torchrun (DDP, gloo): equal to one process with the same global batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import torch
import yaml
from typer.testing import CliRunner

from intentrank.cli.main import app
from intentrank.config import load_config
from intentrank.errors import DataError
from intentrank.mitigation.pipeline import MitigationPlan
from intentrank.ranking.checkpoint import load_checkpoint
from intentrank.ranking.distributed import STATE_FILE, context_from_env, train_distributed
from intentrank.ranking.trainer import Trainer

from .conftest import make_events

TORCHRUN = Path(sys.executable).with_name("torchrun")
CONFIG = {
    "ranker": {
        "train": {"epochs": 2, "progress": False, "batch_size": 64, "lr": 3e-3, "valid_fraction": 0.1},
        "model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}},
    }
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    imp, items = make_events(n_users=120, n_items=300, n_slates=220, seed=3)
    db = tmp_path_factory.mktemp("ddp") / "ev.duckdb"
    with duckdb.connect(str(db)) as con:
        con.register("i", imp)
        con.register("it", items)
        con.execute("CREATE TABLE impressions AS SELECT * FROM i")
        con.execute("CREATE TABLE items AS SELECT * FROM it")
    return db


def _trainer(cfg: Path, **train: object) -> Trainer:
    full = load_config(cfg)
    ranker = full.ranker.model_copy(update={"train": full.ranker.train.model_copy(update=train)})
    return MitigationPlan(full.mitigation).make_trainer(ranker)


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def test_ddp_two_processes_equal_one_process_with_the_same_global_batches(
    store: Path, tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node=2", "-m", "intentrank.cli.main", "train",
           "--events", str(store), "--out", str(tmp_path / "ddp"), "--config", str(cfg),
           "--max-steps", "50"]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout[r.stdout.index("{") :])  # rank 0 alone prints the report
    assert report["steps"] == 50 and report["world"] == 2 and report["backend"] == "gloo"
    assert report["local_batch"] == 32 and "valid" in report and (tmp_path / "ddp" / STATE_FILE).is_file()
    ddp = load_checkpoint(tmp_path / "ddp").state_dict()

    ref = _trainer(cfg)
    train_distributed(ref, store, tmp_path / "ref", ctx=None, world=2, max_steps=50)
    assert _max_diff(ddp, ref.model_.state_dict()) <= 1e-5
    # not vacuous: 50 steps moved the weights well beyond that tolerance, and one shard alone differs
    init = _trainer(cfg)
    init._init_model()
    assert _max_diff(ddp, {k: v for k, v in init.model_.state_dict().items()}) > 1e-3
    one = _trainer(cfg)
    train_distributed(one, store, tmp_path / "one", ctx=None, world=1, max_steps=50)
    assert _max_diff(ddp, one.model_.state_dict()) > 1e-3


def test_resume_from_the_epoch_state_is_exact(store: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    straight = _trainer(cfg, epochs=2, valid_fraction=0.0, batch_size=512)
    train_distributed(straight, store, tmp_path / "a", ctx=None, world=2)
    part = _trainer(cfg, epochs=1, valid_fraction=0.0, batch_size=512)
    train_distributed(part, store, tmp_path / "b", ctx=None, world=2)
    rest = _trainer(cfg, epochs=2, valid_fraction=0.0, batch_size=512)
    report = train_distributed(rest, store, tmp_path / "b", ctx=None, world=2, resume=True)
    assert report["epochs"] == 2 and len(rest.history_) == 2
    assert _max_diff(straight.model_.state_dict(), rest.model_.state_dict()) == 0.0


def test_context_and_cli_errors(store: Path, tmp_path: Path) -> None:
    assert context_from_env({}) is None
    ctx = context_from_env({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert ctx is not None and ctx.rank == 1 and not ctx.is_main
    assert ctx.backend == ("nccl" if torch.cuda.is_available() else "gloo")
    r = CliRunner().invoke(app, ["train", "--nproc", "2", "--events", str(tmp_path / "no.duckdb"),
                                 "--out", str(tmp_path / "m")])  # fmt: skip
    assert r.exit_code == 2 and "event source not found" in r.output
    with pytest.raises(DataError, match=r"no ddp_state\.pt"):
        train_distributed(_trainer_default(), store, tmp_path / "m", ctx=None, world=2, resume=True)


def _trainer_default() -> Trainer:
    from intentrank.ranking.config import RankerConfig

    return Trainer(RankerConfig())


def test_a_partitioned_export_trains_like_the_store(store: Path, tmp_path: Path) -> None:
    from intentrank.store import EventStore

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    with EventStore(store, read_only=True) as s:
        s.export_parquet(tmp_path / "exp", partition="day,run")
    a, b = _trainer(cfg), _trainer(cfg)
    ra = train_distributed(a, store, tmp_path / "a", ctx=None, world=2, max_steps=10)
    rb = train_distributed(b, tmp_path / "exp", tmp_path / "b", ctx=None, world=2, max_steps=10)
    assert ra["n_train"] == rb["n_train"] and ra["valid"] == rb["valid"]
    assert _max_diff(a.model_.state_dict(), b.model_.state_dict()) == 0.0
