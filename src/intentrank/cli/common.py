"""Shared CLI plumbing: turn user errors into one clear message and exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from intentrank.errors import IntentRankError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Decorator for CLI commands: print an :class:`IntentRankError` as ``error: ...`` and exit 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except IntentRankError as err:
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2) from None

    return wrapper  # type: ignore[return-value]
