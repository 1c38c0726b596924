"""Training and evaluation of the multi-task ranker on logged events (a scikit-learn-shaped estimator).

``Trainer(config).fit(events)`` reads events (DuckDB store, Parquet, DataFrame or EventStore), builds
labels and features, holds out a share of slates for validation, trains with early stopping (best
weights restored) and returns ``self``; the fitted model is ``model_``, the validation metrics
``fit_report_``. A second ``fit`` starts from fresh weights unless ``warm_start=True``, which continues
from the current ones (incremental training). Hooks for the mitigation methods:

- ``extra_losses``: callables ``(outputs, batch) -> scalar`` added to the loss;
- ``sample_weight_fn``: ``batch -> (B,)`` multiplying the per-row weights ``w``;
- ``extra_modules``: modules trained alongside the model (e.g. an adversarial head on ``model.encode``);
- ``hooks_for``: ``model -> {those three}``, for hooks that need the freshly built model.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from intentrank.errors import DataError, IntentRankError
from intentrank.ranking import metrics as M
from intentrank.ranking.checkpoint import load_checkpoint, save_checkpoint
from intentrank.ranking.config import RankerConfig
from intentrank.ranking.events import EventSource, load_events
from intentrank.ranking.features import FeatureEncoder, hash_buckets
from intentrank.ranking.formula import RankingFormula
from intentrank.ranking.history import add_history_columns
from intentrank.ranking.labels import make_labels
from intentrank.ranking.losses import multitask_loss
from intentrank.ranking.models.multitask import RANKER_TASKS, MultiTaskRanker
from intentrank.ranking.outputs import natural_units
from intentrank.runtime import torch_seed, torch_threads

ExtraLoss = Callable[[dict[str, Tensor], dict[str, Tensor]], Tensor]
ModelFactory = Callable[[RankerConfig], MultiTaskRanker]
LABEL_KEYS = ("clicked", "long", "y_click", "y_dwell", "y_conversion", "w")


@dataclass
class EncodedEvents:
    """Events as tensors: packed features, labels, and the slate id of each row. Text features: each
    row's packed n-gram ids are ``text_table[text_idx[row]]`` (one table row per distinct title, so a
    row costs 8 bytes, not 8·L); both None without text features."""

    cat: Tensor
    dense: Tensor
    labels: dict[str, Tensor]
    slate_id: np.ndarray
    text_idx: Tensor | None = None
    text_table: Tensor | None = None

    def __len__(self) -> int:
        return self.cat.shape[0]

    def subset(self, idx: np.ndarray) -> EncodedEvents:
        """Rows ``idx``."""
        t = torch.from_numpy(idx)
        return EncodedEvents(
            self.cat[t], self.dense[t], {k: v[t] for k, v in self.labels.items()}, self.slate_id[idx],
            None if self.text_idx is None else self.text_idx[t], self.text_table,
        )  # fmt: skip

    @staticmethod
    def concat(parts: Sequence[EncodedEvents]) -> EncodedEvents:
        """Rows of ``parts`` one after the other. Their ``text_idx`` must index the same table, or
        versions of one table that only grew by appending rows (the longest is kept)."""
        parts = [p for p in parts if len(p)]
        if len(parts) == 1:
            return parts[0]
        text = parts[-1].text_idx is not None
        tables = [p.text_table for p in parts if p.text_table is not None]
        table = max(tables, key=len) if tables else None
        return EncodedEvents(
            torch.cat([p.cat for p in parts]), torch.cat([p.dense for p in parts]),
            {k: torch.cat([p.labels[k] for p in parts]) for k in parts[0].labels},
            np.concatenate([p.slate_id for p in parts]),
            torch.cat([p.text_idx for p in parts]) if text else None,  # type: ignore[misc]
            table,
        )  # fmt: skip

    def rows(self, idx: Tensor | slice) -> tuple[Tensor, Tensor, Tensor | None]:
        """Packed (cat, dense, text (B, L)) of rows ``idx``."""
        text = None
        if self.text_idx is not None and self.text_table is not None:
            text = self.text_table[self.text_idx[idx]]
        return self.cat[idx], self.dense[idx], text



def _draws(model: nn.Module) -> bool:
    """Whether a training step of ``model`` draws random numbers (an active dropout)."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


