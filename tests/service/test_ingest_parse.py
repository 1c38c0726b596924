"""The ingestion fast path (``plain_event_columns``) agrees with pydantic's validation of the schema."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from intentrank.service.config import ServiceLimits
from intentrank.service.schemas import EVENT_FIELDS, event_columns, plain_event_columns, request_models

MAX_EVENTS = 5
MODELS = request_models(ServiceLimits(max_events_per_batch=MAX_EVENTS))

values = st.one_of(
    st.integers(-3, 50), st.integers(2**62, 2**64 + 5), st.booleans(), st.floats(-2.0, 1e5),
    st.just(86_400.5), st.just(1e300), st.sampled_from(["1", "true", "x", ""]), st.none(), st.just([]),
)  # fmt: skip
good = {
    "slate_id": st.integers(0, 2**63 - 1), "item_id": st.integers(0, 99), "click": st.booleans(),
    "dwell_s": st.one_of(st.integers(0, 86_400), st.floats(0.0, 86_400.0)), "bounce": st.booleans(),
    "conversion": st.booleans(), "ts": st.one_of(st.integers(0, 10**9), st.floats(0.0, 1e12)),
}  # fmt: skip
event = st.fixed_dictionaries(
    {k: good[k] for k in ("slate_id", "item_id", "click")},
    optional={**{k: good[k] for k in ("dwell_s", "bounce", "conversion", "ts")}},
)
# events mostly valid, some fields replaced by odd values, some keys dropped or added
odd_event = st.tuples(
    event, st.dictionaries(st.sampled_from([*EVENT_FIELDS, "extra"]), values, max_size=2),
    st.sets(st.sampled_from(EVENT_FIELDS), max_size=1),
).map(lambda t: {k: v for k, v in (t[0] | t[1]).items() if k not in t[2]})
bodies = st.one_of(
    st.lists(event, min_size=1, max_size=MAX_EVENTS).map(lambda evs: {"events": evs}),
    st.lists(odd_event, min_size=0, max_size=MAX_EVENTS + 1).map(lambda evs: {"events": evs}),
    st.lists(event, min_size=1, max_size=2).map(lambda evs: {"events": evs, "more": 1}),
    st.just({"events": {}}), st.just([]), st.just({}),
)  # fmt: skip


def _reference(raw: bytes) -> dict[str, np.ndarray] | None:
    """The columns of the events as the documented model validates them (None: refused)."""
    try:
        return event_columns(MODELS.EventsRequest.model_validate_json(raw).events)  # type: ignore[attr-defined]
    except ValidationError:
        return None


@settings(max_examples=400, deadline=None)
@given(bodies)
def test_fast_path_agrees_with_the_schema(body: Any) -> None:
    raw = json.dumps(body).encode()
    fast = plain_event_columns(raw, MAX_EVENTS)
    ref = _reference(raw)
    if ref is None:  # the schema refuses it: the fast path must not accept it
        assert fast is None
        return
    if fast is None:  # lax input (e.g. 1.0 for an id): the validator's path
        return
    assert set(fast) == set(ref) == set(EVENT_FIELDS)
    for k in EVENT_FIELDS:
        assert fast[k].dtype == ref[k].dtype, k
        np.testing.assert_array_equal(fast[k], ref[k], err_msg=k)


def test_plain_batches_take_the_fast_path_and_parse_events_agrees() -> None:
    evs = [{"slate_id": 3, "item_id": 7, "click": True, "dwell_s": 12, "bounce": False},
           {"slate_id": 3, "item_id": 8, "click": False}]  # fmt: skip
    raw = json.dumps({"events": evs}).encode()
    fast = plain_event_columns(raw, MAX_EVENTS)
    assert fast is not None and np.isnan(fast["ts"]).all() and fast["dwell_s"].tolist() == [12.0, 0.0]
    via = MODELS.parse_events(raw)
    for k in EVENT_FIELDS:
        np.testing.assert_array_equal(via[k], fast[k])
    # lax input goes to the validator (accepted there), invalid input is refused there
    assert plain_event_columns(raw.replace(b'"item_id": 7', b'"item_id": "7"'), MAX_EVENTS) is None
    assert MODELS.parse_events(raw.replace(b'"item_id": 7', b'"item_id": "7"'))["item_id"][0] == 7
    cases = [(b'"item_id": 7', b'"item_id": -7'), (b'"dwell_s": 12', b'"dwell_s": 1e9'),
             (b'"click": true', b'"click": "maybe"'), (b'"bounce": false', b'"bounce": false, "x": 1')]
    for old, bad in cases:
        broken = raw.replace(old, bad)
        assert broken != raw and plain_event_columns(broken, MAX_EVENTS) is None
        try:
            MODELS.parse_events(broken)
        except ValidationError:
            continue
        raise AssertionError(f"accepted {bad!r}")
