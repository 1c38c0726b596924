"""Bearer-token auth of the write and admin endpoints: missing → 401, wrong → 403.

The token comes from the environment variable ``INTENTRANK_TOKEN`` or the config's ``service.token``
(:func:`resolve_token`); it is compared in constant time.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable

from fastapi import HTTPException, Request, status

from intentrank.errors import ConfigError
from intentrank.service.config import TOKEN_ENV

MIN_TOKEN_CHARS = 16


def resolve_token(configured: str | None, generate: bool = False) -> tuple[str, str]:
    """(token, where it came from): the environment, the config, or freshly generated when allowed."""
    env = os.environ.get(TOKEN_ENV)
    if env is not None:
        if len(env) < MIN_TOKEN_CHARS:
            raise ConfigError(f"{TOKEN_ENV}: a token needs at least {MIN_TOKEN_CHARS} characters")
        return env, TOKEN_ENV
    if configured:
        return configured, "service.token"
    if generate:
        return secrets.token_urlsafe(24), "generated"
    raise ConfigError(f"no bearer token: set {TOKEN_ENV} or service.token")


def require_token(token: str, *also: str) -> Callable[[Request], None]:
    """A FastAPI dependency that admits requests carrying ``Authorization: Bearer <token>`` (or one of
    the tokens ``also`` admits there: the demo page's events-only token)."""
    accepted = [t.encode() for t in (token, *also)]

    def check(request: Request) -> None:
        header = request.headers.get("authorization")
        if not header:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "missing bearer token (send 'Authorization: Bearer <token>')",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "malformed Authorization header (expected 'Bearer <token>')",
                headers={"WWW-Authenticate": "Bearer"},
            )
        got = given.strip().encode()
        if not any([hmac.compare_digest(got, t) for t in accepted]):  # each compared: constant time
            raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong bearer token")

    return check
