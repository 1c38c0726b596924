"""Typed configuration of the main job (the ``experiment`` section of the config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ExperimentConfig(BaseModel):
    """Shape of the end-to-end run: a logging phase, training, then an A/B test on fresh users.

    The simulator's world (catalogue, behaviour) comes from the ``simulator`` section; only the numbers
    of users and days of each phase are set here.
    """

    model_config = ConfigDict(extra="forbid")

    out_dir: str = Field("runs/latest", min_length=1, description="Where events, model and results go.")
    logging_policy: str = Field(
        "explore",
        min_length=1,
        description="Simulator policy that generates the training log. The default 'explore' samples "
        "slates by Plackett–Luce over the click oracle's scores with 10 % uniform slates, and logs each "
        "impression's item-position and cascade propensities, the candidates, the slate id and the model "
        "version, so policies can be evaluated off-policy (`intentrank ope`).",
    )
    log_users: int = Field(4_000, ge=10, description="Users in the logging phase.")
    log_days: int = Field(2, ge=2, description="Days in the logging phase; the last day is held out.")
    ab_users: int = Field(16_000, ge=40, description="Fresh users in the A/B phase, split over the arms.")
    ab_days: int = Field(3, ge=1, description="Days in the A/B phase.")
    ab_window_min: float = Field(
        60.0,
        gt=0,
        le=1440,
        description="Living world: simulated minutes per window of the A/B phase (its models are frozen; "
        "the users' history is refreshed after every window). The log uses simulator.living.window_min.",
    )
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="Significance level of the confidence intervals.")


#: Metrics the tuner optimises and constraints may name: per-user means of the simulator's KPIs
#: (``heavy_cb`` = heavy-clickbait impressions per user), ``ctr`` and ``bounce_rate`` as ratios of sums.
TUNER_METRICS: tuple[str, ...] = ("heavy_cb", "clicks", "conversions", "time_spent", "ctr", "bounce_rate")
#: Methods the tuner can sweep, with their default search spaces: name -> {knob: (low, high, log)}.
TUNER_SPACES: dict[str, dict[str, tuple[float, float, bool]]] = {
    # heuristic post-processing f(c; l, h, d, w); l is searched as the gap h - l so that l < h always
    "heuristic": {
        "w": (0.0, 1.0, False), "h": (0.4, 0.95, False), "gap": (0.05, 0.5, False), "d": (0.01, 0.3, True)
    },
    "aux_loss": {"weight": (0.01, 3.0, True)},
    "downweight": {"strength": (0.05, 1.0, False), "threshold": (0.2, 0.8, False)},
    "rl_alignment": {"kl_bound": (0.005, 1.0, True)},
}


class SearchRange(BaseModel):
    """One knob's search range (uniform, or log-uniform with ``log``)."""

    model_config = ConfigDict(extra="forbid")

    low: float
    high: float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"low must be < high (got low={self.low}, high={self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0 (got {self.low})")
        return self


class TunerConfig(BaseModel):
    """Trade-off tuning of one mitigation method's knobs (``intentrank tune``).

    Every trial serves the production model with the method at the trial's knobs to the same tuning
    cohort (same users and simulator seed as the unmitigated baseline: common random numbers), and
    records heavy-clickbait impressions, clicks and conversions per user. optuna's multi-objective TPE
    search gives the Pareto frontier; the pick is the feasible trial (all ``constraint`` terms met,
    relative to the baseline on the cohort) with the most conversions, then clicks; a fresh A/B on new
    users then confirms it (or not).
    """

    model_config = ConfigDict(extra="forbid")

    method: str = Field("heuristic", description=f"Method to tune: one of {', '.join(TUNER_SPACES)}.")
    space: dict[str, SearchRange] | None = Field(
        None, description="Knob ranges (default: the method's built-in space, see TUNER_SPACES)."
    )
    fixed: dict[str, float | int | str] = Field(
        default_factory=dict, description="The method's other settings, held fixed in every trial."
    )
    trials: int = Field(24, ge=2, description="optuna trials (each one serving of the tuning cohort).")
    constraint: str = Field(
        "heavy_cb<=-50%,clicks>=-2%",
        description="Comma-separated terms METRIC<=X% or METRIC>=X%: relative change vs the unmitigated "
        f"baseline; metrics {', '.join(TUNER_METRICS)}.",
    )
    log_users: int = Field(2_000, ge=10, description="Users of the random log the baseline is trained on.")
    log_days: int = Field(2, ge=1, description="Days of that log.")
    users: int = Field(2_000, ge=10, description="Users of the tuning cohort (every trial serves them).")
    days: int = Field(1, ge=1, description="Days the tuning cohort is served.")
    confirm_users: int = Field(6_000, ge=40, description="Fresh users of the confirmation A/B (both arms).")
    confirm_days: int = Field(1, ge=1, description="Days of the confirmation A/B.")

    @model_validator(mode="after")
    def _known(self) -> TunerConfig:
        if self.method not in TUNER_SPACES:
            raise ValueError(f"unknown method {self.method!r}; tunable: {', '.join(TUNER_SPACES)}")
        if self.space is not None:
            known = set(TUNER_SPACES[self.method])
            bad = sorted(set(self.space) - known)
            if bad:
                raise ValueError(f"unknown knobs {bad} for {self.method}; knobs: {', '.join(sorted(known))}")
        parse_constraint(self.constraint)
        return self

    def search_space(self) -> dict[str, SearchRange]:
        """The knob ranges in force (configured, else the method's defaults)."""
        if self.space is not None:
            return dict(self.space)
        spaces = TUNER_SPACES[self.method].items()
        return {k: SearchRange(low=lo, high=hi, log=lg) for k, (lo, hi, lg) in spaces}


class ConstraintTerm(BaseModel):
    """``metric op value``: the relative change of ``metric`` vs the baseline must be ``op`` ``value``."""

    metric: str
    op: Literal["<=", ">="]
    value: float

    def holds(self, rel_change: float) -> bool:
        """Whether a relative change meets the term (NaN never does)."""
        if rel_change != rel_change:  # NaN
            return False
        return rel_change <= self.value if self.op == "<=" else rel_change >= self.value

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{100 * self.value:+g}%"


def parse_constraint(text: str) -> list[ConstraintTerm]:
    """Parse ``"heavy_cb<=-50%,clicks>=-2%"`` into terms; a clear ValueError on anything else."""
    terms: list[ConstraintTerm] = []
    for raw in (t.strip() for t in text.split(",")):
        if not raw:
            continue
        m = re.fullmatch(r"([a-z_]+)\s*(<=|>=)\s*([+-]?\d+(?:\.\d+)?)\s*%", raw)
        if m is None:
            raise ValueError(f"constraint term {raw!r} is not METRIC<=X% or METRIC>=X% (e.g. heavy_cb<=-50%)")
        metric, op, value = m.group(1), m.group(2), float(m.group(3)) / 100.0
        if metric not in TUNER_METRICS:
            raise ValueError(f"constraint metric {metric!r} unknown; metrics: {', '.join(TUNER_METRICS)}")
        terms.append(ConstraintTerm(metric=metric, op=op, value=value))  # type: ignore[arg-type]
    if not terms:
        raise ValueError("the constraint has no terms (e.g. heavy_cb<=-50%,clicks>=-2%)")
    return terms
