"""Typed configuration of the main job (the ``experiment`` section of the config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from intentrank.mitigation.config import METHOD_NAMES, MethodConfig
from intentrank.ranking.config import FormulaConfig

# -- the A/B harness (``intentrank abtest``) ------------------------------------------------------------
#: Training targets of an arm's model: the ranker section's labels as they are ('multitask': the
#: production multi-task model), raw clicks ('click'), or downstream signals ('downstream': successful
#: long clicks as the click task's positives, conversions weighted up).
TARGETS = ("multitask", "click", "downstream")


class ArmConfig(BaseModel):
    """One arm: either a learned ranker (recipe: target, ranker overrides, mitigation, formula) or a
    reference policy from the simulator's registry (``policy``), optionally post-processed."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", description="Arm name (unique)."
    )
    policy: str | None = Field(
        None,
        description="A registry policy instead of a learned ranker (reference arms: truth_formula, "
        "ctr_oracle, ...); None = the learned multi-task ranker.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="Parameters of the registry policy (e.g. a, b, g)."
    )
    target: Literal["multitask", "click", "downstream"] = Field(
        "multitask",
        description="Training target of a learned arm: 'multitask' (the ranker section's labels), 'click' "
        "(raw clicks, no extra weights) or 'downstream' (long clicks as positives, conversions weighted up).",
    )
    ranker: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides of the ranker section for this arm (architecture, features, training), "
        "deep-merged over the config's ranker section.",
    )
    mitigation: list[MethodConfig] = Field(
        default_factory=list,
        description="Mitigation methods by name (or mappings with their parameters); they compose.",
    )
    formula: FormulaConfig | None = Field(
        None, description="Ranking formula p_click^a · time^b · p_conv^g (default: the ranker section's)."
    )
    share: float | None = Field(
        None, gt=0.0, le=1.0, description="Traffic share (None: an equal part of what the others leave)."
    )
    learner: Literal["own", "shared", "frozen"] = Field(
        "own",
        description="'own': the arm's model learns from the arm's own traffic in the loop; 'shared': one "
        "learner per recipe on all the experiment's traffic; 'frozen': the initial model serves throughout.",
    )

    @field_validator("mitigation", mode="before")
    @classmethod
    def _method_names(cls, v: Any) -> Any:
        if not isinstance(v, list):
            return v
        out = []
        for i, m in enumerate(v):
            name = m if isinstance(m, str) else (m.get("method") if isinstance(m, dict) else None)
            if name not in METHOD_NAMES:
                raise ValueError(
                    f"item {i}: unknown mitigation method {name!r}; known: {', '.join(METHOD_NAMES)}"
                )
            out.append({"method": m} if isinstance(m, str) else m)
        names = [m["method"] if isinstance(m, dict) else m for m in out]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"each method may appear once; repeated: {', '.join(dup)}")
        return out

    @model_validator(mode="after")
    def _reference_arms_serve_only(self) -> ArmConfig:
        if self.policy is not None:
            trained = [m.method for m in self.mitigation if m.method != "heuristic"]  # type: ignore[attr-defined]
            if trained:
                raise ValueError(
                    f"arm {self.name!r}: a registry policy ({self.policy!r}) has no model to train; "
                    f"only 'heuristic' post-processing applies, not {trained}"
                )
            if self.ranker:
                raise ValueError(f"arm {self.name!r}: 'ranker' overrides need a learned arm (no 'policy')")
        elif self.params:
            raise ValueError(f"arm {self.name!r}: 'params' are for a registry policy ('policy: NAME')")
        return self

    def method_names(self) -> list[str]:
        """The arm's mitigation methods, in configuration order."""
        return [m.method for m in self.mitigation]  # type: ignore[attr-defined]


