"""The simulator as a client of a running feed service: the same users and behaviour model, slates over HTTP.

:class:`HttpSimulator` is the :class:`~intentrank.simulator.engine.Simulator` with its one policy step
replaced: instead of ranking candidates itself, each session asks the service (``POST /v1/feed`` with
its cursor and the user's arm) for the next slate; the simulated users then click, read, bounce and
convert by the same behaviour model, and :class:`HttpEventSink` posts the outcomes back
(``POST /v1/events``, batches of at most ``events_per_post``, with the service's ``slate_id``) — so
the whole loop runs through the real service. Users are split over the arms exactly as in-process
(a stable hash of (user id, seed)), and each request names its arm, so the two loops are comparable
user by user.

Only HTTP (httpx) here: this module never imports the service package (a lower layer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

from intentrank.errors import IntentRankError
from intentrank.serving.policy import Policy, SlateRequest
from intentrank.simulator.ab import SimulationResult
from intentrank.simulator.catalogue import Catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import DayResult, Simulator
from intentrank.simulator.world import World

#: Events per POST /v1/events (the service's default limit is 5,000).
EVENTS_PER_POST = 1_000
#: The request header carrying the simulated time (a service with ``service.simulated_clock``).
CLOCK_HEADER = "X-Intentrank-Clock"
#: Events the simulator buffers before posting them (the service sees them while the day runs).
FLUSH_ROWS = 5_000


class ServiceClient:
    """A thin, thread-safe client of the feed service's HTTP API (one connection pool).

    Errors become :class:`IntentRankError` naming the endpoint, the status and the service's ``detail``.
    """

    def __init__(self, target: str, token: str | None = None, timeout: float = 120.0, pool: int = 16) -> None:
        if not target.startswith(("http://", "https://")):
            raise IntentRankError(f"--target must be an http(s) URL, got {target!r}")
        self.target = target.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        self.http = httpx.Client(base_url=self.target, timeout=timeout, headers=headers, limits=limits)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ServiceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self, method: str, path: str, body: Any = None, retries: int = 0, ts: float | None = None
    ) -> Any:
        """One request (at simulated time ``ts``: the X-Intentrank-Clock header); ``retries`` more
        attempts after a timeout (only for idempotent requests)."""
        headers = {CLOCK_HEADER: repr(float(ts))} if ts is not None else None
        for attempt in range(retries + 1):
            try:
                r = self.http.request(method, path, json=body, headers=headers)
                break
            except httpx.HTTPError as err:
                if not isinstance(err, httpx.TimeoutException) or attempt == retries:
                    msg = f"{method} {self.target}{path}: {type(err).__name__}: {err}"
                    raise IntentRankError(msg) from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise IntentRankError(f"{method} {path}: HTTP {r.status_code}: {str(detail)[:300]}")
        return r.json()

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/healthz")  # type: ignore[no-any-return]

    def arms(self) -> list[str]:
        """The service's arm names (``GET /v1/arms``)."""
        return list(self._call("GET", "/v1/arms")["arms"])

    def feed(
        self, user_id: int, session_id: str, cursor: str | None, arm: str | None, ts: float | None = None
    ) -> dict[str, Any]:
        """The session's next slate (at simulated time ``ts`` when the service runs on a simulated clock)."""
        body: dict[str, Any] = {"user_id": int(user_id), "session_id": session_id}
        if cursor is not None:
            body["cursor"] = cursor
        if arm is not None:
            body["arm"] = arm
        # a retried page with the same cursor returns the same slate again (a first page, without a
        # cursor, gets the session's next one: its slate is skipped, nothing is shown twice)
        return self._call("POST", "/v1/feed", body, retries=2, ts=ts)  # type: ignore[no-any-return]

    def events(self, events: list[dict[str, Any]], ts: float | None = None) -> dict[str, Any]:
        """Post a batch of events (at simulated time ``ts``; then events may carry their own ``ts``)."""
        return self._call("POST", "/v1/events", {"events": events}, ts=ts)  # type: ignore[no-any-return]


