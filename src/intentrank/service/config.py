"""Typed configuration of the feed service (the ``service`` section of the one intentrank config file).

Only pydantic here: the config layer must import without torch, FastAPI or other heavy libraries.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intentrank.mitigation.config import HeuristicMethod, MitigationConfig
from intentrank.serving.config import CandidatesConfig, DiversityConfig, FilteringConfig, ScoringConfig

#: Environment variable holding the bearer token of write and admin endpoints (wins over ``token``).
TOKEN_ENV = "INTENTRANK_TOKEN"
ARM_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,40}$"


class ServiceLimits(BaseModel):
    """Bounds on what a request may carry and on the state the service keeps (memory stays bounded)."""

    model_config = ConfigDict(extra="forbid")

    max_body_bytes: int = Field(4 << 20, ge=1024, description="Largest request body (413 beyond it).")
    max_events_per_batch: int = Field(5_000, ge=1, description="Most events in one POST /v1/events.")
    max_items_per_update: int = Field(1_000, ge=1, description="Most new items in one POST /v1/items.")
    max_titles_per_score: int = Field(1_000, ge=1, description="Most titles in one POST /v1/clickbait/score.")
    max_title_chars: int = Field(1_000, ge=1, description="Longest title, topic or source string.")
    max_id_chars: int = Field(128, ge=1, description="Longest session id, cursor or arm name.")
    max_sessions: int = Field(
        50_000, ge=1, description="Sessions remembered (least recently used dropped); ≈ 9 kB each."
    )
    session_ttl_s: float = Field(1_800.0, gt=0, description="A session idle this long is forgotten.")
    max_slates: int = Field(
        200_000,
        ge=1,
        description="Served slates remembered for events (oldest dropped: events then 404); ≈ 0.8 kB each.",
    )
    max_pages_per_session: int = Field(
        100, ge=1, description="Pages one session may scroll (then 409: start a new session)."
    )
    max_users: int = Field(200_000, ge=1, description="Users whose clicked items are remembered (LRU).")
    max_clicked_per_user: int = Field(1_000, ge=1, description="Clicked items remembered per user.")


class ArmConfig(BaseModel):
    """A variant of the feed: the served model ordered with these serving-time mitigation methods."""

    model_config = ConfigDict(extra="forbid")

    mitigation: MitigationConfig = Field(
        default_factory=MitigationConfig,
        description="Serving-time mitigation (only 'heuristic': every arm serves the same model).",
    )

    @field_validator("mitigation")
    @classmethod
    def _serving_only(cls, m: MitigationConfig) -> MitigationConfig:
        other = [n for n in m.names() if n != "heuristic"]
        if other:
            raise ValueError(
                f"method(s) {', '.join(other)} change training; the service serves one model to every arm, "
                "so an arm takes serving-time methods only (heuristic)"
            )
        for meth in m.methods:
            if getattr(meth, "score_space", "linear") != "linear":
                raise ValueError(
                    "the service multiplies the formula's score by f(c): use score_space 'linear'"
                )
        return m


class WorkerConfig(BaseModel):
    """Incremental training online (:mod:`intentrank.service.worker`): retrain on the events since the
    watermark every ``interval_s``, validate on the newest held-out ones, swap only if not worse."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run the worker thread in `intentrank serve`.")
    interval_s: float = Field(300.0, gt=0, description="Seconds between rounds.")
    directory: str | None = Field(
        None, description="Checkpoints and worker.json (None: a `worker` folder next to the store)."
    )
    min_new_events: int = Field(1_000, ge=1, description="Skip a round with fewer new events.")
    max_new_events: int = Field(
        500_000, ge=1, description="Most new event ids read in a round (older ones are skipped, said so in "
        "the decision): bounds the round's memory and the time it holds the store lock."
    )
    holdout_fraction: float = Field(
        0.2, ge=0.0, lt=1.0, description="Newest share of the new events held out for validation."
    )
    replay_events: int = Field(
        20_000, ge=0, description="Earlier rows trained on again each round (bounds the learner's memory)."
    )
    epochs: int = Field(1, ge=1, description="Passes over new + replayed events per round.")
    max_auc_drop: float = Field(
        0.0, ge=0.0, description="Swap only if the candidate's click AUC ≥ the served one's minus this."
    )
    max_heavy_share_rise: float = Field(
        0.02, ge=0.0, description="Swap only if the candidate's heavy-clickbait share of its top-20 ≤ the "
        "served one's plus this.",
    )
    probe_users: int = Field(16, ge=1, description="Users of the heavy-share probe (held-out events').")
    probe_candidates: int = Field(500, ge=1, description="Random live candidates per probe user.")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoint directories kept on disk.")
    keep_decisions: int = Field(50, ge=1, description="Decisions remembered for /v1/models.")
    torch_threads: int = Field(1, ge=1, description="Torch threads of a training round.")


