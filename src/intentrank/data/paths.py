"""Where the shipped datasets live inside the installed package."""

from __future__ import annotations

from pathlib import Path

from intentrank.errors import DataError

DATA_DIR = Path(__file__).resolve().parent / "files"


def dataset_path(*parts: str) -> Path:
    """Path of a shipped data file, e.g. ``dataset_path("stop-clickbait", "clickbait_data.gz")``."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        raise DataError(f"shipped data file not found: {path} (is the package installed completely?)")
    return path
