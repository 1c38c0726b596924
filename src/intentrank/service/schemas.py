"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI schema at /docs).

Request bodies carry the configured limits (batch sizes, string lengths), so they are built per
:class:`~intentrank.service.config.ServiceLimits` by :func:`request_models`; responses are fixed.
Unknown fields are refused (a typo is an error, not a silently ignored setting).
"""

# no `from __future__ import annotations`: the request models are built in a function and pydantic
# must resolve their annotations there.

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, NotRequired

import numpy as np
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict

from intentrank.service.config import ServiceLimits

#: Largest user id (the store's BIGINT; ids stay as they are).
MAX_USER_ID = 2**62
#: Largest slate or item id a request may name (ids are int64 in the store).
MAX_ID = 2**63 - 1
MAX_DWELL_S = 86_400.0
#: The fields of one event of POST /v1/events, in column order.
EVENT_FIELDS = ("slate_id", "item_id", "click", "dwell_s", "bounce", "conversion", "ts")
_DTYPES = {"slate_id": np.int64, "item_id": np.int64, "click": bool, "dwell_s": np.float64, "bounce": bool,
           "conversion": bool, "ts": np.float64}  # fmt: skip
#: what a missing field is (``ts``: NaN, the slate's time)
_DEFAULTS: dict[str, Any] = {"dwell_s": 0.0, "bounce": False, "conversion": False, "ts": math.nan}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class RequestModels:
    """The request body classes for one set of limits."""

    FeedRequest: type[BaseModel]
    EventsRequest: type[BaseModel]
    ItemsRequest: type[BaseModel]
    ScoreRequest: type[BaseModel]
    #: the raw body of POST /v1/events → NumPy columns (the ingestion path; see ``request_models``)
    parse_events: Callable[[bytes | str], dict[str, np.ndarray]]


def request_models(limits: ServiceLimits) -> RequestModels:
    """Request body classes enforcing ``limits`` (string lengths and batch sizes)."""
    Id = Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.max_id_chars)
    ]
    Text = Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=limits.max_title_chars)
    ]

    class FeedRequest(_Strict):
        """Ask for the next slate of a user's session."""

        user_id: int = Field(ge=0, le=MAX_USER_ID, description="The user (an integer id, kept as is).")
        session_id: Id = Field(description="The client's session key; a new key starts a new session.")
        cursor: Id | None = Field(
            None,
            description="The cursor of the previous response (omit on the first page); repeating "
            "a cursor returns the same slate again (a retry).",
        )
        arm: Id | None = Field(None, description="Force a variant (default: a stable hash of user_id).")
        explain: bool = Field(False, description="Add each item's score breakdown.")

    # one definition of an event's fields, used by the documented model (EventIn, the OpenAPI schema) and
    # by the ingestion path's TypedDict (validated from the raw body in Rust, no model instance per event)
    SlateId = Annotated[
        int, Field(ge=0, le=MAX_ID, description="slate_id of the /v1/feed reply that showed it.")
    ]
    ItemId = Annotated[int, Field(ge=0, le=MAX_ID, description="The item (it must be in that slate).")]
    Click = Annotated[bool, Field(description="The user clicked.")]
    Dwell = Annotated[
        float,
        Field(ge=0.0, le=MAX_DWELL_S, allow_inf_nan=False, description="Seconds read (0 without a click)."),
    ]
    Bounce = Annotated[bool, Field(description="Clicked and left at once (needs click).")]
    Conversion = Annotated[bool, Field(description="Clicked and converted (needs click).")]
    Ts = Annotated[
        float,
        Field(ge=0.0, allow_inf_nan=False, description="When it happened, seconds since the service's "
              "epoch, not before its slate was served; only with service.simulated_clock (default: the "
              "slate's time)."),
    ]  # fmt: skip
    batch = Field(min_length=1, max_length=limits.max_events_per_batch)

    class EventIn(_Strict):
        """What happened to one item of a served slate. Consistency across fields (bounce, conversion and
        dwell need a click) is checked over the whole batch by the ingest path (vectorised)."""

        slate_id: SlateId
        item_id: ItemId
        click: Click
        dwell_s: Dwell = 0.0
        bounce: Bounce = False
        conversion: Conversion = False
        ts: Ts = None  # type: ignore[assignment]  # (absent: the slate's time)

    class EventsRequest(_Strict):
        """A batch of events; acknowledged only once stored durably."""

        events: Annotated[list[EventIn], batch]

    @with_config(ConfigDict(extra="forbid"))
    class EventFields(TypedDict):
        slate_id: SlateId
        item_id: ItemId
        click: Click
        dwell_s: NotRequired[Dwell]
        bounce: NotRequired[Bounce]
        conversion: NotRequired[Conversion]
        ts: NotRequired[Ts]

    @with_config(ConfigDict(extra="forbid"))
    class EventsBody(TypedDict):
        events: Annotated[list[EventFields], batch]

    events_body = TypeAdapter(EventsBody)

    def parse_events(raw: bytes | str) -> dict[str, np.ndarray]:
        """The body of POST /v1/events as columns (:data:`EVENT_FIELDS`); raises pydantic's
        ValidationError (locations without the ``body`` prefix). A plain body (exact JSON types, in
        range) takes :func:`plain_event_columns`; anything else pydantic's validator, which accepts or
        refuses it as the schema says."""
        cols = plain_event_columns(raw, limits.max_events_per_batch)
        return cols if cols is not None else event_columns(events_body.validate_json(raw)["events"])

    class ItemIn(_Strict):
        """A new item of the catalogue (scored for clickbait on arrival)."""

        title: Text
        topic: Text = Field(description="Topic label.")
        source: Text = Field(description="Publisher / outlet.")
        publish_ts: float | None = Field(
            None, description="Publish time, seconds since the service's epoch (default: now)."
        )

        @field_validator("publish_ts")
        @classmethod
        def _finite(cls, v: float | None) -> float | None:
            if v is not None and not math.isfinite(v):
                raise ValueError("publish_ts must be a finite number")
            return v

    class ItemsRequest(_Strict):
        """Catalogue update: new items and items to retire."""

        items: list[ItemIn] = Field(default_factory=list, max_length=limits.max_items_per_update)
        retire: list[Annotated[int, Field(ge=0, le=MAX_ID)]] = Field(
            default_factory=list, max_length=limits.max_items_per_update, description="Item ids to retire."
        )

        @model_validator(mode="after")
        def _something(self) -> "ItemsRequest":
            if not self.items and not self.retire:
                raise ValueError("nothing to do: give items or retire")
            return self

    class ScoreRequest(_Strict):
        """Titles to score with the shipped clickbait model."""

        titles: list[Text] = Field(min_length=1, max_length=limits.max_titles_per_score)

    return RequestModels(FeedRequest, EventsRequest, ItemsRequest, ScoreRequest, parse_events)