class TrapConfig(BaseModel):
    """The trap detector (:mod:`intentrank.service.trap`): a new model version raising CTR significantly
    while conversions per user fall or stay flat."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Watch acknowledged events per model version and arm.")
    alpha: float = Field(0.01, gt=0, lt=0.5, description="1 - confidence level of the intervals.")
    min_users: int = Field(200, ge=2, description="Users a version needs (per arm) before it is compared.")
    min_ctr_lift: float = Field(0.05, ge=0, description="Smallest relative CTR rise that can alert.")
    flat_conversion_lift: float = Field(
        0.0, description="Conversions per user 'stay flat' when their relative change is at most this."
    )
    window_s: float = Field(86_400.0, gt=0, description="Users idle longer than this drop out (rolling).")
    max_users: int = Field(100_000, ge=2, description="Users kept per version and arm (LRU).")
    keep_versions: int = Field(4, ge=2, description="Model versions kept.")
    keep_alerts: int = Field(50, ge=1, description="Alerts remembered for /v1/models.")
    evaluate_every_s: float = Field(5.0, ge=0, description="Seconds between evaluations during ingestion.")


def _default_arms() -> dict[str, ArmConfig]:
    return {
        "unmitigated": ArmConfig(),
        "heuristic": ArmConfig(mitigation=MitigationConfig(methods=[HeuristicMethod()])),
    }


class ServerConfig(BaseModel):
    """The HTTP server under the app (uvicorn): event loop, HTTP parser, access log."""

    model_config = ConfigDict(extra="forbid")

    loop: Literal["uvloop", "asyncio", "auto"] = Field(
        "uvloop", description="Event loop: uvloop (libuv; less CPU per request), asyncio, or auto (uvloop "
        "when installed)."
    )
    http: Literal["httptools", "h11", "auto"] = Field(
        "httptools", description="HTTP/1.1 parser: httptools (C, llhttp), h11 (pure Python), or auto "
        "(httptools when installed)."
    )
    access_log: bool = Field(False, description="Log every request (uvicorn's access log; costs CPU).")
    opentelemetry: bool = Field(
        False, description="FastAPI's built-in OpenTelemetry spans and metrics (active only once a provider "
        "is configured; off: not even checked per request). Prometheus /metrics is served either way."
    )
    backlog: int = Field(2048, ge=1, description="Listen backlog (connections waiting to be accepted).")


class ServiceConfig(BaseModel):
    """Settings of ``intentrank serve``: the endless-feed HTTP service."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", min_length=1, description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65_535, description="TCP port (0 = any free port).")
    token: str | None = Field(
        None,
        min_length=16,
        description=f"Bearer token of write and admin endpoints; the environment variable {TOKEN_ENV} wins. "
        "None and no variable: `intentrank serve` makes a random one and prints it.",
    )
    store_path: str = Field(
        "service/events.duckdb", min_length=1, description="Event store the service appends its run to."
    )
    model_dir: str | None = Field(
        None, description="Saved ranker to serve (None: a quick model trained at start on a random log)."
    )
    bootstrap_users: int = Field(500, ge=1, description="Users of the random log a quick model learns from.")
    bootstrap_epochs: int = Field(1, ge=1, description="Epochs of the quick model.")
    slate_size: int = Field(20, ge=1, le=200, description="Items per slate (one page of the feed).")
    candidates: CandidatesConfig = Field(default_factory=CandidatesConfig)
    filtering: FilteringConfig = Field(default_factory=FilteringConfig)
    diversity: DiversityConfig = Field(default_factory=DiversityConfig)
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    stochastic: bool = Field(
        False,
        description="Plackett–Luce sampling of each slate (weights score^(1/T)) so propensities < 1 are "
        "logged for off-policy evaluation; False = top-S by score (propensity 1).",
    )
    temperature: float = Field(1.0, gt=0, description="T of the stochastic ordering.")
    arms: dict[str, ArmConfig] = Field(
        default_factory=_default_arms,
        min_length=1,
        description="Variants by name; each user gets one by a stable hash of user_id "
        "unless the request names one.",
    )
    arm_salt: int = Field(0, ge=0, description="Salt of the arm hash (a new salt reshuffles users).")
    limits: ServiceLimits = Field(default_factory=ServiceLimits)
    worker: WorkerConfig = Field(default_factory=WorkerConfig)
    trap: TrapConfig = Field(default_factory=TrapConfig)
    demo: bool = Field(
        False,
        description="The demo page at / may post events: it is given an events-only token (made at start; "
        "items and admin endpoints still need the real one). False: the page asks for the token.",
    )
    torch_threads: int = Field(1, ge=1, description="Torch threads per scoring call.")
    feed_threads: int = Field(
        2, ge=1, le=64, description="Threads that build slates (/v1/feed), each running the model with "
        "`torch_threads`; more requests wait in the event loop (about one per core: no GIL thrashing)."
    )
    server: ServerConfig = Field(default_factory=ServerConfig)
    seed: int = Field(0, ge=0, description="Seed of random retrieval and stochastic ordering.")
    simulated_clock: bool = Field(
        False,
        description="Take the time of /v1/feed, /v1/events and /v1/items from the request's "
        "X-Intentrank-Clock header (seconds since the service's epoch) and events' optional `ts` instead of "
        "the wall clock: a simulator driving the service runs on its own simulated clock (every request "
        "must then send it). False: wall time; the header and `ts` are refused.",
    )
    simulated_clock_tolerance_s: float = Field(
        86_400.0,
        ge=0,
        description="With simulated_clock: how far a request's time may lie behind the latest time seen "
        "(simulated sessions of a day run interleaved, not in time order); further back is refused (409).",
    )

    @field_validator("arms")
    @classmethod
    def _arm_names(cls, arms: dict[str, ArmConfig]) -> dict[str, ArmConfig]:
        bad = [n for n in arms if not re.match(ARM_NAME_PATTERN, n)]
        if bad:
            raise ValueError(f"arm names must match {ARM_NAME_PATTERN}; got {bad[0]!r}")
        return arms

    @model_validator(mode="after")
    def _enough_candidates(self) -> ServiceConfig:
        if self.candidates.total < self.slate_size:
            raise ValueError(
                f"candidates.total ({self.candidates.total}) is below slate_size ({self.slate_size})"
            )
        return self