class ABTestConfig(BaseModel):
    """An A/B(/n) experiment in the closed loop: named arms, users split by a stable hash of (experiment
    name, user id), an A/A copy of control, every arm's model learning from its own traffic.

    A logging phase of ``log_days`` under the uniformly random policy on the same users gives the initial
    training log of every learned arm and each user's pre-period behaviour (CUPED covariates); then
    ``days`` of the loop. Docs: docs/experiments.md.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field("experiment", min_length=1, description="Experiment name (salts the user hash).")
    control: str = Field("control", min_length=1, description="Name of the control arm.")
    aa: bool = Field(True, description="Add an A/A copy of control named '<control>_aa' (same share).")
    arms: list[ArmConfig] = Field(default_factory=list, description="The arms (control among them).")
    users: int = Field(4_000, ge=2, description="Users in the experiment (the loop's world).")
    days: int = Field(2, ge=1, description="Days of the loop.")
    log_days: int = Field(1, ge=1, description="Days of the random logging phase before (the pre-period).")
    window_min: float = Field(
        360.0, gt=0, le=1440, description="Simulated minutes per loop window (overrides simulator.living)."
    )
    live_items: int = Field(1_500, ge=1, description="Items live at any moment (overrides simulator.living).")
    update_every: int = Field(1, ge=1, description="Windows between two updates of the online learners.")
    replay_events: int = Field(5_000, ge=0, description="Recent rows replayed with each online update.")
    rl_every: int = Field(
        1,
        ge=1,
        description="RL alignment runs after every this many updates of its arm's model (1: after each); "
        "in between, the last aligned copy keeps serving.",
    )
    rl_steps: int | None = Field(
        None, ge=1, description="Actor-critic steps of each in-loop alignment (None: the method's 'steps')."
    )
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="Significance level.")
    correction: Literal["holm", "bh"] = Field(
        "holm", description="Multiple-comparison correction over metrics x arms."
    )
    cuped: bool = Field(True, description="CUPED with the logging phase as the pre-period.")
    calibration_splits: int = Field(
        200, ge=0, description="Random re-splits of control + A/A users for the A/A false-positive rate."
    )
    mde_warn: float = Field(
        0.2,
        gt=0.0,
        description="Warn before running when the expected relative MDE of clicks per user in the smallest "
        "arm exceeds this (too few users for any power).",
    )
    initial_epochs: int = Field(1, ge=1, description="Epochs of each arm's first training on the log.")
    initial_users: int | None = Field(
        None,
        ge=1,
        description="Train the initial models on the logged rows of this many random users (None: all); "
        "bounds the cost of the first training, which every distinct recipe pays.",
    )
    online_epochs: int = Field(1, ge=1, description="Epochs of each online update.")

    @model_validator(mode="after")
    def _arms_consistent(self) -> ABTestConfig:
        names = [a.name for a in self.arms]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"arm names repeat: {', '.join(dup)}")
        if self.arms and self.control not in names:
            raise ValueError(f"control {self.control!r} is not an arm; arms: {', '.join(names)}")
        aa = f"{self.control}_aa"
        if self.aa and aa in names:
            raise ValueError(f"arm {aa!r} is added automatically as the A/A copy (aa: true); rename yours")
        given = [a.share for a in self.arms if a.share is not None]
        ctrl = next((a for a in self.arms if a.name == self.control), None)
        total = sum(given) + (ctrl.share if self.aa and ctrl is not None and ctrl.share else 0.0)
        n_free = sum(a.share is None for a in self.arms) + (
            1 if self.aa and ctrl is not None and ctrl.share is None else 0
        )
        if total > 1.0 + 1e-9:
            raise ValueError(
                f"traffic shares add to {total:.1%} (over 100%; the A/A copy takes control's share)"
            )
        if n_free == 0 and self.arms and abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"traffic shares add to {total:.1%}; they must add to 100% (or leave some empty)"
            )
        if n_free and total >= 1.0 - 1e-9:
            raise ValueError(
                f"traffic shares already add to {total:.1%}: nothing is left for the arms without a share"
            )
        return self


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
    log_days: int = Field(
        3,
        ge=2,
        description="Days in the logging phase; the last day is held out (3: the model trains on 2 days, the "
        "second with populated user and item history).",
    )
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
    abtest: ABTestConfig = Field(
        default_factory=ABTestConfig, description="The A/B harness (intentrank abtest)."
    )


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
    relative to the baseline on the cohort) with the most conversions, then clicks — by default at the
    pessimistic end of each trial's paired CI, then re-checked on a holdout cohort; a fresh A/B on new
    users then confirms it (or not), with ``confirm_margin`` as the tolerance on the CI.
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
    pick_by: Literal["ci", "point"] = Field(
        "ci",
        description="ci: a trial is eligible when every constraint term holds at its one-sided "
        "pick_confidence bound (paired with the baseline on the same users; guards against the winner's "
        "curse); point: on the point estimates.",
    )
    pick_confidence: float = Field(
        0.9, gt=0.5, lt=1.0, description="One-sided confidence of the bound a trial must meet the "
        "constraint at (pick_by: ci), on the tuning cohort and again on the holdout.",
    )  # fmt: skip
    holdout_users: int = Field(
        2_000, ge=0, description="Users of the holdout cohort the top eligible trials are re-served to "
        "before the pick (another seed; 0: no holdout stage, the pick is the best eligible trial).",
    )  # fmt: skip
    holdout_candidates: int = Field(3, ge=1, description="Eligible trials re-evaluated on the holdout.")
    confirm_margin: float = Field(
        0.02, ge=0.0, lt=1.0, description="The confirmation holds when every term holds on the point "
        "estimate and its 95 % CI excludes a violation by more than this (relative change, 0.02 = 2 points).",
    )  # fmt: skip

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
