"""CLI plumbing: output directories checked before work starts; inputs opened with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from intentrank.cli.common import check_output_dir, open_input
from intentrank.errors import IntentRankError


def test_output_dir_accepts_new_and_existing_directories(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "a" / "b" / "model") == tmp_path / "a" / "b" / "model"
    assert not (tmp_path / "a").exists()  # creates nothing
    assert check_output_dir(tmp_path) == tmp_path


def test_output_dir_refuses_a_file_or_a_file_parent(tmp_path: Path) -> None:
    f = tmp_path / "model.pt"
    f.write_bytes(b"keep me")
    with pytest.raises(IntentRankError, match=r"--out .*model\.pt exists and is not a directory"):
        check_output_dir(f, "--out")
    with pytest.raises(IntentRankError, match=r"cannot create --out .*: .*model\.pt is not a directory"):
        check_output_dir(f / "sub" / "dir", "--out")
    assert f.read_bytes() == b"keep me"
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    with pytest.raises(IntentRankError, match="exists and is not a directory"):
        check_output_dir(tmp_path / "dangling")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any directory")
def test_output_dir_refuses_an_unwritable_parent(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        with pytest.raises(IntentRankError, match="is not writable"):
            check_output_dir(ro / "model")
        with pytest.raises(IntentRankError, match="is not writable"):
            check_output_dir(ro)
    finally:
        ro.chmod(0o755)


def test_output_dir_refuses_what_the_os_says_is_unwritable(tmp_path: Path, monkeypatch) -> None:
    """As root (CI containers) chmod does not stop writes; the check asks os.access, simulated here."""
    ro = tmp_path / "ro"
    ro.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != ro)
    with pytest.raises(IntentRankError, match=r"cannot create out .*/ro/model: .*/ro is not writable"):
        check_output_dir(ro / "model", "out")
    with pytest.raises(IntentRankError, match=r"out .*/ro is not writable"):
        check_output_dir(ro, "out")
    assert check_output_dir(tmp_path / "elsewhere", "out")


def test_open_input_errors(tmp_path: Path) -> None:
    with pytest.raises(IntentRankError, match="is a directory"), open_input(tmp_path):
        pass
    with pytest.raises(IntentRankError, match="input file not found"), open_input(tmp_path / "x"):
        pass
    f = tmp_path / "t.txt"
    f.write_bytes(b"a\nb\n")
    with open_input(f) as s:
        assert s.read() == b"a\nb\n"
