"""Typed configuration of the main job (the ``experiment`` section of the config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    ab_window_min: float = Field(
        60.0,
        gt=0,
        le=1440,
        description="Living world: simulated minutes per window of the A/B phase (its models are frozen; "
        "the users' history is refreshed after every window). The log uses simulator.living.window_min.",
    )
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="Significance level of the confidence intervals.")