def _coalesce(grad: Tensor) -> Tensor:
    """A sparse row gradient with its duplicate rows summed: ``grad.coalesce()``, ~2x faster on CPU.

    An embedding's sparse gradient holds one row per looked-up id (a batch of 2,048 titles: ~200k n-gram
    rows, most of them repeats); ``coalesce`` sorts and sums them and was a third of an online update's
    time. One ``unique`` and one ``index_add_`` do the same (sums in a different order: equal up to
    float rounding, deterministic)."""
    if grad.is_coalesced() or grad.sparse_dim() != 1:
        return grad.coalesce()
    rows, inverse = torch.unique(grad._indices()[0], sorted=True, return_inverse=True)
    values = grad._values()
    summed = values.new_zeros((len(rows), *values.shape[1:])).index_add_(0, inverse, values)
    return torch.sparse_coo_tensor(
        rows.unsqueeze(0), summed, grad.shape, is_coalesced=True, check_invariants=False
    )


def _step(opts: list[Any], total: Any) -> float:
    """One optimisation step of ``total`` with every optimiser (sparse and dense); returns the loss."""
    for o in opts:
        o.zero_grad(set_to_none=True)
    total.backward()
    for o in opts:
        if isinstance(o, torch.optim.SparseAdam):
            for group in o.param_groups:
                for p in group["params"]:
                    if p.grad is not None and p.grad.is_sparse:
                        p.grad = _coalesce(p.grad)
        o.step()
    return float(total.detach())

