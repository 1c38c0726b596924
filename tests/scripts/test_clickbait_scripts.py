"""The clickbait training scripts run from a checkout: ``--help`` works without doing any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "clickbait"
NAMES = [
    "prep", "ft", "dev", "assemble", "warp_default", "rebuild_cache", "student", "student_members", "cascade",
]  # fmt: skip


def _run(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_every_script_is_listed() -> None:
    assert sorted(p.stem for p in SCRIPTS.glob("*.py") if p.stem != "common") == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_help_exits_zero_and_writes_nothing(name: str, tmp_path: Path) -> None:
    res = _run(name, "--help", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage:") and "--" in res.stdout
    assert list(tmp_path.iterdir()) == []


def test_missing_corpus_is_a_one_line_error(tmp_path: Path) -> None:
    res = _run("warp_default", "--work", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert res.returncode != 0 and "Traceback" not in res.stderr
    assert "run scripts/clickbait/prep.py first" in res.stderr
