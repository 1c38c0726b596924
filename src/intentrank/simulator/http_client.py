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

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pyarrow as pa

from intentrank.errors import ConfigError, IntentRankError
from intentrank.serving.config import CandidatesConfig, FilteringConfig
from intentrank.serving.pipeline import UserSignals, filter_mask, retrieve
from intentrank.serving.policy import Policy, SlateRequest
from intentrank.serving.request_rng import request_rng
from intentrank.simulator.ab import SimulationResult
from intentrank.simulator.catalogue import Catalogue
from intentrank.simulator.config import SimulatorConfig
from intentrank.simulator.engine import DAY_S, DayResult, Simulator
from intentrank.simulator.world import World

#: Events per POST /v1/events (the service's default limit is 5,000).
EVENTS_PER_POST = 1_000
#: The request header carrying the simulated time (a service with ``service.simulated_clock``).
CLOCK_HEADER = "X-Intentrank-Clock"
#: Events the simulator buffers before posting them (the service sees them while the day runs).
FLUSH_ROWS = 5_000


def session_key(seed: int, session: int) -> str:
    """The service session id of the simulator's session ``session`` (run ``seed``): the HTTP loop sends
    it, and the in-process counterpart seeds its retrieval with it as the service does."""
    return f"sim{seed}-{session}"


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

        def one(k: int) -> dict[str, Any]:
            sess = int(sessions[k])
            ts = float(clock[k]) if self.simulated_clock else None
            key = session_key(self.seed, sess)
            return self.client.feed(int(user_ids[k]), key, self._cursors.get(sess), name, ts=ts)

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


@dataclass(frozen=True)
class _StaticItems:
    """The simulator's static catalogue as the serving pipeline's retrieval and filter read it (every
    item live, none retired; the service's ``ItemSnapshot`` of the same catalogue)."""

    retired: np.ndarray
    live_ids: np.ndarray
    fresh_order: np.ndarray
    publish_ts: np.ndarray

    @classmethod
    def of(cls, catalogue: Catalogue) -> _StaticItems:
        publish = catalogue.items["publish_ts"].to_numpy(np.float64)
        n = len(publish)
        fresh = np.argsort(-publish, kind="stable").astype(np.int64)
        return cls(np.zeros(n, bool), np.arange(n, dtype=np.int64), fresh, publish)

    def __len__(self) -> int:
        return len(self.retired)