def event_columns(events: Sequence[Any]) -> dict[str, np.ndarray]:
    """Events (dicts as parsed, or objects with the fields as attributes) as NumPy columns
    (:data:`EVENT_FIELDS`; a missing dwell_s/bounce/conversion is 0/false, a missing ts NaN)."""
    n = len(events)
    if n and isinstance(events[0], dict):
        cols = {k: [e.get(k, _DEFAULTS.get(k)) for e in events] for k in EVENT_FIELDS}
    else:
        cols = {k: [getattr(e, k, _DEFAULTS.get(k)) for e in events] for k in EVENT_FIELDS}
        cols["ts"] = [math.nan if t is None else t for t in cols["ts"]]
    return {k: np.array(cols[k], dtype=_DTYPES[k]) if n else np.empty(0, _DTYPES[k]) for k in EVENT_FIELDS}


_EVENT_KEYS = frozenset(EVENT_FIELDS)
_REQUIRED = ("slate_id", "item_id", "click")
_KINDS: dict[str, tuple[frozenset[type], Any]] = {
    "slate_id": (frozenset({int}), np.int64), "item_id": (frozenset({int}), np.int64),
    "click": (frozenset({bool}), bool), "bounce": (frozenset({bool}), bool),
    "conversion": (frozenset({bool}), bool),
    "dwell_s": (frozenset({int, float}), np.float64), "ts": (frozenset({int, float}), np.float64),
}  # fmt: skip


