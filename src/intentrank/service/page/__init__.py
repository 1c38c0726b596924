"""The demo page at ``/`` (static HTML/JS/CSS shipped in the package, no CDN) and ``GET /v1/arms``.

The page scrolls the endless feed (``POST /v1/feed`` with the session's cursor when the end of the list
comes into view), shows each item's clickbait score and category as a coloured badge, switches the arm
(a new session with ``arm`` named) and posts the user's clicks, and the items seen but not clicked,
to ``POST /v1/events``. Writes need a token: with ``service.demo: true`` the page is handed an
events-only token made at start (it admits ``/v1/events`` and nothing else); otherwise the page asks
for the service's bearer token and keeps it in the tab's sessionStorage.
"""

# no `from __future__ import annotations`: FastAPI reads the endpoints' annotations at runtime.

import html
import secrets
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

ASSETS = {"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


class ArmsResponse(BaseModel):
    arms: list[str] = Field(description="The variants served; a request may name one with `arm`.")
    assignment: str = Field(description="How a user gets an arm when the request names none.")
    demo_events: bool = Field(description="The demo page may post events without the bearer token.")


def demo_token(enabled: bool) -> str | None:
    """An events-only token for the demo page (a fresh one per process), or None when demo is off."""
    return secrets.token_urlsafe(24) if enabled else None


def _asset(name: str) -> str:
    return (files(__package__) / "assets" / name).read_text(encoding="utf-8")


def mount(app: FastAPI, arms: list[str], events_token: str | None) -> None:
    """Add ``GET /`` (the page), ``GET /page/{asset}`` (its script and style) and ``GET /v1/arms``."""
    index = _asset("index.html")
    meta = html.escape(events_token or "", quote=True)
    page = index.replace("{{DEMO_TOKEN}}", meta)
    cached = {name: _asset(name) for name in ASSETS}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def demo_page() -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    @app.get("/page/{asset}", include_in_schema=False)
    def page_asset(asset: str) -> Response:
        if asset not in cached:
            raise HTTPException(404, f"no page asset {asset[:60]!r}")
        return Response(cached[asset], media_type=ASSETS[asset])

    @app.get("/v1/arms", response_model=ArmsResponse, tags=["feed"])
    def list_arms() -> dict[str, Any]:
        """The service's arms (variants) and how users are assigned to them."""
        return {
            "arms": arms,
            "assignment": "stable hash of user_id (service.arm_salt) unless the request names an arm",
            "demo_events": events_token is not None,
        }
