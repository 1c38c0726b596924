"""``intentrank serve`` refuses bad input with one ``error:`` line and exit code 2, before serving."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from intentrank.cli.main import app

runner = CliRunner()


def _serve(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    res = runner.invoke(app, ["serve", *args], env=env)
    return res.exit_code, res.stderr


def test_missing_items_file(tmp_path: Path) -> None:
    code, err = _serve("--items", str(tmp_path / "nope.parquet"), "--model", str(tmp_path))
    assert code == 2 and err.splitlines()[-1].startswith("error: items file not found:")
    assert "Traceback" not in err


def test_items_file_with_bad_columns(tmp_path: Path) -> None:
    p = tmp_path / "items.parquet"
    pd.DataFrame({"title": ["a"], "topic": ["t"]}).to_parquet(p)
    code, err = _serve("--items", str(p), "--model", str(tmp_path))
    assert code == 2 and "missing column(s) source, publish_ts" in err
    pd.DataFrame(
        {
            "title": ["a"],
            "topic": ["t"],
            "source": ["s"],
            "publish_ts": ["yesterday"],
            "clickbait_score": [0.5],
        }
    ).to_parquet(p)
    code, err = _serve("--items", str(p), "--model", str(tmp_path))
    assert code == 2 and "column 'publish_ts'" in err


def test_items_without_a_model(tmp_path: Path) -> None:
    p = tmp_path / "items.parquet"
    pd.DataFrame(
        {"title": ["a"], "topic": ["t"], "source": ["s"], "publish_ts": [0.0], "clickbait_score": [0.5]}
    ).to_parquet(p)
    code, err = _serve("--items", str(p))
    assert code == 2 and "--items needs --model" in err


@pytest.mark.parametrize("token", ["short"])
def test_short_token_is_refused(tmp_path: Path, token: str) -> None:
    code, err = _serve("--items", str(tmp_path / "x.parquet"), env={"INTENTRANK_TOKEN": token})
    assert code == 2 and "INTENTRANK_TOKEN: a token needs at least 16 characters" in err


def test_bad_config_value(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("service:\n  candidates:\n    total: 10\n    fresh: 8\n    popular: 8\n")
    code, err = _serve("--config", str(cfg))
    assert code == 2 and "service.candidates" in err and "exceeds total" in err