def plain_event_columns(raw: bytes | str, max_events: int) -> dict[str, np.ndarray] | None:
    """The columns of a POST /v1/events body that the schema accepts *as it is*, or None.

    The fast path of ingestion: orjson parses the body and the checks run per column (types by
    ``set(map(type, ...))``, ranges on the NumPy arrays) instead of a validator call per field. It
    accepts only a subset of what pydantic's schema accepts (exact JSON types: integer ids, true/false
    flags, numbers; only the known keys, the required ones present; in range; 1..``max_events`` events)
    and gives the same columns; everything else, valid in lax mode (``"1"``, ``1.0`` for an id) or not,
    returns None and goes to the validator (tests/service/test_ingest_parse.py checks both agree)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(body) is not dict or body.keys() != {"events"}:
        return None
    evs = body["events"]
    if type(evs) is not list or not 1 <= len(evs) <= max_events or set(map(type, evs)) != {dict}:
        return None
    present = set().union(*evs)  # every event's keys, in one C loop
    if not present <= _EVENT_KEYS:
        return None
    try:
        lists = {k: [e[k] for e in evs] for k in _REQUIRED}
    except KeyError:
        return None
    cols = {}
    for k, default in _DEFAULTS.items():
        if k in present:
            lists[k] = [e.get(k, default) for e in evs]
        else:  # sent by no event of the batch
            cols[k] = np.full(len(evs), default, dtype=_KINDS[k][1])
    for k in EVENT_FIELDS:
        if k in cols:
            continue
        kinds, dtype = _KINDS[k]
        if not set(map(type, lists[k])) <= kinds:
            return None
        try:
            cols[k] = np.array(lists[k], dtype=dtype)
        except OverflowError:  # an id beyond int64
            return None
    dwell, ts = cols["dwell_s"], cols["ts"]
    given = ts[~np.isnan(ts)]  # (NaN only as the default: JSON has none)
    if (
        (cols["slate_id"] < 0).any() or (cols["item_id"] < 0).any()
        or not ((dwell >= 0) & (dwell <= MAX_DWELL_S)).all()
        or not (np.isfinite(given) & (given >= 0)).all()
    ):  # fmt: skip
        return None
    return cols


# -- responses --------------------------------------------------------------------------------------
class Explanation(BaseModel):
    """How an item's score was made: model outputs, formula, penalty, retrieval source."""

    p_click: float
    time_s: float = Field(description="Predicted seconds read given a click.")
    p_conv: float = Field(description="Predicted conversion probability given a click.")
    formula: float = Field(description="p_click^a · time^b · p_conv^g.")
    penalty: float = Field(description="The arm's clickbait penalty factor f(c) (1 = none).")
    source: str = Field(description="Retrieval source: fresh, popular or random.")


class FeedItem(BaseModel):
    item_id: int
    title: str
    score: float = Field(description="formula × penalty: what the slate is ordered by.")
    clickbait_score: float
    category: str = Field(description="non, light or heavy clickbait (by the scorer's score).")
    propensity: float = Field(description="P(this pick | the picks above it); 1.0 when deterministic.")
    explain: Explanation | None = None


class FeedResponse(BaseModel):
    slate_id: int
    cursor: str = Field(description="Send it with the next request of this session.")
    model_version: int
    arm: str
    items: list[FeedItem]


class EventsResponse(BaseModel):
    acknowledged: int
    first_event_id: int
    last_event_id: int


class ItemsResponse(BaseModel):
    item_ids: list[int]
    clickbait_scores: list[float]
    categories: list[str]
    retired: int = Field(description="Items newly retired.")


class TitleScore(BaseModel):
    title: str
    score: float
    category: str


class ScoreResponse(BaseModel):
    results: list[TitleScore]


class HealthResponse(BaseModel):
    status: str
    model_version: int
    items: int
    live_items: int
    sessions: int
    run_id: int
    simulated_clock: bool = Field(
        False,
        description="Requests carry their simulated time (X-Intentrank-Clock; service.simulated_clock).",
    )


class ModelEntry(BaseModel):
    version: int
    source: str
    published_at: float = Field(description="Unix time.")
    metrics: dict[str, Any] | None = Field(
        None, description="Validation by the training worker (click AUC, heavy-clickbait share)."
    )


class ModelsResponse(BaseModel):
    version: int
    previous_version: int | None
    swaps: int
    history: list[ModelEntry]
    worker: dict[str, Any] | None = Field(
        None, description="The training worker: last decision and reason, watermark, checkpoint, errors."
    )
    trap: dict[str, Any] | None = Field(
        None, description="The trap detector: per version and arm CTR vs conversions per user; alerts."
    )
