"""Turn a method's pydantic validation failure into a :class:`ConfigError` naming the field and value.

Methods built directly from Python (``HeuristicPenalty(l=..., h=...)``) validate through the same
pydantic models as the config file, so the rules live in one place (``mitigation/config.py``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from intentrank.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


def validate_method(model: type[M], where: str, **params: Any) -> M:
    """``model(**params)``; bad values raise ConfigError ``"<where>.<field>: <message> (got <value>)"``."""
    try:
        return model.model_validate(params)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, where)) from None


def describe_validation_error(err: ValidationError, where: str) -> str:
    """One line per problem: ``where.field: message (got value)``."""
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in (where, *e["loc"]) if p != "")
        got = e.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{loc}: {e['msg']}{shown}")
    return "\n".join(lines)
