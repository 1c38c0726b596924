"""Typed configuration of the ranking part (a section of the one intentrank config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
The feature spec lives here too, so one file fixes what the model reads and how it is encoded;
a checkpoint stores it and refuses to load under a different one.
"""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Columns the feature encoder derives from every event frame (``ranking.features.derive_event_columns``),
#: name -> (DuckDB-style type, meaning), in the shape of ``store.schema.IMPRESSION_COLUMNS``.
DERIVED_COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "hour": ("BIGINT", "hour of day 0..23 of the event, from ts"),
    "item_age_h": ("DOUBLE", "hours between the item's publish_ts and the event's ts, >= 0"),
}

#: History columns (``ranking.history``): the user's and the candidate item's past before the request, point
#: in time (user, user × topic, item counts and rates; the item's come from all users' events).
#: Training computes them from the logged frame (history strictly before each impression's session),
#: serving from an incrementally updated ``UserHistory``; both give the same values.
HISTORY_COLUMNS: Final[dict[str, tuple[str, str]]] = {
    "user_topic_clicks": ("DOUBLE", "the user's past clicks on items of the candidate's topic"),
    "user_topic_reads": ("DOUBLE", "past successful reads of the topic (click, not bounced, long dwell)"),
    "user_clicks": ("DOUBLE", "the user's past clicks"),
    "user_impressions": ("DOUBLE", "the user's past impressions"),
    "user_ctr": ("DOUBLE", "smoothed past click rate (clicks + 1) / (impressions + 10)"),
    "hours_since_last_click": ("DOUBLE", "hours since the user's last click, capped at 720 (none: 720)"),
    "user_active_days": ("DOUBLE", "distinct days with at least one impression (activity, not trust)"),
    "user_topic_impressions": ("DOUBLE", "the user's past impressions of items of the candidate's topic"),
    "user_topic_ctr": (
        "DOUBLE",
        "the user's click rate on the topic, shrunk toward their own: (topic clicks + 5·user_ctr) / "
        "(topic impressions + 5)",
    ),
    "item_impressions": ("DOUBLE", "the candidate item's past impressions (all users)"),
    "item_ctr": ("DOUBLE", "the item's smoothed past click rate (clicks + 1) / (impressions + 20)"),
    "item_read_rate": ("DOUBLE", "the item's successful reads per click: (reads + 1) / (clicks + 2)"),
    "item_bounce_rate": ("DOUBLE", "the item's bounces per click, smoothed (bounces + 0.5) / (clicks + 2)"),
    "item_mean_log_dwell": (
        "DOUBLE",
        "mean log1p dwell seconds of the item's past clicks, shrunk to 3: (Σ log1p dwell + 6) / (clicks + 2)",
    ),
    "user_topic_read_rate": (
        "DOUBLE",
        "the user's successful reads per impression of the topic, shrunk toward half their click rate: "
        "(topic reads + 5·user_ctr) / (topic impressions + 10) — interest without the curiosity clicks",
    ),
    "user_source_impressions": (
        "DOUBLE",
        "the user's past impressions of items of the candidate's source (outlet); 0 while the candidate "
        "has no past impression (its source is learned from its events)",
    ),
    "user_source_ctr": (
        "DOUBLE",
        "the user's click rate on the candidate's source, shrunk toward their own: (source clicks + "
        "5·user_ctr) / (source impressions + 5)",
    ),
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CategoricalFeature(_Section):
    """An id-like input embedded through a (hashed) table, so ids never seen in training still work."""

    name: str = Field(description="Feature name (key in the batch dict).")
    column: str | None = Field(None, description="Source column of the event frame; default: the name.")
    buckets: int = Field(ge=1, le=50_000_000, description="Rows of this feature's embedding table.")
    hashed: bool = Field(
        True,
        description="True: bucket = stable hash(value) mod buckets (any id, strings too); "
        "False: small non-negative integers (position, hour) used directly, clipped to buckets-1.",
    )

    @property
    def source(self) -> str:
        """Column the feature is read from."""
        return self.column or self.name


class TextFeature(_Section):
    """A text column (the title) as hashed word and character n-grams, averaged by a learned
    ``nn.EmbeddingBag`` inside the model: a small content encoder that also works for new items."""

    name: str = Field(description="Feature name (key in the batch dict).")
    column: str | None = Field(None, description="Source text column; default: the name.")
    buckets: int = Field(
        100_003, ge=2, le=50_000_000, description="Rows of the n-gram table (row 0 is padding)."
    )
    max_tokens: int = Field(64, ge=1, le=1024, description="Most n-grams kept per text (first ones).")
    word_bigrams: bool = Field(True, description="Add word bigrams to the word unigrams.")
    char_ngrams: int = Field(
        3, ge=0, le=8, description="Character n-grams of each word (with boundary marks); 0 = none."
    )

    @property
    def source(self) -> str:
        """Column the feature is read from."""
        return self.column or self.name


class DenseFeature(_Section):
    """A numeric input, optionally log1p-transformed and scaled (value = transform(x) * scale)."""

    name: str = Field(description="Feature name (key in the batch dict).")
    column: str | None = Field(None, description="Source column of the event frame; default: the name.")
    transform: Literal["none", "log1p"] = Field("none", description="Transform applied before scaling.")
    scale: float = Field(1.0, description="Multiplier applied after the transform.")
    to_main: bool = Field(
        True, description="False: encoded (e.g. for the shallow tower) but not fed to the main network."
    )

    @property
    def source(self) -> str:
        """Column the feature is read from."""
        return self.column or self.name


def _default_categorical() -> list[CategoricalFeature]:
    return [
        CategoricalFeature(name="user_id", buckets=200_003),
        CategoricalFeature(name="item_id", buckets=100_003),
        CategoricalFeature(name="topic", buckets=1_009),
        CategoricalFeature(name="source", buckets=1_009),
        CategoricalFeature(name="position", buckets=64, hashed=False),
        CategoricalFeature(name="slate_index", buckets=64, hashed=False),
        CategoricalFeature(name="hour", buckets=24, hashed=False),
    ]


def _default_dense() -> list[DenseFeature]:
    # no clickbait_score: the unmitigated baseline must not see c (a mitigation method adds it)
    return [
        DenseFeature(name="length", transform="log1p", scale=0.3),
        DenseFeature(name="item_age_h", transform="log1p", scale=0.2),
        DenseFeature(name="user_topic_clicks", transform="log1p"),
        DenseFeature(name="user_topic_reads", transform="log1p"),
        DenseFeature(name="user_clicks", transform="log1p", scale=0.5),
        DenseFeature(name="user_impressions", transform="log1p", scale=0.2),
        DenseFeature(name="user_ctr", scale=5.0),
        DenseFeature(name="hours_since_last_click", transform="log1p", scale=0.2),
        DenseFeature(name="user_active_days", transform="log1p", scale=0.5),
        DenseFeature(name="user_topic_impressions", transform="log1p", scale=0.3),
        DenseFeature(name="user_topic_ctr", scale=5.0),
        DenseFeature(name="item_impressions", transform="log1p", scale=0.2),
        DenseFeature(name="item_ctr", scale=5.0),
        DenseFeature(name="item_read_rate"),
        DenseFeature(name="item_bounce_rate"),
        DenseFeature(name="item_mean_log_dwell", scale=0.3),
    ]


def default_feature_spec() -> FeatureSpecConfig:
    """The ranker's default spec: ids, context, item content (title n-grams, source, topic, age, length)
    and the user's history; not the clickbait score (a mitigation method adds it)."""
    return FeatureSpecConfig(text=[TextFeature(name="title")])


class FeatureSpecConfig(_Section):
    """What the model reads. Derived event columns available: ``hour`` (time of day from ``ts``),
    ``item_age_h`` (hours since ``publish_ts``) and the user-history columns of
    :data:`HISTORY_COLUMNS` (the user's past before the request). A spec built without ``text`` has
    no text feature; the ranker's default (:func:`default_feature_spec`) reads the title."""

    categorical: list[CategoricalFeature] = Field(default_factory=_default_categorical)
    dense: list[DenseFeature] = Field(default_factory=_default_dense)
    text: list[TextFeature] = Field(
        default_factory=list,
        description="Text columns through the learned n-gram encoder (the ranker's default: the title).",
    )
    embedding_dim: int = Field(16, ge=1, le=512, description="Embedding width of every categorical feature.")

    @model_validator(mode="after")
    def _unique_names(self) -> FeatureSpecConfig:
        names = [f.name for f in self.categorical] + [f.name for f in self.dense]
        names += [f.name for f in self.text]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"feature names must be unique, repeated: {dup}")
        if not names:
            raise ValueError("the feature spec needs at least one feature")
        return self