class RemoteArm(Policy):
    """Placeholder policy of an arm served by the service (it never scores in-process)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def scores(self, request: SlateRequest, items: Any) -> np.ndarray:  # pragma: no cover - never called
        raise IntentRankError(f"arm {self.name!r} is served by the remote service")


class HttpEventSink:
    """Posts the simulator's event batches to ``/v1/events`` (at most ``per_post`` events a request).

    Counts what the service acknowledged; a refused batch raises (the service names the problem).
    ``simulated_clock``: each event carries its simulated ``ts`` and each post the latest of its chunk
    (a service with ``service.simulated_clock``)."""

    def __init__(
        self, client: ServiceClient, per_post: int = EVENTS_PER_POST, workers: int = 1,
        simulated_clock: bool = False,
    ) -> None:  # fmt: skip
        self.client, self.per_post, self.workers = client, per_post, workers
        self.simulated_clock = simulated_clock
        self.acknowledged = 0
        self.posts = 0

    def __call__(self, batch: pa.Table) -> None:
        names = ["slate_id", "item_id", "click", "dwell_s", "bounce", "conversion"]
        fields = batch.select(names + (["ts"] if self.simulated_clock else []))
        chunks = [fields.slice(s, self.per_post).to_pylist() for s in range(0, batch.num_rows, self.per_post)]

        def post(chunk: list[dict[str, Any]]) -> dict[str, Any]:
            ts = max(e["ts"] for e in chunk) if self.simulated_clock else None
            return self.client.events(chunk, ts=ts)

        if self.workers > 1 and len(chunks) > 1:
            with ThreadPoolExecutor(self.workers) as pool:
                acks = list(pool.map(post, chunks))
        else:
            acks = [post(c) for c in chunks]
        self.acknowledged += sum(int(a["acknowledged"]) for a in acks)
        self.posts += len(acks)


class HttpSimulator(Simulator):
    """A :class:`Simulator` whose slates come from a running feed service (see the module docstring).

    Args:
        world: the simulated world; its catalogue must be the service's (checked on the first slate:
            the served titles must be the catalogue's titles of those item ids).
        client: the service client.
        arm_names: the service arms the users are split over (in this order; default: all of the
            service's arms).
        seed: the run's seed (arm split, sessions' random streams).
        concurrency: feed requests in flight at once (one per session of a step).
        simulated_clock: send each request's simulated time (the session's clock; a service with
            ``service.simulated_clock``), so time features are those of the in-process loop.
    """

    def __init__(
        self,
        world: World,
        client: ServiceClient,
        arm_names: Sequence[str],
        seed: int = 0,
        concurrency: int = 8,
        daily: bool = False,
        simulated_clock: bool = False,
    ) -> None:
        super().__init__(world, {a: RemoteArm(a) for a in arm_names}, seed=seed, daily=daily)
        self.client = client
        self.simulated_clock = simulated_clock
        self.concurrency = max(1, int(concurrency))
        self.requests = 0
        self._cursors: dict[int, str] = {}
        self._pool = ThreadPoolExecutor(self.concurrency) if self.concurrency > 1 else None
        self._checked = False

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()

    def _serve(
        self,
        arm: int,
        user_ids: np.ndarray,
        sessions: np.ndarray,
        candidates: np.ndarray,
        slate_index: int,
        clock: np.ndarray,
        day: int,
        rng: np.random.Generator,
        buffer: Any = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The sessions' next slates from the service (candidates are the service's own retrieval)."""
        name = self.arm_names[arm]
        S = self.world.config.slate_size
        prefix = f"sim{self.seed}-"

        def one(k: int) -> dict[str, Any]:
            sess = int(sessions[k])
            ts = float(clock[k]) if self.simulated_clock else None
            return self.client.feed(int(user_ids[k]), f"{prefix}{sess}", self._cursors.get(sess), name, ts=ts)

        ks = range(len(user_ids))
        bodies = list(self._pool.map(one, ks)) if self._pool is not None else [one(k) for k in ks]
        self.requests += len(bodies)
        slate = np.empty((len(bodies), S), np.int64)
        prop = np.empty((len(bodies), S), np.float64)
        ids = np.empty(len(bodies), np.int64)
        for k, b in enumerate(bodies):
            items = b["items"]
            if len(items) != S:
                raise IntentRankError(
                    f"the service returned {len(items)} items in a slate, the simulator expects "
                    f"simulator.slate_size = {S} (set both alike)"
                )
            slate[k] = [it["item_id"] for it in items]
            prop[k] = [it["propensity"] for it in items]
            ids[k] = b["slate_id"]
            self._cursors[int(sessions[k])] = b["cursor"]
            if b.get("arm") != name:
                raise IntentRankError(f"asked the service for arm {name!r}, it served {b.get('arm')!r}")
        if not self._checked:
            self._check_catalogue(bodies[0]["items"])
        return slate, prop, ids

    def _check_catalogue(self, items: list[dict[str, Any]]) -> None:
        titles = self.world.catalogue.items["title"].to_numpy()
        for it in items:
            i = int(it["item_id"])
            if i >= len(titles) or str(titles[i]) != it["title"]:
                raise IntentRankError(
                    f"the service's item {i} ({it['title'][:60]!r}) is not the simulator's item {i}: the "
                    "service must serve the simulator's catalogue (same catalogue config and seed)"
                )
        self._checked = True