class ServiceLikeSimulator(Simulator):
    """A :class:`Simulator` whose candidates are drawn as the service draws them: the serving pipeline's
    :func:`~intentrank.serving.pipeline.filter_mask` and :func:`~intentrank.serving.pipeline.retrieve`
    with the page's own stream :func:`~intentrank.serving.request_rng.request_rng` (service seed, user,
    session id as :class:`HttpSimulator` names it, page), leaving out the session's shown items and the
    items the user clicked (known once their events were flushed: :meth:`record`, as the service learns
    them when a post is acknowledged). So for the same seed each page gets exactly the candidates the
    service gives it; the arms' policies rank them in process.

    Only what the service does without its live state is supported: the random and fresh sources and
    the item-age filter (popular, topic and similar read the service's click counts and embeddings, the
    recently-shown filter its memory of other sessions).
    """

    def __init__(
        self,
        world: World,
        policies: Mapping[str, Policy],
        seed: int = 0,
        candidates: CandidatesConfig | None = None,
        filtering: FilteringConfig | None = None,
        service_seed: int | None = None,
    ) -> None:
        super().__init__(world, policies, seed=seed)
        K = world.config.candidates
        self.candidates = candidates or CandidatesConfig(total=K, fresh=0, popular=0, topic=0, similar=0)
        self.filtering = filtering or FilteringConfig(recent_shown_s=0)
        c, f = self.candidates, self.filtering
        if c.popular or c.topic or c.similar:
            raise ConfigError(
                "the in-process counterpart of the service draws only the random and fresh sources: set "
                "candidates.popular = topic = similar = 0 (they read the live service's state)"
            )
        if f.recent_shown_s > 0:
            raise ConfigError(
                "the in-process counterpart of the service has no cross-session 'recently shown' memory: "
                "set filtering.recent_shown_s = 0"
            )
        if c.total != K:
            raise ConfigError(f"candidates.total ({c.total}) must equal simulator.candidates ({K})")
        self.service_seed = seed if service_seed is None else int(service_seed)
        self._items = _StaticItems.of(world.catalogue)
        self._shown: dict[int, np.ndarray] = {}
        #: user -> items clicked (in flushed events): the service's clicked-items filter
        self.clicked: dict[int, set[int]] = {}

    def record(self, batch: pa.Table) -> None:
        """Take a flushed batch's clicks into the clicked-items filter (call it from the sink)."""
        click = batch.column("click").to_numpy(zero_copy_only=False)
        users = batch.column("user_id").to_numpy()[click]
        items = batch.column("item_id").to_numpy()[click]
        for u, i in zip(users.tolist(), items.tolist(), strict=True):
            self.clicked.setdefault(u, set()).add(i)

    def page_candidates(self, user_id: int, session: int, slate_index: int, ts: float) -> np.ndarray:
        """The candidates the service retrieves for this page (see the class docstring)."""
        shown = self._shown.get(session, np.empty(0, np.int64))
        clicked = self.clicked.get(user_id)
        exclude = np.concatenate([shown, np.fromiter(clicked, np.int64)]) if clicked else shown
        user = UserSignals(user_id, slate_index, ts, int(ts // DAY_S), exclude)
        mask = filter_mask(self._items, user, self.filtering)  # type: ignore[arg-type]
        rng = request_rng(self.service_seed, user_id, session_key(self.seed, session), slate_index)
        cand, _ = retrieve(self._items, user, mask, self.candidates, rng)  # type: ignore[arg-type]
        return cand

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
        K = candidates.shape[1]
        rows = [
            self.page_candidates(u, s, slate_index, t)
            for u, s, t in zip(user_ids.tolist(), sessions.tolist(), clock.tolist(), strict=True)
        ]
        short = [len(r) for r in rows if len(r) != K]
        if short:
            raise IntentRankError(f"the service's retrieval found {short[0]} candidates, {K} expected")
        cand = np.stack(rows) if rows else candidates
        slate, prop, ids = super()._serve(arm, user_ids, sessions, cand, slate_index, clock, day, rng, buffer)
        for k, s in enumerate(sessions.tolist()):
            self._shown[s] = np.concatenate([self._shown.get(s, np.empty(0, np.int64)), slate[k]])
        return slate, prop, ids


def simulate_like_the_service(
    model: Any,
    config: SimulatorConfig,
    seed: int = 0,
    catalogue: Catalogue | None = None,
    candidates: CandidatesConfig | None = None,
    filtering: FilteringConfig | None = None,
    service_seed: int | None = None,
) -> tuple[SimulationResult, Any]:
    """The in-process counterpart of :func:`simulate_http` against a service running ``model`` with its
    two default arms (``unmitigated``; ``heuristic``: the heuristic clickbait penalty), its retrieval
    (``candidates``, ``filtering``; default: 1,000 random candidates, no cross-session filter) and seed
    (``service_seed``, default ``seed``): candidates drawn by the service's own rules and streams
    (:class:`ServiceLikeSimulator`), and both arms read one serving history fed with each flush of
    ``FLUSH_ROWS`` events, as the service's read-your-writes history is with each post. Returns the
    per-user KPIs and that history (the HTTP-vs-in-process comparison)."""
    from intentrank.mitigation.heuristic import HeuristicPenalty
    from intentrank.serving.pipeline import ServingHistory
    from intentrank.serving.postprocess import PenalizedPolicy
    from intentrank.serving.ranker import RankerPolicy
    from intentrank.simulator.catalogue import build_catalogue

    cat = catalogue if catalogue is not None else build_catalogue(config=config.catalogue, seed=seed)
    history = ServingHistory(model.config.labels.long_click_threshold_s)
    topics = cat.items["topic"].astype(str).to_numpy(object)
    ranker = RankerPolicy(model, history=history)  # one ranker: the catalogue's features encoded once
    policies = {"unmitigated": ranker, "heuristic": PenalizedPolicy(ranker, HeuristicPenalty())}
    config = config.model_copy(update={"flush_rows": FLUSH_ROWS})
    world = World.create(cat, config, seed=seed)
    sim = ServiceLikeSimulator(world, policies, seed, candidates, filtering, service_seed)  # type: ignore[arg-type]

    def feed_history(batch: pa.Table) -> None:  # what the service does with an acknowledged post
        ev = batch.select(["user_id", "ts", "item_id", "click", "bounce", "dwell_s"]).to_pandas()
        sim.record(batch)
        history.update(ev.assign(topic=topics[ev["item_id"].to_numpy()]))

    log: list[DayResult] = []
    kpis = sim.run(feed_history, on_day=log.append)
    per_user = kpis.frame(sim.arms, sim.arm_names)
    return SimulationResult(per_user=per_user, arm_names=sim.arm_names, days=log), history
