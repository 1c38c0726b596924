"""Concurrent requests: pages of one session never share an item, and model swaps mid-traffic never
fail a request or mix versions (each slate names a version that was published)."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

from intentrank.service.state import ServiceState


def test_concurrent_pages_of_one_session_never_repeat(state: ServiceState) -> None:
    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(lambda _: state.feed(3, "shared"), range(12)))
    items = [it["item_id"] for b in bodies for it in b["items"]]
    assert len(items) == 240 and len(set(items)) == 240
    assert len({b["slate_id"] for b in bodies}) == 12


def test_swaps_during_traffic_fail_nothing(state: ServiceState, tiny_model) -> None:
    models = [copy.deepcopy(tiny_model) for _ in range(3)]

    def swap(k: int) -> int:
        return state.publish(models[k % 3], f"swap {k}")

    with ThreadPoolExecutor(4) as pool:
        feeds = [pool.submit(state.feed, u, "s") for u in range(30)]
        swaps = [pool.submit(swap, k) for k in range(6)]
        bodies = [f.result() for f in feeds]
        versions = [s.result() for s in swaps]
    assert sorted(versions) == list(range(1, 7))
    assert all(len(b["items"]) == 20 and 0 <= b["model_version"] <= 6 for b in bodies)
    assert state.models()["swaps"] == 6
