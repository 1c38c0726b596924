"""The FastAPI app: ``create_app(state)``; endpoints under /v1, OpenAPI at /docs, Prometheus at /metrics.

=======================  =====  ==========================================================================
endpoint                 auth   what
=======================  =====  ==========================================================================
POST /v1/feed            —      the session's next slate (no repeats within a session)
POST /v1/events          token  outcomes of served items; acknowledged only after the store's commit
POST /v1/items           token  new items (scored for clickbait on arrival), retirements
POST /v1/clickbait/score —      clickbait scores of titles
GET  /healthz            —      liveness and sizes
GET  /v1/models          —      the served version, the previous one, swaps, history
POST /v1/models/rollback token  serve the previous model again (a new version)
GET  /metrics            —      Prometheus text
POST /v1/models/train    token  one round of the training worker now (train, validate, swap or not)
POST /v1/models/reload   token  the worker's checkpoint again (no worker: the --model dir, a new version)
GET  /v1/arms            —      the arms (variants) served
GET  /                   —      the demo page (service.demo: it may post events with an events-only token)
=======================  =====  ==========================================================================

Errors are JSON ``{"detail": "<one line>"}``; validation errors also list ``errors`` (one line per field).
Bodies larger than ``limits.max_body_bytes`` get 413 before they are read in full (:class:`Guard`).
"""

# no `from __future__ import annotations`: FastAPI reads the request models (locals of create_app)
# from the endpoints' annotations at runtime.

import asyncio
import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from intentrank import __version__
from intentrank.errors import IntentRankError
from intentrank.service import page, reload
from intentrank.service.auth import require_token
from intentrank.service.schemas import (
    EventsResponse,
    FeedResponse,
    HealthResponse,
    ItemsResponse,
    ModelsResponse,
    ScoreResponse,
    request_models,
)
from intentrank.service.state import ServiceError, ServiceState


class Guard:
    """ASGI middleware: times every request into the latency histogram (by route template) and refuses
    a body over the limit with a JSON 413 naming it: at once by its Content-Length, or while a chunked
    body streams in (raised from ``receive``; FastAPI passes an HTTPException from there on as is)."""

    def __init__(self, app: ASGIApp, state: ServiceState) -> None:
        self.app, self.state = app, state
        self.max_bytes = state.config.limits.max_body_bytes
        self.detail = f"request body larger than {self.max_bytes:,} bytes (limits.max_body_bytes)"
        #: the latency histogram's children by (method, route, status): labels() looked up once each
        self._timers: dict[tuple[str, str, int], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        detail = self.detail
        seen = [0]

        async def receive_limited() -> Message:
            msg = await receive()
            if msg["type"] == "http.request":
                seen[0] += len(msg.get("body", b""))
                if seen[0] > self.max_bytes:
                    raise HTTPException(413, detail)
            return msg

        try:
            length = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"content-length"), None)
            if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
                await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send_status)
            else:
                await self.app(scope, receive_limited, send_status)
        finally:
            key = (scope["method"], getattr(scope.get("route"), "path", "unmatched"), status[0])
            timer = self._timers.get(key)
            if timer is None:
                timer = self._timers[key] = self.state.metrics.latency.labels(key[0], key[1], str(key[2]))
            timer.observe(time.perf_counter() - t0)


def _loc_part(p: object) -> str:
    """A location part as shown: names and indices as they are, anything else (a client's odd key) quoted."""
    text = str(p)
    return text if text.isidentifier() or isinstance(p, int) else repr(text[:40])


def _field_errors(err: RequestValidationError) -> list[str]:
    out = []
    for e in err.errors():
        loc = ".".join(_loc_part(p) for p in e.get("loc", ()))
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        got = e.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {str(got)[:60]!r})"
        out.append(f"{loc}: {msg}{shown}")
    return out


def _feed_json(body: dict[str, Any]) -> bytes:
    """The feed body as FeedResponse serialises it (``explain`` null when not asked for; a non-finite
    number null), without validating the service's own dict again per request: orjson writes it in one
    C call (tests/service/test_feed_http.py checks that the two agree)."""
    for it in body["items"]:
        it.setdefault("explain", None)
    return orjson.dumps(body)


#: the simulated-clock header as documented (and validated: a number) on /v1/feed and /v1/events
CLOCK_HEADER = "x-intentrank-clock"
_CLOCK_DOC = ("The request's simulated time, seconds since the service's epoch (only and always with "
              "service.simulated_clock).")  # fmt: skip
