"""Typed configuration of the main job (the ``experiment`` section of the config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
"""

from __future__ import annotations

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
        "random",
        min_length=1,
        description="Simulator policy that generates the training log (stochastic, so the log covers the "
        "catalogue and carries propensities).",
    )
    log_users: int = Field(4_000, ge=10, description="Users in the logging phase.")
    log_days: int = Field(2, ge=2, description="Days in the logging phase; the last day is held out.")
    ab_users: int = Field(16_000, ge=40, description="Fresh users in the A/B phase, split over the arms.")
    ab_days: int = Field(3, ge=1, description="Days in the A/B phase.")
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="Significance level of the confidence intervals.")
    abtest: ABTestConfig = Field(
        default_factory=ABTestConfig, description="The A/B harness (intentrank abtest)."
    )
