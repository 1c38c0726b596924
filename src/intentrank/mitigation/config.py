"""Typed configuration of the mitigation part (a section of the one intentrank config file).

A mitigation is a *list* of methods, each selected by name (the ``method`` field) with its own
hyperparameters, so methods compose (e.g. ``shallow_tower`` + ``heuristic``, the paper's proposed
next step). An empty list means "no mitigation". Only pydantic here: the config layer must import
without torch or other heavy libraries.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Names of the dense features a method may feed to the ranker's shallow tower (the clickbait score).
CLICKBAIT_FEATURE = "clickbait_score"


class _Method(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HeuristicMethod(_Method):
    """Heuristic post-processing: multiply the ranking score by the adjustable sigmoid f(c; h, l, d, w)."""

    method: Literal["heuristic"] = "heuristic"
    l: float = Field(0.4, ge=0.0, le=1.0, description="Lower control point: f's sigmoid part is 1-d at c=l.")  # noqa: E741 (the paper's name)
    h: float = Field(0.7, ge=0.0, le=1.0, description="Upper control point: f's sigmoid part is d at c=h.")
    d: float = Field(
        0.1,
        gt=0.0,
        lt=0.5,
        description="Relative drop at the control points; 0 < d < 0.5 (smaller = sharper).",
    )
    w: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight: the lowest value of f is 1-w (0 = no penalty)."
    )
    score_space: Literal["linear", "log"] = Field(
        "linear",
        description="'linear': scores are non-negative (probabilities, formula products) and are multiplied "
        "by f; 'log': scores are logits/log-scores and log f is added (orders like exp(score)·f).",
    )

    @model_validator(mode="after")
    def _l_below_h(self) -> HeuristicMethod:
        if not self.l < self.h:
            raise ValueError(f"l must be < h (got l={self.l}, h={self.h})")
        return self


class ShallowTowerMethod(_Method):
    """Debiasing via a shallow tower: c feeds a bias tower added in training, zeroed at serving."""

    method: Literal["shallow_tower"] = "shallow_tower"
    features: list[str] = Field(
        default_factory=lambda: [CLICKBAIT_FEATURE],
        min_length=1,
        description="Dense features into the tower.",
    )
    hidden: int = Field(
        0, ge=0, description="Hidden units of the tower (0 = one linear layer, as in the paper)."
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout on the tower's input (paper: 0.1).")
    heads: list[Literal["click", "dwell", "conversion"]] = Field(
        default_factory=lambda: ["click", "dwell", "conversion"],
        min_length=1,
        description="Heads the tower's logit is added to in training: all three (default; the paper and the "
        "ranker's built-in tower) or a subset, e.g. ['click'] (then the model is a HeadMaskedRanker).",
    )


class PlainFeatureMethod(_Method):
    """Baseline: c as a plain input feature of the main network (no debiasing; it lets the model use c)."""

    method: Literal["plain_feature"] = "plain_feature"
    feature: str = Field(CLICKBAIT_FEATURE, description="Dense feature fed to the ranker's main network.")


class AdversarialMethod(_Method):
    """Baseline: an auxiliary head predicts c from the shared representation through gradient reversal."""

    method: Literal["adversarial"] = "adversarial"
    weight: float = Field(1.0, ge=0.0, description="Weight of the auxiliary head's loss (≥ 0).")
    reversal: float = Field(
        1.0,
        ge=0.0,
        description="Gradient reversal strength: the encoder receives -reversal × the head's gradient.",
    )
    hidden: int = Field(32, ge=1, description="Hidden units of the auxiliary head.")
    feature: str = Field(CLICKBAIT_FEATURE, description="Batch key of the target c.")


class AuxLossMethod(_Method):
    """Auxiliary clickbait loss L_cb = -log(1 - p_click)·(2c - 1), weighted by λ_cb."""

    method: Literal["aux_loss"] = "aux_loss"
    weight: float = Field(0.5, ge=0.0, description="λ_cb, the weight of L_cb in the training loss (≥ 0).")
    feature: str = Field(CLICKBAIT_FEATURE, description="Batch key of c.")
    logit: str = Field("click", description="Model output key of the click logit.")


class DownweightMethod(_Method):
    """Variant of the auxiliary loss: down-weight training rows of clickbait items.

    Row weight = 1 - strength · clip((c - threshold) / (1 - threshold), 0, 1), applied to the clicked
    rows (default: lowers the learned p_click of clickbait) or to all rows (only lessens clickbait
    items' influence on shared parameters: per item, the weights cancel in the CTR estimate).
    """

    method: Literal["downweight"] = "downweight"
    strength: float = Field(
        0.5, ge=0.0, le=1.0, description="Weight cut for c = 1 (0 = off, 1 = drop the row)."
    )
    threshold: float = Field(0.5, ge=0.0, lt=1.0, description="c at which down-weighting starts.")
    rows: Literal["clicks", "all"] = Field(
        "clicks", description="Which rows of clickbait items to down-weight."
    )
    feature: str = Field(CLICKBAIT_FEATURE, description="Batch key of c.")


class RLAlignmentMethod(_Method):
    """Post-training RL alignment: actor–critic on sampled catalogue sets, KL-bounded to the frozen model."""

    method: Literal["rl_alignment"] = "rl_alignment"
    reward: Literal["neg_c", "neg_lcb"] = Field(
        "neg_c", description="Per-item reward: -c, or -L_cb evaluated at the frozen model's p_click."
    )
    sampling: Literal["uniform", "popularity", "clickbait"] = Field(
        "uniform", description="How item sets are drawn from the catalogue."
    )
    sampling_power: float = Field(
        1.0, ge=0.0, description="Exponent on the popularity / clickbait weights (0 = uniform)."
    )
    set_size: int = Field(100, ge=2, description="Items per sampled set (the actor's action space).")
    sets_per_step: int = Field(32, ge=1, description="Sampled sets per update.")
    actions_per_set: int = Field(8, ge=1, description="Items sampled from the actor's softmax per set.")
    estimator: Literal["sampled", "all_actions"] = Field(
        "all_actions",
        description="Policy-gradient estimator: 'sampled' draws actions_per_set items from the actor, uses "
        "the critic's advantage; 'all_actions' sums the advantage over every item of the set weighted by its "
        "probability (lower variance; the critic is then only a baseline).",
    )
    steps: int = Field(200, ge=1, description="Actor–critic updates.")
    lr: float = Field(1e-3, gt=0.0, description="Actor learning rate.")
    critic_lr: float = Field(1e-2, gt=0.0, description="Critic learning rate.")
    loss_weight: float = Field(1.0, ge=0.0, description="Weight of the policy-gradient term (strength).")
    kl_bound: float = Field(
        0.05, gt=0.0, description="Bound on the mean KL(actor ‖ frozen) over sets (nats)."
    )
    kl_coef: float = Field(1.0, ge=0.0, description="Initial KL coefficient (adapted during training).")
    kl_rate: float = Field(
        0.1, gt=0.0, le=1.0, description="Adaptation rate of the KL coefficient (proportional controller)."
    )
    temperature: float = Field(1.0, gt=0.0, description="Softmax temperature over the set's ranking logits.")
    eval_sets: int = Field(64, ge=1, description="Fresh sets for the final KL / top-k check.")
    top_k: int = Field(20, ge=1, description="Top-k used to report mean c of the served items.")


MethodConfig = Annotated[
    HeuristicMethod
    | ShallowTowerMethod
    | PlainFeatureMethod
    | AdversarialMethod
    | AuxLossMethod
    | DownweightMethod
    | RLAlignmentMethod,
    Field(discriminator="method"),
]

#: Every method name, in the order they are applied (training-time first, then alignment, then serving).
METHOD_NAMES: tuple[str, ...] = (
    "plain_feature",
    "shallow_tower",
    "adversarial",
    "aux_loss",
    "downweight",
    "rl_alignment",
    "heuristic",
)


class MitigationConfig(BaseModel):
    """Settings of the mitigation part: the methods to apply, composable (empty = none)."""

    model_config = ConfigDict(extra="forbid")

    methods: list[MethodConfig] = Field(
        default_factory=list,
        description="Mitigation methods, each selected by name in its 'method' field; they compose.",
    )

    @field_validator("methods")
    @classmethod
    def _compatible(cls, methods: list[_Method]) -> list[_Method]:
        names = [m.method for m in methods]  # type: ignore[attr-defined]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"each method may appear once; repeated: {', '.join(dup)}")
        if "shallow_tower" in names and "plain_feature" in names:
            tower = next(m for m in methods if m.method == "shallow_tower")  # type: ignore[attr-defined]
            feat = next(m for m in methods if m.method == "plain_feature")  # type: ignore[attr-defined]
            if feat.feature in tower.features:  # type: ignore[attr-defined]
                raise ValueError(
                    f"'{feat.feature}' cannot be both a shallow-tower feature and a plain input feature "
                    "(the tower's debiasing would be undone by the main network)"
                )
        return methods

    def names(self) -> list[str]:
        """Names of the configured methods, in configuration order."""
        return [m.method for m in self.methods]  # type: ignore[attr-defined]

    def get(self, name: str) -> _Method | None:
        """The configured method called ``name``, or None."""
        return next((m for m in self.methods if m.method == name), None)  # type: ignore[attr-defined]