_CLOCK_PARAM = {
    "name": CLOCK_HEADER, "in": "header", "required": False, "description": _CLOCK_DOC,
    "schema": {"anyOf": [{"type": "number"}, {"type": "null"}], "title": "X-Intentrank-Clock",
               "description": _CLOCK_DOC},
}  # fmt: skip
_NUMBER = TypeAdapter(float)
#: FastAPI's built-in OpenTelemetry off (service.server.opentelemetry: false)
_NO_TELEMETRY: Any = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
_VALIDATION_ERROR_DOC = {"422": {"description": "Validation Error", "content": {"application/json": {
    "schema": {"$ref": "#/components/schemas/HTTPValidationError"}}}}}  # fmt: skip


def _validated(validate: Callable[[Any], Any], raw: Any, *where: str | int) -> Any:
    """``validate(raw)``; a pydantic ValidationError becomes FastAPI's RequestValidationError with its
    locations under ``where`` (e.g. ``body``), so the 422 reads as FastAPI's own validation would."""
    try:
        return validate(raw)
    except ValidationError as err:
        errors = [{**e, "loc": (*where, *e["loc"])} for e in err.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _request_clock(scope: Scope) -> float | None:
    """The X-Intentrank-Clock header of the request as a number (None when absent; 422 when not one)."""
    for name, value in scope["headers"]:
        if name == b"x-intentrank-clock":
            return float(_validated(_NUMBER.validate_python, value.decode("latin-1"), "header", CLOCK_HEADER))
    return None


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its ``$defs`` references replaced by the definitions (an inline request body
    schema for OpenAPI)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)  # type: ignore[no-any-return]