def simulate_http(
    client: ServiceClient,
    config: SimulatorConfig,
    seed: int = 0,
    catalogue: Catalogue | None = None,
    arm_names: Sequence[str] | None = None,
    concurrency: int = 8,
    on_day: Callable[[DayResult], None] | None = None,
    events_per_post: int = EVENTS_PER_POST,
) -> tuple[SimulationResult, dict[str, int]]:
    """Simulate ``config.users`` users for ``config.days`` days against the service behind ``client``.

    Returns the per-user KPIs (as :func:`~intentrank.simulator.ab.simulate`) and counts
    ``{"feed_requests", "events_acknowledged", "event_posts"}``."""
    from intentrank.simulator.catalogue import build_catalogue

    service_arms = client.arms()
    names = list(arm_names) if arm_names else service_arms
    unknown = [a for a in names if a not in service_arms]
    if unknown:
        raise IntentRankError(f"arm(s) {', '.join(unknown)} not served; the service's arms: {service_arms}")
    cat = catalogue if catalogue is not None else build_catalogue(config=config.catalogue, seed=seed)
    health = client.health()
    if int(health["items"]) != len(cat):
        raise IntentRankError(
            f"the service holds {health['items']:,} items, the simulator's catalogue {len(cat):,}: serve the "
            "simulator's catalogue (same catalogue config and seed)"
        )
    config = config.model_copy(update={"flush_rows": FLUSH_ROWS})  # events go back while the day runs
    world = World.create(cat, config, seed=seed)
    simulated = bool(health.get("simulated_clock", False))
    sim = HttpSimulator(world, client, names, seed=seed, concurrency=concurrency, simulated_clock=simulated)
    sink = HttpEventSink(
        client, per_post=events_per_post, workers=min(concurrency, 4), simulated_clock=simulated
    )
    log: list[DayResult] = []

    def record(day: DayResult) -> None:
        log.append(day)
        if on_day is not None:
            on_day(day)

    try:
        kpis = sim.run(sink, on_day=record)
    finally:
        sim.close()
    per_user = kpis.frame(sim.arms, sim.arm_names)
    counts = {
        "feed_requests": sim.requests,
        "events_acknowledged": sink.acknowledged,
        "event_posts": sink.posts,
    }
    return SimulationResult(per_user=per_user, arm_names=sim.arm_names, days=log), counts


def simulate_like_the_service(
    model: Any, config: SimulatorConfig, seed: int = 0, catalogue: Catalogue | None = None
) -> tuple[SimulationResult, Any]:
    """The in-process counterpart of :func:`simulate_http` against a service running ``model`` with its
    two default arms (``unmitigated``; ``heuristic``: the heuristic clickbait penalty): both arms read one
    serving history fed with each flush of ``FLUSH_ROWS`` events, as the service's read-your-writes history
    is with each post. Returns the per-user KPIs and that history (the HTTP-vs-in-process comparison)."""
    from intentrank.mitigation.heuristic import HeuristicPenalty
    from intentrank.serving.pipeline import ServingHistory
    from intentrank.serving.postprocess import PenalizedPolicy
    from intentrank.serving.ranker import RankerPolicy
    from intentrank.simulator.ab import simulate
    from intentrank.simulator.catalogue import build_catalogue

    cat = catalogue if catalogue is not None else build_catalogue(config=config.catalogue, seed=seed)
    history = ServingHistory(model.config.labels.long_click_threshold_s)
    topics = cat.items["topic"].astype(str).to_numpy(object)

    def feed_history(batch: pa.Table) -> None:
        ev = batch.select(["user_id", "ts", "item_id", "click", "bounce", "dwell_s"]).to_pandas()
        history.update(ev.assign(topic=topics[ev["item_id"].to_numpy()]))

    policies = {
        "unmitigated": RankerPolicy(model, history=history),
        "heuristic": PenalizedPolicy(RankerPolicy(model, history=history), HeuristicPenalty()),
    }
    result = simulate(
        policies,  # type: ignore[arg-type]
        config.model_copy(update={"flush_rows": FLUSH_ROWS}),
        seed=seed,
        catalogue=cat,
        sink=feed_history,
    )
    return result, history
