"""Typed configuration of the clickbait part (a section of the one intentrank config file).

Only pydantic here: the config layer must import without torch or other heavy libraries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

BackendName = Literal["lexical", "semantic", "finetuned", "ensemble", "tokenbag", "tokenconv"]
#: The shipped models ``load_default_scorer`` can load by name (``clickbait.model``).
ShippedModel = Literal["student", "ensemble"]

#: The file that makes a directory a saved clickbait model (``ClickbaitScorer.save`` / ``load``).
MODEL_FILE = "model.json"


class ClickbaitConfig(BaseModel):
    """Settings of the clickbait scorer: categories, input handling, backend and training."""

    model_config = ConfigDict(extra="forbid")

    light_threshold: float = Field(0.4, ge=0.0, le=1.0, description="Lowest score of the 'light' category.")
    heavy_threshold: float = Field(0.7, ge=0.0, le=1.0, description="Lowest score of the 'heavy' category.")
    model_dir: Path | None = Field(
        None,
        description="Directory of a trained model to load; None = the default model shipped in the package.",
    )
    model: ShippedModel = Field(
        "ensemble",
        description="Shipped model loaded when model_dir is None: 'ensemble' (lexical + fine-tuned MiniLM,"
        " ~100 new titles/s) or 'student' (lexical + token convolution distilled from the ensemble, over"
        " 1,000 new titles/s, scores independent of batch neighbours; lower quality)."
        " Figures of both in docs/clickbait.md.",
    )
    backend: BackendName = Field(
        "ensemble",
        description="Backend `intentrank clickbait train` fits (lexical, semantic, finetuned, ensemble).",
    )
    max_chars: int = Field(
        2000,
        ge=16,
        description="Titles longer than this (after normalisation) are cut to their first max_chars.",
    )
    empty_score: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="Score given to an empty or whitespace-only title (no text, no bait).",
    )
    decision_threshold: float = Field(
        0.5,
        gt=0.0,
        lt=1.0,
        description="Score at or above which a title counts as clickbait in accuracy figures.",
    )
    seed: int = Field(0, ge=0, description="Seed of the held-out/validation splits and of training.")
    test_fraction: float = Field(
        0.2, gt=0.0, lt=0.5, description="Held-out share of each dataset (never trained on)."
    )
    val_fraction: float = Field(
        0.2, gt=0.0, lt=0.5, description="Share of the training part kept for validation (ensemble weights)."
    )
    stop_weight: float = Field(
        0.5,
        ge=0.0,
        description="Sample weight of a Stop Clickbait title relative to a Webis-17 title in training.",
    )
    lexical_alpha: float = Field(1.0, gt=0.0, description="Ridge penalty of the lexical backend.")
    semantic_alpha: float = Field(1.0, gt=0.0, description="Ridge penalty of the semantic backend's head.")
    semantic_head: Literal["ridge", "mlp"] = Field("mlp", description="Head of the semantic backend.")
    finetune_epochs: int = Field(4, ge=1, description="Epochs of the finetuned backend.")
    finetune_lr: float = Field(5e-5, gt=0.0, description="Learning rate of the finetuned backend's encoder.")
    ensemble_members: list[BackendName] = Field(
        default_factory=lambda: ["lexical", "finetuned"],
        min_length=1,
        description="Backends the ensemble stacks.",
    )
    ensemble_warp: bool = Field(
        True,
        description="Ensemble: map the stack's output through a strictly increasing warp fit on the"
        " validation split that puts the best Stop Clickbait boundary at decision_threshold"
        " (Webis ranking unchanged).",
    )
    finetune_on_cpu: bool = Field(
        False,
        description="Allow fitting the finetuned backend without a CUDA GPU (takes hours on CPU).",
    )
    batch_size: int = Field(256, ge=1, description="Titles per encoder batch (semantic backend).")
    student_teacher_weight: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Student training target = this share of the ensemble's (teacher's) score + the rest"
        " of the human label (scripts/clickbait/student.py).",
    )
    tokenbag_hidden: int = Field(128, ge=1, description="Hidden width of the token-bag backend.")
    tokenbag_epochs: int = Field(4, ge=1, description="Training epochs of the token-bag backend.")
    tokenbag_pooling: Literal["mean", "meanmax"] = Field(
        "meanmax",
        description="Token-bag pooling: mean of folded token vectors, or mean + per-dimension max"
        " (validation AUC of the stack 0.8662 vs 0.8711, docs/clickbait.md).",
    )

    student_members: list[Literal["lexical", "tokenbag", "tokenconv"]] = Field(
        default_factory=lambda: ["lexical", "tokenconv"],
        min_length=1,
        description="Members the student stacks (scripts/clickbait/student.py): the hashed n-gram ridge,"
        " the token bag and/or the token convolution; all score each title on its own.",
    )
    tokenconv_hidden: int = Field(128, ge=1, description="Channels of the token-convolution backend.")
    tokenconv_width: int = Field(3, ge=1, le=5, description="Tokens per window of the token convolution.")
    tokenconv_epochs: int = Field(4, ge=1, description="Training epochs of the token-convolution backend.")

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> ClickbaitConfig:
        if self.light_threshold >= self.heavy_threshold:
            raise ValueError(
                f"light_threshold ({self.light_threshold}) must be below "
                f"heavy_threshold ({self.heavy_threshold})"
            )
        return self
