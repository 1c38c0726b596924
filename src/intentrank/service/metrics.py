"""Prometheus metrics of one service instance (its own registry, so several apps never collide).

Exposed at ``GET /metrics`` in the Prometheus text format: request latency per endpoint, events
acknowledged, the served model's version and swap count, and per arm the items served and the heavy
clickbait among them (with the running share, the number the issue's trap detector will watch).
"""

from __future__ import annotations

import threading

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

#: Latency buckets (seconds): the feed's budget is a few ms in process, tens of ms over HTTP.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ServiceMetrics:
    """The service's instruments; ``render()`` gives the text exposition."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, arms: list[str]) -> None:
        self.registry = r = CollectorRegistry()
        self.latency = Histogram(
            "intentrank_request_seconds",
            "Request latency by endpoint",
            ["method", "endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "intentrank_events_acknowledged", "Events stored durably and acknowledged", registry=r
        )
        self.event_batches = Counter(
            "intentrank_event_batches_acknowledged", "Event batches acknowledged", registry=r
        )
        self.event_commits = Counter(
            "intentrank_event_commits", "Store transactions holding event batches (group commit)", registry=r
        )
        self.model_version = Gauge("intentrank_model_version", "Version of the served model", registry=r)
        self.swaps = Gauge(
            "intentrank_model_swaps", "Model swaps since start (rollbacks included)", registry=r
        )
        self.slates = Counter("intentrank_slates_served", "Slates served", ["arm"], registry=r)
        self.items = Counter("intentrank_items_served", "Items served", ["arm"], registry=r)
        self.heavy = Counter(
            "intentrank_heavy_clickbait_items_served",
            "Served items in the heavy clickbait category",
            ["arm"],
            registry=r,
        )
        self.heavy_share = Gauge(
            "intentrank_heavy_clickbait_share",
            "Share of served items that are heavy clickbait",
            ["arm"],
            registry=r,
        )
        self.trap_alert = Gauge(
            "intentrank_trap_alert",
            "1 while the newest model version raises CTR significantly with conversions per user flat "
            "or falling (the trap detector)",
            ["arm"],
            registry=r,
        )
        self.trap_ctr_lift = Gauge(
            "intentrank_trap_ctr_lift", "Relative CTR change of the newest version vs the one before",
            ["arm"], registry=r,
        )  # fmt: skip
        self.trap_conv_lift = Gauge(
            "intentrank_trap_conversion_lift",
            "Relative change of conversions per user of the newest version vs the one before",
            ["arm"], registry=r,
        )  # fmt: skip
        self._lock = threading.Lock()
        self._served = {a: [0, 0] for a in arms}  # arm -> [items, heavy]
        for a in arms:
            self.slates.labels(a)
            self.items.labels(a)
            self.heavy.labels(a)
            self.heavy_share.labels(a).set(0.0)

    def served(self, arm: str, n_items: int, n_heavy: int) -> None:
        """Count one served slate of ``arm``."""
        self.slates.labels(arm).inc()
        self.items.labels(arm).inc(n_items)
        self.heavy.labels(arm).inc(n_heavy)
        with self._lock:
            tot = self._served.setdefault(arm, [0, 0])
            tot[0] += n_items
            tot[1] += n_heavy
            self.heavy_share.labels(arm).set(tot[1] / tot[0] if tot[0] else 0.0)

    def trap(self, arm: str, alert: bool, ctr_lift: float, conversion_lift: float) -> None:
        """The trap detector's verdict for ``arm``."""
        self.trap_alert.labels(arm).set(1.0 if alert else 0.0)
        self.trap_ctr_lift.labels(arm).set(ctr_lift)
        self.trap_conv_lift.labels(arm).set(conversion_lift)

    def model(self, version: int, swaps: int) -> None:
        self.model_version.set(version)
        self.swaps.set(swaps)

    def render(self) -> bytes:
        return generate_latest(self.registry)