class CrossConfig(_Section):
    """DCN-V2 cross network."""

    kind: Literal["full", "low_rank", "mixture"] = Field(
        "mixture", description="full-rank W, low-rank U·Vᵀ, or a gated mixture of low-rank experts."
    )
    layers: int = Field(3, ge=1, le=16, description="Number of stacked cross layers.")
    rank: int = Field(32, ge=1, description="Rank r of U, V (low_rank and mixture).")
    experts: int = Field(4, ge=1, le=64, description="Experts per cross layer (mixture).")
    activation: Literal["identity", "tanh", "relu"] = Field(
        "tanh", description="Non-linearity in the low-rank space (mixture)."
    )


class MMoEConfig(_Section):
    """Multi-gate mixture of experts: one softmax gate per task over shared expert MLPs."""

    experts: int = Field(8, ge=1, le=64)
    expert_hidden: list[int] = Field(default_factory=lambda: [128, 64], min_length=1)


class ModelConfig(_Section):
    """Backbone and task heads of the multi-task ranker."""

    backbone: Literal["dcn_parallel", "dcn_stacked", "mmoe"] = Field(
        "dcn_parallel", description="DCN-V2 with cross and deep parts side by side or stacked, or MMoE."
    )
    cross: CrossConfig = Field(default_factory=CrossConfig)
    mlp_hidden: list[int] = Field(default_factory=lambda: [256, 128], description="Deep part of DCN-V2.")
    mmoe: MMoEConfig = Field(default_factory=MMoEConfig)
    tower_hidden: list[int] = Field(
        default_factory=lambda: [32], description="Hidden sizes of each task tower."
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batch_norm: bool = Field(
        False, description="BatchNorm after each hidden layer of the MLPs, experts and towers."
    )
    esmm: bool = Field(
        True,
        description="ESMM: train pCTCVR = pCTR·pCVR over all impressions instead of pCVR on clicks only.",
    )
    pad_input_to: int = Field(
        8,
        ge=1,
        le=64,
        description="Pad x0 with constant-zero columns to a multiple of this width (1 = off). Same"
        " function (zero columns change no output and get no gradient); CPU GEMMs on unaligned widths"
        " such as 429 run up to ~1.7x slower (docs/ranking.md, Benchmarks).",
    )


class ShallowTowerConfig(_Section):
    """Bias tower: its logit is added to every head in training; its inputs are zeroed at serving."""

    features: list[str] = Field(default_factory=lambda: ["clickbait_score"], min_length=1)
    hidden: int = Field(8, ge=0, description="Hidden width (0 = a single linear layer).")
    dropout: float = Field(0.1, ge=0.0, lt=1.0)


class TaskWeights(_Section):
    """Loss weight of each task."""

    click: float = Field(1.0, ge=0.0)
    dwell: float = Field(0.5, ge=0.0)
    conversion: float = Field(1.0, ge=0.0)


class LabelConfig(_Section):
    """How outcomes become labels and row weights (downstream signals, not raw clicks)."""

    long_click_threshold_s: float = Field(
        30.0, ge=0.0, description="A click with dwell ≥ this is a long click."
    )
    click_target: Literal["click", "long_click"] = Field(
        "click",
        description="Positive of the click task: any click, or a successful click (long and not bounced).",
    )
    long_click_weight: float = Field(0.0, ge=0.0, description="Extra row weight of a long click.")
    conversion_weight: float = Field(0.0, ge=0.0, description="Extra row weight of a conversion.")
    bounce_weight: float = Field(1.0, ge=0.0, description="Row weight multiplier of a bounced click.")
    dwell_loss: Literal["log_mse", "poisson"] = Field(
        "log_mse",
        description="Time head given a click: 'log_mse' = squared error of log1p seconds (predicts the mean"
        " of log time, a geometric mean: a bounce mixture counts low); 'poisson' = Poisson deviance of"
        " seconds + 1 with a log link (predicts log1p of the arithmetic mean E[t | click], what the"
        " formula's t means).",
    )
    task_weights: TaskWeights = Field(default_factory=TaskWeights)


class TrainConfig(_Section):
    """Optimisation, validation and early stopping."""

    epochs: int = Field(
        2, ge=1, description="Most passes over the training events (early stopping may end sooner)."
    )
    batch_size: int = Field(1024, ge=1)
    lr: float = Field(2e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    sparse_embeddings: bool = Field(
        True,
        description="Sparse id-embedding gradients (lazy Adam): cost ∝ rows touched, not table size.",
    )
    valid_fraction: float = Field(0.1, ge=0.0, lt=1.0, description="Share of slates held out for validation.")
    patience: int = Field(2, ge=0, description="Epochs without validation improvement before stopping.")
    seed: int = Field(0, ge=0)
    threads: int | None = Field(
        1, ge=1, description="torch threads for training and serving (None = torch's default: all cores)."
    )
    progress: bool = Field(True, description="tqdm progress bar on stderr.")


class FormulaConfig(_Section):
    """score = p_click ** a * time ** b * p_conv ** g (the paper's default ctr · t^0.8)."""

    a: float = Field(1.0, ge=0.0)
    b: float = Field(0.8, ge=0.0)
    g: float = Field(0.0, ge=0.0)


class RankerConfig(BaseModel):
    """Settings of the ranking part."""

    model_config = ConfigDict(extra="forbid")

    features: FeatureSpecConfig = Field(default_factory=default_feature_spec)
    model: ModelConfig = Field(default_factory=ModelConfig)
    shallow_tower: ShallowTowerConfig | None = Field(None, description="Bias tower (None = off).")
    labels: LabelConfig = Field(default_factory=LabelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    formula: FormulaConfig = Field(default_factory=FormulaConfig)
    ndcg_k: int = Field(20, ge=1, description="Cut-off of the per-slate NDCG reported by evaluation.")

    @model_validator(mode="after")
    def _tower_features_exist(self) -> RankerConfig:
        if self.shallow_tower is not None:
            dense = {f.name for f in self.features.dense}
            missing = [f for f in self.shallow_tower.features if f not in dense]
            if missing:
                raise ValueError(f"shallow_tower.features {missing} are not dense features {sorted(dense)}")
        return self
