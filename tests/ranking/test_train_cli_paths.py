"""`intentrank train` checks --out and --resume before training (the checks live in cli/common.py and
ranking/checkpoint.py; called by cli/train.py before any work)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import make_events


def _events(tmp_path: Path) -> Path:
    imp, items = make_events(n_users=50, n_items=80, n_slates=60)
    pq = tmp_path / "pq"
    pq.mkdir()
    imp.to_parquet(pq / "impressions.parquet")
    items.to_parquet(pq / "items.parquet")
    return pq


def _train(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "intentrank.cli.main", "train", "--epochs", "1", "--threads", "1", *args]
    return subprocess.run(cmd, capture_output=True, timeout=300, text=True)


def test_out_an_existing_file_is_refused_before_training(tmp_path: Path) -> None:
    f = tmp_path / "model"
    f.write_text("precious")
    res = _train("--events", str(_events(tmp_path)), "--out", str(f))
    assert res.returncode == 2 and "exists and is not a directory" in res.stderr, res.stderr
    assert '"valid"' not in res.stdout  # refused before training, not after
    assert f.read_text() == "precious"


def test_resume_with_another_architecture_is_refused(tmp_path: Path) -> None:
    ev = _events(tmp_path)
    out = tmp_path / "m"
    first = _train("--events", str(ev), "--out", str(out))
    assert first.returncode == 0, first.stderr
    other = tmp_path / "other.yaml"
    other.write_text("ranker:\n  model:\n    mlp_hidden: [16]\n")
    res = _train("--events", str(ev), "--out", str(out), "--resume", "--config", str(other))
    assert res.returncode == 2, res.stderr
    assert "ranker.model.mlp_hidden: checkpoint [256, 128] vs config [16]" in res.stderr
    # without --config, --resume continues the checkpoint's own architecture and settings
    again = _train("--events", str(ev), "--out", str(out), "--resume")
    assert again.returncode == 0, again.stderr
    assert '"epochs": 1' in again.stdout