class Trainer:
    """Fit / evaluate / save / load the :class:`MultiTaskRanker` (scikit-learn's estimator contract).

    Args:
        config: the ranker settings (features, model, labels, training, formula).
        model_factory: builds the model for a config (default :class:`MultiTaskRanker`; the mitigation
            plan passes one that builds a head-masked ranker). Called under ``config.train.seed``.
        warm_start: a second ``fit`` continues from the current weights instead of starting fresh.
        threads: torch threads while fitting and predicting (default ``config.train.threads``; None
            leaves torch's setting alone).

    Attributes (after ``fit`` or ``load``):
        model_: the fitted model. encoder_: its feature encoder. history_: per-epoch losses.
        fit_report_: epochs, best epoch, seconds, row counts and validation metrics of the last fit.

    Example:
        >>> from intentrank.ranking.config import RankerConfig
        >>> tr = Trainer(RankerConfig())        # stores parameters only; nothing is built yet
        >>> hasattr(tr, "model_")
        False
    """

    def __init__(
        self,
        config: RankerConfig | None = None,
        *,
        model_factory: ModelFactory | None = None,
        warm_start: bool = False,
        threads: int | None = None,
    ) -> None:
        self.config = config
        self.model_factory = model_factory
        self.warm_start = warm_start
        self.threads = threads

    # -- resolved settings ---------------------------------------------------------------------
    @property
    def config_(self) -> RankerConfig:
        """The config in force: the fitted model's (architecture), with this trainer's training settings."""
        return self.config or (self.model_.config if hasattr(self, "model_") else RankerConfig())

    @property
    def formula(self) -> RankingFormula:
        """The ranking formula of the config."""
        return RankingFormula.from_config(self.config_.formula)

    def _threads(self) -> int | None:
        return self.threads if self.threads is not None else self.config_.train.threads

    def _fitted(self) -> MultiTaskRanker:
        if not hasattr(self, "model_"):
            raise IntentRankError("this Trainer is not fitted yet: call fit() or Trainer.load() first")
        return self.model_

    def _init_model(self) -> None:
        """A fresh model (the caller seeds torch)."""
        cfg = self.config_
        self.model_ = (self.model_factory or MultiTaskRanker)(cfg)
        self.encoder_ = FeatureEncoder(self.model_.config.features)
        self.history_: list[dict[str, float]] = []
        self._heads_initialised = False

    # -- data ----------------------------------------------------------------------------------
    def prepare(
        self, events: EventSource | EncodedEvents, items: pd.DataFrame | None = None
    ) -> EncodedEvents:
        """Load, validate and encode events (labels included)."""
        if isinstance(events, EncodedEvents):
            return events
        df = load_events(events, items)
        return self.encode_frame(df)

    def encode_frame(self, df: pd.DataFrame) -> EncodedEvents:
        """Encode an already joined event frame. User-history columns the spec reads and the frame lacks
        are computed from the frame itself, point in time (each impression sees its user's events
        before its session: :func:`intentrank.ranking.history.history_features_for_events`); so to
        evaluate on a later slice of a log, add them to the whole log first
        (:func:`~intentrank.ranking.history.add_history_columns`), then split."""
        if len(df) == 0:
            raise DataError("event frame: the event set is empty")
        cfg = self.config_
        labels = make_labels(df, cfg.labels)
        df = add_history_columns(df, cfg.features, cfg.labels.long_click_threshold_s)
        enc = FeatureEncoder(cfg.features)
        cat, dense = enc.encode_numpy(df)
        text_idx, text_table = enc.encode_text_table(df) if cfg.features.text else (None, None)
        slate = df["slate_id"].to_numpy() if "slate_id" in df.columns else np.zeros(len(df), np.int64)
        return EncodedEvents(
            torch.from_numpy(cat),
            torch.from_numpy(dense),
            {k: torch.from_numpy(v) for k, v in labels.items()},
            slate,
            None if text_idx is None else torch.from_numpy(text_idx),
            None if text_table is None else torch.from_numpy(text_table),
        )

    def _batch(self, data: EncodedEvents, idx: Tensor | None = None) -> dict[str, Tensor]:
        if idx is None:
            b = self.encoder_.to_batch(*data.rows(slice(None)))
            b.update(data.labels)
            return b
        b = self.encoder_.to_batch(*data.rows(idx))
        b.update({k: v[idx] for k, v in data.labels.items()})
        return b

    def split(self, data: EncodedEvents) -> tuple[EncodedEvents, EncodedEvents | None]:
        """Hold out ``valid_fraction`` of slates (stable hash of slate_id, seeded)."""
        frac = self.config_.train.valid_fraction
        if frac <= 0:
            return data, None
        h = hash_buckets(data.slate_id + np.int64(self.config_.train.seed) * 1_000_003, 10_000)
        va = h < round(frac * 10_000)
        if va.all() or not va.any():
            return data, None
        return data.subset(np.flatnonzero(~va)), data.subset(np.flatnonzero(va))

    # -- training ------------------------------------------------------------------------------
    def _optimizers(self, extra_modules: Sequence[nn.Module]) -> list[torch.optim.Optimizer]:
        t = self.config_.train
        model = self.model_
        sparse_ids = {
            id(p)
            for m in model.modules()
            if isinstance(m, nn.Embedding | nn.EmbeddingBag) and m.sparse
            for p in m.parameters()
        }
        sparse, dense = [], []
        for p in model.parameters():
            (sparse if id(p) in sparse_ids else dense).append(p)
        for m in extra_modules:
            dense += list(m.parameters())
        opts: list[torch.optim.Optimizer] = [torch.optim.AdamW(dense, lr=t.lr, weight_decay=t.weight_decay)]
        if sparse:
            opts.append(torch.optim.SparseAdam(sparse, lr=t.lr))
        return opts

    def _init_heads(self, data: EncodedEvents) -> None:
        clicked = data.labels["clicked"] > 0
        if clicked.any():
            with torch.no_grad():
                y = data.labels["y_dwell"][clicked].double()
                poisson = self.config_.labels.dwell_loss == "poisson"  # log1p of the mean, not mean log1p
                start = torch.log(torch.exp(y).mean()) if poisson else y.mean()
                self.model_.towers.output_bias(RANKER_TASKS.index("dwell")).fill_(float(start))

    def loss(
        self,
        batch: dict[str, Tensor],
        extra_losses: Sequence[ExtraLoss] = (),
        sample_weight_fn: Callable[[dict[str, Tensor]], Tensor] | None = None,
        module: nn.Module | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Total loss of one batch (model in its current mode). ``module`` runs the forward pass instead
        of ``model_`` (the DDP wrapper of ``model_`` in :mod:`intentrank.ranking.distributed`)."""
        if sample_weight_fn is not None:
            batch = {**batch, "w": batch["w"] * sample_weight_fn(batch)}
        out = (module or self.model_)(batch)
        labels = self.config_.labels
        total, parts = multitask_loss(out, batch, labels.task_weights, self.model_.esmm, labels.dwell_loss)
        for fn in extra_losses:
            total = total + fn(out, batch)
        return total, parts

    def fit(
        self,
        events: EventSource | EncodedEvents,
        items: pd.DataFrame | None = None,
        *,
        valid: EventSource | EncodedEvents | None = None,
        extra_losses: Sequence[ExtraLoss] = (),
        sample_weight_fn: Callable[[dict[str, Tensor]], Tensor] | None = None,
        extra_modules: Sequence[nn.Module] = (),
        hooks_for: Callable[[MultiTaskRanker], dict[str, Any]] | None = None,
    ) -> Trainer:
        """Train on ``events`` (validated against ``valid`` or a held-out share of slates); returns self.

        Fresh weights unless ``warm_start`` and already fitted. ``fit_report_`` gets ``{"epochs",
        "best_epoch", "train_seconds", "n_train", "n_valid", "valid": metrics}``.
        """
        with torch_threads(self._threads()):
            data = self.prepare(events, items)
            va_in = self.prepare(valid, items) if valid is not None else None
            fresh = not (self.warm_start and hasattr(self, "model_"))
            # one seeded block: weight init, the hooks' modules and dropout draw from it, nothing leaks out
            with torch_seed(self.config_.train.seed + (0 if fresh else len(self.history_))):
                if fresh:
                    self._init_model()
                if hooks_for is not None:
                    hooks = hooks_for(self.model_)
                    extra_losses = [*extra_losses, *hooks.get("extra_losses", [])]
                    sample_weight_fn = hooks.get("sample_weight_fn") or sample_weight_fn
                    extra_modules = [*extra_modules, *hooks.get("extra_modules", [])]
                self.fit_report_ = self._fit(data, va_in, extra_losses, sample_weight_fn, extra_modules)
        return self

    def _fit(
        self,
        data: EncodedEvents,
        va_in: EncodedEvents | None,
        extra_losses: Sequence[ExtraLoss],
        sample_weight_fn: Callable[[dict[str, Tensor]], Tensor] | None,
        extra_modules: Sequence[nn.Module],
    ) -> dict[str, Any]:
        t = self.config_.train
        model = self.model_
        if va_in is not None:
            train, va = data, va_in
        else:
            train, va = self.split(data)
        if not self._heads_initialised:
            self._init_heads(train)
            self._heads_initialised = True
        opts = self._optimizers(extra_modules)
        gen = torch.Generator().manual_seed(t.seed + len(self.history_))
        best, best_state, best_extra, best_epoch, bad = math.inf, None, None, 0, 0
        n = len(train)
        steps = math.ceil(n / t.batch_size)
        start = time.perf_counter()
        epoch = 0
        for epoch in range(1, t.epochs + 1):
            model.train()
            for m in extra_modules:
                m.train()
            perm = torch.randperm(n, generator=gen)
            run_loss = 0.0
            bar = tqdm(
                range(steps), desc=f"train epoch {epoch}/{t.epochs}", disable=not t.progress, leave=False
            )
            for s in bar:
                batch = self._batch(train, perm[s * t.batch_size : (s + 1) * t.batch_size])
                total, _ = self.loss(batch, extra_losses, sample_weight_fn)
                run_loss += _step(opts, total)
            rec = {"epoch": float(epoch), "train_loss": run_loss / steps}
            if va is not None:
                rec["valid_loss"] = self.validation_loss(va, extra_losses, sample_weight_fn)
            self.history_.append(rec)
            monitor = rec.get("valid_loss", rec["train_loss"])
            if monitor < best - 1e-6:
                best, best_epoch, bad = monitor, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
                best_extra = [copy.deepcopy(m.state_dict()) for m in extra_modules]
            else:
                bad += 1
                if va is not None and bad > t.patience:
                    break
        if best_state is not None:
            model.load_state_dict(best_state)
            for m, st in zip(extra_modules, best_extra or [], strict=True):
                m.load_state_dict(st)
        model.eval()
        result: dict[str, Any] = {
            "epochs": epoch,
            "best_epoch": best_epoch,
            "train_seconds": round(time.perf_counter() - start, 2),
            "n_train": n,
            "n_valid": len(va) if va is not None else 0,
        }
        if va is not None:
            result["valid"] = self.evaluate(va)
        return result

    def partial_fit(
        self,
        events: EventSource | EncodedEvents,
        items: pd.DataFrame | None = None,
        *,
        max_steps: int | None = None,
    ) -> Trainer:
        """One warm-start pass over ``events`` in shuffled minibatches of ``train.batch_size`` (at most
        ``max_steps`` of them); returns self. The online learner's step (scikit-learn's ``partial_fit``):
        no validation split, no early stopping, no copy of the best weights, and the optimizers' state
        (Adam moments) carries over from one call to the next, as in a streaming learner. Fits a fresh
        model first when not fitted. ``history_`` gets one record (``train_loss``, ``steps``)."""
        t = self.config_.train
        with torch_threads(self._threads()):
            data = self.prepare(events, items)
            if not hasattr(self, "model_"):
                with torch_seed(t.seed):
                    self._init_model()
            if not self._heads_initialised:
                self._init_heads(data)
                self._heads_initialised = True
            opts = getattr(self, "_partial_opts", None)
            if opts is None or getattr(self, "_partial_model", None) is not self.model_:
                opts = self._partial_opts = self._optimizers(())
                self._partial_model = self.model_
            n = len(data)
            steps = math.ceil(n / t.batch_size)
            if max_steps is not None:
                steps = max(1, min(steps, int(max_steps)))
            gen = torch.Generator().manual_seed(t.seed + len(self.history_))
            perm = torch.randperm(n, generator=gen)
            model = self.model_
            model.train()
            run_loss = 0.0
            # dropout's draws seeded per call; a model without dropout draws nothing and leaves torch's
            # global generator alone (two learners may then update in parallel threads: run_loop(workers))
            rng = torch_seed(t.seed + len(self.history_)) if _draws(model) else contextlib.nullcontext()
            with rng:
                for s in range(steps):
                    total, _ = self.loss(self._batch(data, perm[s * t.batch_size : (s + 1) * t.batch_size]))
                    run_loss += _step(opts, total)
            model.eval()
            rec = {"epoch": float(len(self.history_) + 1), "train_loss": run_loss / steps}
            self.history_.append(rec | {"steps": float(steps)})
        return self

    @torch.no_grad()
    def validation_loss(
        self,
        data: EncodedEvents,
        extra_losses: Sequence[ExtraLoss] = (),
        sample_weight_fn: Callable[[dict[str, Tensor]], Tensor] | None = None,
    ) -> float:
        """Mean loss over ``data`` in eval mode (what early stopping watches)."""
        self.model_.eval()
        total, count = 0.0, 0
        bs = max(self.config_.train.batch_size, 8192)
        for s in range(0, len(data), bs):
            idx = torch.arange(s, min(s + bs, len(data)))
            loss, _ = self.loss(self._batch(data, idx), extra_losses, sample_weight_fn)
            total += float(loss) * len(idx)
            count += len(idx)
        return total / max(count, 1)

    # -- prediction and evaluation --------------------------------------------------------------
    @torch.no_grad()
    def predict_encoded(self, data: EncodedEvents, batch_size: int = 16384) -> dict[str, np.ndarray]:
        """p_click, time (s), p_conv (given click), dwell_log1p and the formula score for every row."""
        model = self._fitted()
        parts: dict[str, list[Tensor]] = {"p_click": [], "time": [], "p_conv": [], "dwell_log1p": []}
        model.eval()
        enc = self.encoder_  # built with the model (fit or load)
        with torch_threads(self._threads()):
            for s in range(0, len(data), batch_size):
                out = model(enc.to_batch(*data.rows(slice(s, s + batch_size))))
                for k, v in natural_units(out).items():
                    parts[k].append(v)
                parts["dwell_log1p"].append(out["dwell"])
        res = {k: torch.cat(v).numpy().astype(np.float64) for k, v in parts.items()}
        res["score"] = self.formula.score(res["p_click"], res["time"], res["p_conv"])
        return res

    def predict(self, events: EventSource, items: pd.DataFrame | None = None) -> pd.DataFrame:
        """Predictions for an event source (features only are needed, but labels are validated too)."""
        return pd.DataFrame(self.predict_encoded(self.prepare(events, items)))

    def evaluate(
        self, events: EventSource | EncodedEvents, items: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        """Per-task ROC-AUC and log-loss, dwell RMSE (log1p seconds, clicked rows), NDCG@k per slate."""
        data = self.prepare(events, items)
        pr = self.predict_encoded(data)
        lab = {k: v.numpy().astype(np.float64) for k, v in data.labels.items()}
        clicked = lab["clicked"] > 0
        p_ctcvr = pr["p_click"] * pr["p_conv"]
        rel = lab["clicked"] + lab["long"] + lab["y_conversion"]
        k = self.config_.ndcg_k
        return {
            "n_events": len(data),
            "n_clicks": int(clicked.sum()),
            "click": {
                "auc": M.auc(lab["y_click"], pr["p_click"]),
                "logloss": M.logloss(lab["y_click"], pr["p_click"]),
            },
            "conversion_given_click": {
                "auc": M.auc(lab["y_conversion"][clicked], pr["p_conv"][clicked]),
                "logloss": M.logloss(lab["y_conversion"][clicked], pr["p_conv"][clicked]),
            },
            "ctcvr": {
                "auc": M.auc(lab["y_conversion"], p_ctcvr),
                "logloss": M.logloss(lab["y_conversion"], p_ctcvr),
            },
            "dwell": {
                "rmse_log1p": M.rmse(lab["y_dwell"][clicked], pr["dwell_log1p"][clicked]),
                "auc_long_click": M.auc(lab["long"][clicked], pr["dwell_log1p"][clicked]),
            },
            f"ndcg@{k}": M.ndcg_per_slate(data.slate_id, pr["score"], rel, k),
        }

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path, metrics: dict[str, Any] | None = None) -> Path:
        """Checkpoint: weights + config + feature spec (+ metrics, default the last ``fit_report_``)."""
        if metrics is None:
            metrics = getattr(self, "fit_report_", None)
        return save_checkpoint(directory, self._fitted(), metrics)

    @classmethod
    def load(
        cls,
        directory: str | Path,
        config: RankerConfig | None = None,
        *,
        warm_start: bool = False,
        threads: int | None = None,
    ) -> Trainer:
        """A fitted trainer around a saved model; refuses a checkpoint of another feature spec than
        ``config``'s. ``warm_start=True``: a later ``fit`` continues from these weights."""
        model = load_checkpoint(directory, config)
        tr = cls(model.config, warm_start=warm_start, threads=threads)
        tr.model_ = model
        tr.encoder_ = FeatureEncoder(model.config.features)
        tr.history_ = []
        tr._heads_initialised = True
        return tr
