"""Shared CLI plumbing: user errors as one clear message and exit code 2, streams and output paths.

Every command is wrapped in :func:`user_errors`; inputs are opened with :func:`open_input` (files, FIFOs,
``-`` for stdin) and output directories checked with :func:`check_output_dir` before any work starts.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from intentrank.errors import IntentRankError

F = TypeVar("F", bound=Callable[..., Any])

#: exit status of a command whose reader went away (``... | head``): what a shell reports for a process
#: killed by SIGPIPE (128 + 13), as ``cat`` or ``grep`` would give.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE
EXIT_INTERRUPTED = 128 + signal.SIGINT


def _silence_stdout() -> None:
    """Point fd 1 at /dev/null so that the interpreter's final flush of stdout cannot fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def user_errors(func: F) -> F:
    """Decorator for CLI commands: print an :class:`IntentRankError` as ``error: ...`` and exit 2.

    A closed pipe on stdout (``intentrank ... | head -1``) ends the command quietly with status 141, the
    SIGPIPE convention; Ctrl-C ends it with ``interrupted`` and status 130. Neither shows a traceback.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IntentRankError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        except BrokenPipeError:
            _silence_stdout()
            raise SystemExit(EXIT_BROKEN_PIPE) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise SystemExit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


@contextlib.contextmanager
def open_input(source: str | Path, what: str = "input") -> Iterator[BinaryIO]:
    """The user's input as a binary stream: a file, a FIFO or ``<(...)``, or ``-`` for stdin.

    Raises IntentRankError for a closed stdin, a missing path, a directory or an unreadable file.
    """
    if str(source) == "-":
        stdin = sys.stdin
        if stdin is None or stdin.closed:
            raise IntentRankError(f"stdin is closed; give the {what} as a file or pipe it in")
        yield stdin.buffer
        return
    path = Path(source)
    if path.is_dir():
        raise IntentRankError(f"{what} {path} is a directory, not a file")
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed by the with below; FIFOs open like files
    except FileNotFoundError:
        raise IntentRankError(f"{what} file not found: {path}") from None
    except OSError as err:
        raise IntentRankError(f"cannot read {what} {path}: {err.strerror or err}") from None
    with f:
        yield f


def binary_stdout() -> BinaryIO:
    """stdout as a binary stream (UTF-8 is written explicitly); IntentRankError when it is closed."""
    out = sys.stdout
    if out is None or out.closed:
        raise IntentRankError("stdout is closed; redirect the output to a file")
    return out.buffer


def write_out(out: BinaryIO, text: str) -> None:
    """Write ``text`` as UTF-8 and flush, so output appears as it is produced.

    A closed pipe propagates as BrokenPipeError (:func:`user_errors` exits quietly); any other write
    failure (disk full, closed descriptor) becomes one IntentRankError.
    """
    try:
        out.write(text.encode("utf-8"))
        out.flush()
    except BrokenPipeError:
        raise
    except (OSError, ValueError) as err:
        _silence_stdout()
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise IntentRankError(f"cannot write the output: {reason}") from None


def check_output_dir(path: str | Path, what: str = "output directory") -> Path:
    """Check, before any work starts, that ``path`` can become a directory we write into.

    Refused with IntentRankError: an existing non-directory (a file would otherwise be hit only after the
    work, losing it), a parent that is a file, a directory (or nearest existing parent) that is not
    writable. Creates nothing.
    """
    p = Path(path)
    if p.exists() or p.is_symlink():
        if not p.is_dir():
            raise IntentRankError(f"{what} {p} exists and is not a directory")
        if not os.access(p, os.W_OK | os.X_OK):
            raise IntentRankError(f"{what} {p} is not writable")
        return p
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise IntentRankError(f"cannot create {what} {p}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise IntentRankError(f"cannot create {what} {p}: {parent} is not writable")
    return p