def create_app(state: ServiceState, model_dir: Path | None = None) -> FastAPI:
    """The HTTP app around ``state`` (see the module docstring); ``model_dir``: the checkpoint that
    ``POST /v1/models/reload`` reads again."""
    models = request_models(state.config.limits)
    FeedRequest, EventsRequest = models.FeedRequest, models.EventsRequest
    ItemsRequest, ScoreRequest = models.ItemsRequest, models.ScoreRequest
    auth = [Depends(require_token(state.token))]

    async def request_clock(request: Request) -> None:
        # async: it sets the request's context, which the endpoint's thread inherits
        state.use_clock(_request_clock(request.scope))

    # the header is read from the raw headers (documented by hand: FastAPI's Header() costs a dependency
    # resolution per request on the feed's hot path)
    clock = [Depends(request_clock)]
    clock_doc = {"parameters": [_CLOCK_PARAM]}

    # the demo page (h13-http): its events-only token is admitted by /v1/events alone
    page_token = page.demo_token(state.config.demo)
    events_auth = [Depends(require_token(state.token, *([page_token] if page_token else [])))]
    # slates are built on `feed_threads` threads (torch releases the GIL in the forward pass), never on
    # the event loop; with about one per core, waiting requests queue in the loop instead of thrashing the GIL
    feed_pool = ThreadPoolExecutor(state.config.feed_threads, thread_name_prefix="feed")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> Any:
        yield
        feed_pool.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        title="intentrank feed service",
        version=__version__,
        description="An endless feed ranked for intent, with clickbait mitigation per arm.",
        lifespan=lifespan,
        **({} if state.config.server.opentelemetry else {"telemetry": _NO_TELEMETRY}),
    )
    app.state.service = state

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        lines = _field_errors(err)
        return JSONResponse({"detail": "; ".join(lines)[:2000], "errors": lines[:50]}, status_code=422)

    @app.exception_handler(ServiceError)
    async def _refused(request: Request, err: ServiceError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=err.status)

    @app.exception_handler(IntentRankError)
    async def _bad_data(request: Request, err: IntentRankError) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=422)

    # the body is validated from its raw bytes by the model's pydantic-core validator (no json.loads, no
    # dependency resolution) and the reply written by orjson: this route is the service's hot path
    feed_doc = {"requestBody": {"required": True, "content": {"application/json": {
        "schema": _inline_refs(FeedRequest.model_json_schema())}}}, **clock_doc}  # fmt: skip

    @app.post(
        "/v1/feed", response_model=FeedResponse, tags=["feed"], openapi_extra=feed_doc,
        responses=_VALIDATION_ERROR_DOC,
    )  # fmt: skip
    async def feed(request: Request) -> Response:
        """The next slate of the user's session: no item repeats within the session, none the user
        clicked, ranked by the newest model with the arm's clickbait penalty."""
        state.use_clock(_request_clock(request.scope))
        b: Any = _validated(FeedRequest.model_validate_json, await request.body(), "body")
        call = partial(state.feed, b.user_id, b.session_id, cursor=b.cursor, arm=b.arm, explain=b.explain)
        # the request's context travels with it (the simulated clock is a context variable)
        ctx = contextvars.copy_context()
        out = await asyncio.get_running_loop().run_in_executor(feed_pool, ctx.run, call)
        return Response(_feed_json(out), media_type="application/json")

    def ingest_body(raw: bytes) -> dict[str, int]:
        columns = _validated(models.parse_events, raw, "body")
        n, first, last = state.ingest_columns(columns)
        return {"acknowledged": n, "first_event_id": first, "last_event_id": last}

    # the body is validated from its raw bytes into columns (pydantic-core, no model per event) rather than
    # by FastAPI (json.loads, then a model instance per event): the documented schema is EventsRequest's
    @app.post(
        "/v1/events", response_model=EventsResponse, tags=["feed"], dependencies=events_auth + clock,
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": _inline_refs(EventsRequest.model_json_schema())}}}, **clock_doc},
    )  # fmt: skip
    async def events(request: Request) -> dict[str, int]:
        """Outcomes of served items; the response comes only after the store committed them."""
        return await run_in_threadpool(ingest_body, await request.body())

    @app.post(
        "/v1/items", response_model=ItemsResponse, tags=["catalogue"], dependencies=auth + clock,
        openapi_extra=clock_doc,
    )  # fmt: skip
    def items(body: ItemsRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """Add items (scored for clickbait on arrival) and retire items."""
        b: Any = body
        return state.update_items(b.items, b.retire)

    @app.post("/v1/clickbait/score", response_model=ScoreResponse, tags=["catalogue"])
    def clickbait_score(body: ScoreRequest) -> dict[str, Any]:  # type: ignore[valid-type]
        """Clickbait scores (0..1) and categories of titles by the shipped model."""
        titles = list(body.titles)  # type: ignore[attr-defined]
        scores, cats = state.score_titles(titles)
        return {
            "results": [
                {"title": t, "score": float(s), "category": c}
                for t, s, c in zip(titles, scores, cats, strict=True)
            ]
        }

    @app.get("/healthz", response_model=HealthResponse, tags=["admin"])
    def healthz() -> dict[str, Any]:
        return state.health()

    @app.get("/v1/models", response_model=ModelsResponse, tags=["admin"])
    def list_models() -> dict[str, Any]:
        """The served model's version, the previous one, the number of swaps and the history."""
        return state.models()

    @app.post("/v1/models/rollback", response_model=ModelsResponse, tags=["admin"], dependencies=auth)
    def rollback() -> dict[str, Any]:
        """Serve the model before the current one again (published as a new version)."""
        state.rollback()
        return state.models()

    # -- the training worker (issue 13, incremental training online) ----------------------------------
    @app.post("/v1/models/train", response_model=ModelsResponse, tags=["admin"], dependencies=auth)
    def train_now() -> dict[str, Any]:
        """Run one round of the training worker now (train, validate, swap if not worse); 409 without a
        worker. The decision is in ``worker.last_decision``."""
        if state.worker is None:
            raise ServiceError(409, "no training worker runs in this service (service.worker.enabled)")
        state.worker.run_once()
        return state.models()

    @app.post("/v1/models/reload", response_model=ModelsResponse, tags=["admin"], dependencies=auth)
    def reload_checkpoint() -> dict[str, Any]:
        """Serve the worker's saved checkpoint again (without a worker: the ``--model`` directory, as a new
        version); a checkpoint that cannot be loaded leaves the served model as it is (409, and
        ``worker.last_error``)."""
        if state.worker is None:
            return reload.reload_model_dir(state, model_dir)
        if not state.worker.reload():
            msg = f"checkpoint not loaded, the served model stays: {state.worker.last_error}"
            raise ServiceError(409, msg)
        return state.models()

    @app.get("/metrics", tags=["admin"], response_class=Response)
    def metrics() -> Response:
        return Response(state.metrics.render(), media_type=state.metrics.content_type)

    page.mount(app, list(state.arm_names), page_token)  # GET /, its assets, GET /v1/arms
    app.add_middleware(Guard, state=state)
    return app
