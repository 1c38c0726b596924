"""Reading (optionally gzipped) UTF-8 text files with errors that name the file and line."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from intentrank.errors import DataError


def read_lines(path: Path) -> list[str]:
    """Lines of a UTF-8 text file (gzip if its name ends in .gz), without line endings.

    Raises DataError naming the file (and the line, for invalid UTF-8) when the file is missing,
    not gzip, or not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path}: not a readable gzip file ({err})") from None
    lines = raw.split(b"\n")
    out = []
    for i, line in enumerate(lines, start=1):
        try:
            out.append(line.decode("utf-8").rstrip("\r"))
        except UnicodeDecodeError as err:
            raise DataError(f"{path}:{i}: invalid UTF-8 ({err.reason} at byte {err.start})") from None
    if out and out[-1] == "":
        out.pop()
    return out
