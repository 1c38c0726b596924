"""Typed configuration of the serving pipeline (retrieval → filtering → scoring → ordering).

Only pydantic here (the config layer). The feed service reads it as ``service.candidates`` (retrieval
quotas), ``service.filtering``, ``service.diversity`` and ``service.scoring``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class CandidatesConfig(BaseModel):
    """Retrieval: how many candidates each slate is ranked from, and from which sources.

    Sources are taken in this order, each leaving out what an earlier one took and what the filters
    exclude: ``fresh`` (newest live items), ``popular`` (most clicked), ``topic`` (newest items of the
    user's most clicked topics, split by their click counts), ``similar`` (items whose title embedding
    is closest to the mean embedding of the user's recently clicked titles), then a uniform random fill
    up to ``total``. A user without clicks gets no topic or similar candidates (random fills in).
    """

    model_config = ConfigDict(extra="forbid")

    total: int = Field(
        1_000, ge=1, description="Candidates ranked per slate (fewer if fewer items are live)."
    )
    fresh: int = Field(200, ge=0, description="Most recently published live items taken first.")
    popular: int = Field(
        200, ge=0, description="Most clicked live items (clicks acknowledged by the service)."
    )
    topic: int = Field(150, ge=0, description="Newest items of the user's most clicked topics.")
    topics_per_user: int = Field(3, ge=1, description="How many of the user's top topics feed `topic`.")
    similar: int = Field(
        150, ge=0, description="Items closest to the user's recent clicks by title embedding (cosine)."
    )
    profile_clicks: int = Field(
        20, ge=1, description="Most recent clicked items per user forming the embedding profile."
    )

    @model_validator(mode="after")
    def _sources_fit(self) -> CandidatesConfig:
        quota = self.fresh + self.popular + self.topic + self.similar
        if quota > self.total:
            raise ValueError(
                f"fresh + popular + topic + similar ({self.fresh} + {self.popular} + {self.topic} + "
                f"{self.similar}) exceeds total ({self.total})"
            )
        return self


class FilteringConfig(BaseModel):
    """Filtering: what a user is never shown. Items shown earlier in the session, items the user
    clicked and retired (blocked) items are always left out; these add time-bounded rules."""

    model_config = ConfigDict(extra="forbid")

    recent_shown_s: float = Field(
        3_600.0, ge=0, description="Items shown to the user in any session within this many seconds "
        "are left out (0 = only the current session's)."
    )
    max_recent_per_user: int = Field(
        2_000, ge=0, description="Most recently shown items remembered per user (bounds memory)."
    )
    max_item_age_s: float | None = Field(
        None, gt=0, description="Items published longer ago than this are expired (None = never)."
    )


class DiversityConfig(BaseModel):
    """Optional diversity of a slate (deterministic ordering only: a stochastic slate keeps its exact
    Plackett–Luce propensities)."""

    model_config = ConfigDict(extra="forbid")

    max_per_topic: int | None = Field(
        None, ge=1, description="At most this many items of one topic per slate (None = no cap); "
        "applied greedily down the score order, topping up from the best capped items if too few."
    )


class ScoringConfig(BaseModel):
    """Scoring: the multi-task model on the candidates."""

    model_config = ConfigDict(extra="forbid")

    fast: bool = Field(
        True, description="Item-side model inputs precomputed per (model, catalogue) and only the "
        "request-side ones built per request (same scores; off: the generic feature-row path)."
    )
    split: bool = Field(
        True, description="Fast path: the item side of the model's first linear maps precomputed per "
        "(model, catalogue) too (same scores to float rounding; DCN backbones; n_items × ~400 floats per "
        "model)."
    )
    prerank: int = Field(
        0, ge=0, description="Two-stage scoring: rank all candidates by the model's user-independent "
        "score (cached per model and catalogue) and run the model per user on `prerank` of them (up to "
        "half from the topic and similar sources, the rest the best overall) (0 = every candidate: exact)."
    )
