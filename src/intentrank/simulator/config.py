"""Typed configuration of the simulator: the behaviour model's parameters and the run's shape.

Only pydantic here: the config layer must import without torch or other heavy libraries.
Every equation that uses these is written out in ``docs/simulator.md``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, model_validator

#: Parameters (a, b) of a Beta distribution, both > 0.
BetaParams = tuple[PositiveFloat, PositiveFloat]


class CatalogueConfig(BaseModel):
    """How the item catalogue is built from the shipped headlines."""

    model_config = ConfigDict(extra="forbid")

    stop_clickbait_positive_beta: BetaParams = Field(
        (6.0, 2.5),
        description="Beta(a, b) of true clickbaitiness for Stop-Clickbait titles labelled clickbait.",
    )
    stop_clickbait_negative_beta: BetaParams = Field(
        (1.2, 8.0),
        description="Beta(a, b) of true clickbaitiness for Stop-Clickbait titles labelled non-clickbait.",
    )
    webis_noise_sd: float = Field(
        0.05,
        ge=0,
        le=0.5,
        description="SD of Gaussian noise added to Webis-17 truth_mean (clipped to [0, 1]).",
    )
    quality_intercept: float = Field(0.8, description="Quality logit at true clickbait 0.")
    quality_clickbait_slope: float = Field(
        2.5, ge=0, description="How much true clickbait lowers the quality logit (per unit of clickbait)."
    )
    quality_noise_sd: float = Field(
        1.2,
        ge=0,
        description="SD of the item's own quality logit noise (spread: some clickbait keeps readers).",
    )
    publish_window_days: float = Field(
        7.0, gt=0, description="Items are published uniformly in the last N days."
    )
    cache_dir: str | None = Field(
        None,
        description="Where scored catalogues are cached (default: $XDG_CACHE_HOME/intentrank or ~/.cache).",
    )


class UserConfig(BaseModel):
    """The user population's hidden traits."""

    model_config = ConfigDict(extra="forbid")

    interest_concentration: float = Field(
        0.3, gt=0, description="Dirichlet concentration of topic interests (small = few favourite topics)."
    )
    susceptibility_beta: BetaParams = Field(
        (2.0, 2.0), description="Beta(a, b) of susceptibility to curiosity gaps s_u."
    )
    trust_beta: BetaParams = Field((6.0, 3.0), description="Beta(a, b) of initial trust τ_u.")
    conversion_offset_sd: float = Field(
        0.5, ge=0, description="SD of the user's conversion-propensity logit offset."
    )
    activity_offset_sd: float = Field(
        0.5, ge=0, description="SD of the user's return-propensity logit offset."
    )


class BehaviourConfig(BaseModel):
    """Parameters of clicks, reads, bounces, conversions, session length, trust and returns."""

    model_config = ConfigDict(extra="forbid")

    position_decay: float = Field(0.7, ge=0, description="η: P(examine position p) = (1 + p)^-η.")
    click_intercept: float = Field(-2.6, description="α0: click logit intercept.")
    click_interest: float = Field(2.2, ge=0, description="α_I: click logit per unit of topic interest.")
    click_curiosity: float = Field(
        3.5, ge=0, description="α_c: click logit per unit of susceptibility × true clickbait."
    )
    click_trust: float = Field(0.8, ge=0, description="α_τ: click logit per unit of (trust - 0.5).")
    bounce_intercept: float = Field(-1.5, description="β0: bounce logit intercept.")
    bounce_clickbait: float = Field(2.5, ge=0, description="β_b: bounce logit per unit of true clickbait.")
    bounce_quality: float = Field(2.5, ge=0, description="β_q: bounce logit decrease per unit of quality.")
    bounce_dwell_max_s: float = Field(
        8.0, gt=1, description="A bounce dwells uniformly in [1, this] seconds."
    )
    dwell_intercept: float = Field(3.0, description="δ0: mean log-seconds of a read.")
    dwell_quality_interest: float = Field(
        1.6, ge=0, description="δ_qI: log-seconds per unit of quality × interest."
    )
    dwell_quality: float = Field(0.6, ge=0, description="δ_q: log-seconds per unit of quality.")
    dwell_sd: float = Field(0.6, gt=0, description="σ_d: SD of log-seconds of a read.")
    satisfied_dwell_s: float = Field(
        30.0, gt=0, description="A read of at least this long satisfies the user."
    )
    conversion_intercept: float = Field(-4.0, description="γ0: conversion logit intercept (given a read).")
    conversion_quality_interest: float = Field(
        3.0, ge=0, description="γ_qI: conversion logit per unit of quality × interest."
    )
    trust_bounce_loss: float = Field(0.025, ge=0, le=1, description="ρ_b: trust lost per bounce.")
    trust_satisfied_gain: float = Field(
        0.015, ge=0, le=1, description="ρ_s: trust gained per satisfying read."
    )
    trust_recovery: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Per day, trust moves this fraction of the way back to its initial value.",
    )
    continue_intercept: float = Field(-1.0, description="λ0: logit of scrolling to the next slate.")
    continue_trust: float = Field(2.5, ge=0, description="λ_τ: continue logit per unit of trust.")
    continue_satisfied: float = Field(
        0.3, ge=0, description="λ_s: continue logit per satisfying read in the slate."
    )
    continue_bounce: float = Field(
        0.4, ge=0, description="λ_b: continue logit decrease per bounce in the slate."
    )
    return_intercept: float = Field(-1.5, description="ω0: logit of returning on a later day.")
    return_trust: float = Field(3.0, ge=0, description="ω_τ: return logit per unit of trust.")
    scroll_s_per_item: float = Field(
        1.5, ge=0, description="Seconds of scrolling per impression (for timestamps)."
    )


