"""Safe readers for model files: NumPy archives without pickles, JSON documents of a known shape.

Every failure (missing, empty, truncated, corrupt, not UTF-8, wrong shape or dtype) becomes one
:class:`~intentrank.errors.DataError` naming the file and what is wrong; library messages that advise
unsafe options (``allow_pickle=True``) are never passed on.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np
from pydantic import BaseModel, ValidationError

from intentrank.errors import DataError

M = TypeVar("M", bound=BaseModel)


def _size_note(path: Path) -> str:
    try:
        return "the file is empty" if path.stat().st_size == 0 else ""
    except OSError:
        return ""


def load_npz(path: str | Path, keys: Iterable[str]) -> dict[str, np.ndarray]:
    """All arrays of the ``.npz`` archive at ``path`` (read eagerly, no pickles); ``keys`` must be present
    and hold numeric (not object) arrays."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: missing model file")
    try:
        z = np.load(p, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise DataError(f"{p}: a single array, not an .npz archive")
        with z:
            arrays = {k: z[k] for k in z.files}
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        why = _size_note(p) or (
            f"not a readable .npz archive: corrupt, truncated or another format ({type(err).__name__};"
            " pickled data is never loaded)"
        )
        raise DataError(f"{p}: {why}") from None
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise DataError(f"{p}: missing array(s) {missing}; found {sorted(arrays)}")
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise DataError(f"{p}: array {k!r} has dtype {a.dtype}, expected numbers")
    return arrays


def check_array(path: str | Path, name: str, a: np.ndarray, length: int | None = None) -> np.ndarray:
    """``a`` if it is a 1-D array of finite numbers (of ``length`` when given), else DataError."""
    if a.ndim != 1 or (length is not None and a.shape[0] != length):
        want = f"({length},)" if length is not None else "1-D"
        raise DataError(f"{path}: array {name!r} has shape {a.shape}, expected {want}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DataError(f"{path}: array {name!r} holds NaN or infinite values")
    return a


def read_json_model(path: str | Path, model: type[M], what: str = "malformed file") -> M:
    """The JSON document at ``path`` validated as ``model`` (UTF-8, syntax and shape checked by pydantic);
    errors read ``<path>: <what>: <field>: <problem>``."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise DataError(f"{p}: cannot read ({err.strerror or err})") from None
    if not raw.strip():
        raise DataError(f"{p}: {what}: the file is empty")
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(x) for x in e["loc"])
        msg = e["msg"]
        if e["type"] == "json_invalid":
            msg = "not valid JSON/UTF-8: " + str(e.get("ctx", {}).get("error", msg))
        raise DataError(f"{p}: {what}: {where + ': ' if where else ''}{msg}") from None