class IntentOracleConfig(BaseModel):
    """What the intent oracle counts as the value of an impression (its 'true expected satisfaction')."""

    model_config = ConfigDict(extra="forbid")

    minutes_weight: float = Field(1.0, ge=0, description="Value per expected minute read.")
    conversion_value: float = Field(5.0, ge=0, description="Value of a conversion.")
    bounce_cost: float = Field(1.0, ge=0, description="Cost of a bounce.")


class LivingConfig(BaseModel):
    """The living world: items published through the simulated time, live for a while, then retired.

    Items arrive as a Poisson process of rate ``live_items / lifetime_h`` per hour, each lives an
    Exponential(mean ``lifetime_h``) time, so about ``live_items`` are live at any moment (the run starts
    in that steady state). Interest in an item decays with its age a (hours):
    ``I_eff = I · 2^(−a / freshness_half_life_h)``. Time advances in windows of ``window_min`` simulated
    minutes: sessions starting in a window are served by the policy (model version) current at the window's
    start, retrieve from the items live then, and the window's events are handed on together at its end
    (where an online learner may update). Equations: docs/simulator.md, "The living world".
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="Simulate the living world in the main job (False: the static catalogue)."
    )
    live_items: int = Field(3_000, ge=1, description="Items live at any moment (steady state).")
    lifetime_h: float = Field(36.0, gt=0, description="Mean lifetime of an item, hours (exponential).")
    freshness_half_life_h: float = Field(
        24.0, gt=0, description="Interest in an item halves every this many hours of its age."
    )
    window_min: float = Field(
        5.0, gt=0, le=1440, description="Simulated minutes per window (the online learner's cadence)."
    )
    update_every_windows: int = Field(
        1, ge=1, description="The loop's learners update after every this many windows."
    )


class SimulatorConfig(BaseModel):
    """Settings of the simulator part: world, behaviour and run shape."""

    model_config = ConfigDict(extra="forbid")

    users: int = Field(20_000, ge=1, description="Number of simulated users.")
    days: int = Field(7, ge=1, description="Number of simulated days.")
    slate_size: int = Field(20, ge=1, le=200, description="Items per slate (one scroll page).")
    candidates: int = Field(
        100, ge=1, le=5000, description="Candidates retrieved per slate (the policy ranks these)."
    )
    max_slates: int = Field(10, ge=1, le=1000, description="Most slates a session can scroll.")
    batch_users: int = Field(
        65_536, ge=1, description="Users advanced together per vectorised step (bounds memory)."
    )
    flush_rows: int = Field(
        2_000_000, ge=1_000, description="Events handed to the sink in batches of ~this many rows."
    )
    catalogue: CatalogueConfig = Field(default_factory=CatalogueConfig)
    population: UserConfig = Field(default_factory=UserConfig)
    behaviour: BehaviourConfig = Field(default_factory=BehaviourConfig)
    intent_oracle: IntentOracleConfig = Field(default_factory=IntentOracleConfig)
    living: LivingConfig = Field(default_factory=LivingConfig)

    @model_validator(mode="after")
    def _slate_fits_candidates(self) -> SimulatorConfig:
        if self.candidates < self.slate_size:
            raise ValueError(
                f"candidates ({self.candidates}) must be at least slate_size ({self.slate_size})"
            )
        return self
