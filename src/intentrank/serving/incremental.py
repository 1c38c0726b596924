"""Incremental training: keep a served model fresh from the events that arrive, and swap it in atomically.

Every update (a window of the simulator's clock, or every few minutes in the feed service):

1. read the events appended to the store since the learner's watermark (optionally only one arm's), or
   take them from an :class:`EventBatch` someone already read (the loop reads each window once for all
   its learners and histories);
2. encode only those rows (labels, features, point-in-time user history; titles through a per-item
   token cache, so a title is tokenised once in the learner's life) and train the current weights on
   them together with a uniform sample of ``replay_ratio`` × as many rows from the bounded replay buffer
   (the ``replay_events`` most recent earlier rows, kept encoded): one shuffled pass in minibatches,
   at most ``max_steps`` of them, optimiser state carried from update to update
   (:meth:`~intentrank.ranking.trainer.Trainer.partial_fit`);
3. publish a copy of the trained weights to the :class:`ModelSlot` the policies serve from: one
   reference swap, so a reader sees the old model or the new one, never a half-trained one. The copy
   goes into the model retired by the previous swap when there is one (double buffering: no allocation
   per update); so a reader must not keep a model across two updates (a request reads the slot once).

The watermark advances only after a successful update, so a failed update is retried with the same events.

User-history features of the new events are point in time: the learner keeps its own
:class:`~intentrank.ranking.history.UserHistory` of what it has learned from, and each new event gets its
user's history before its session (that history plus the earlier events of the update); replayed rows
keep the values they got. Its history advances with the watermark.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from intentrank.errors import ConfigError
from intentrank.ranking import metrics as M
from intentrank.ranking.candidates import CONTEXT_COLUMNS
from intentrank.ranking.events import load_events
from intentrank.ranking.history import UserHistory, history_columns_needed, history_features_for_events
from intentrank.ranking.labels import make_labels
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.ranking.trainer import EncodedEvents, Trainer
from intentrank.runtime import torch_threads


class ModelSlot:
    """The model a policy serves, with a version that increases on every swap (thread-safe)."""

    def __init__(self, model: MultiTaskRanker, version: int = 0) -> None:
        self._lock = threading.Lock()
        self._model, self._version = model.eval(), version
        self.swaps = 0

    @property
    def model(self) -> MultiTaskRanker:
        """The current model (read it once per request)."""
        return self._model

    @property
    def version(self) -> int:
        return self._version

    def current(self) -> tuple[MultiTaskRanker, int]:
        """The current model and its version, read together (never a new model with an old version)."""
        with self._lock:
            return self._model, self._version

    def swap(self, model: MultiTaskRanker) -> int:
        """Publish ``model``; returns its version."""
        model.eval()
        with self._lock:
            self._model, self._version = model, self._version + 1
            self.swaps += 1
            return self._version


@dataclass
class UpdateReport:
    """One incremental update: how many new and replayed rows, the new watermark and version, seconds."""

    new_events: int
    replayed: int
    watermark: int
    version: int
    seconds: float
    train_loss: float | None = None
    steps: int = 0


@dataclass
class EventBatch:
    """Events already read from a store: ``frame`` holds the events with ``since < event_id ≤ until``
    joined with items (:func:`~intentrank.ranking.events.load_events`), all arms. A learner whose watermark
    is ``since`` uses it instead of reading the store again."""

    frame: pd.DataFrame
    since: int
    until: int


class IncrementalTrainer:
    """Warm-start updates of a fitted :class:`Trainer` from a store's new events, published to a slot.

    Args:
        trainer: a fitted trainer (``fit`` once on a first log, or ``Trainer.load``); it is switched to
            ``warm_start=True`` and trains its own copy of the weights.
        slot: where the served model lives (default: a new slot with a copy of the trainer's model).
        items: the item table joined to the events (public item features).
        arm: read only events whose ``policy`` column equals this (an arm's own traffic); None = all.
        replay_events: the replay buffer: the most recent earlier rows kept (encoded) for replay (bounds
            memory); 0 = no replay.
        min_new_events: skip an update with fewer new rows (the watermark stays).
        watermark: the last event id already learned from (-1: none).
        runs: which runs' events to learn from (default ``"all"``: an online learner learns from events
            as they are acknowledged, the run in progress included; see ``EventStore.read_impressions``).
        history: the history of the events before ``watermark`` (for user-history features; default an
            empty one when the model reads them). The learner updates it; do not share it with a policy
            (the policy's history may already hold events the learner has not yet featurised).
        replay_ratio: replayed rows drawn (uniformly, without replacement) from the buffer per new row.
        max_steps: most minibatch steps per update (None: one full pass over new + replayed rows); a
            fixed budget keeps an update's cost flat however much traffic a window brings.
        heldout_every: every this many updates (0: never), score the new rows with the model *before*
            training on them (progressive validation: rows the model has not learned from) and keep
            their raw clicks and p_click (:meth:`heldout_auc`).
    """

    def __init__(
        self,
        trainer: Trainer,
        slot: ModelSlot | None = None,
        items: pd.DataFrame | None = None,
        arm: str | None = None,
        replay_events: int = 20_000,
        min_new_events: int = 1,
        watermark: int = -1,
        runs: str | list[int] = "all",
        history: UserHistory | None = None,
        *,
        replay_ratio: float = 1.0,
        max_steps: int | None = None,
        heldout_every: int = 0,
    ) -> None:
        trainer.model_  # noqa: B018 (raises AttributeError early when the trainer is not fitted)
        for name, value, low in (("replay_events", replay_events, 0), ("min_new_events", min_new_events, 1),
                                 ("replay_ratio", replay_ratio, 0)):  # fmt: skip
            if value < low:
                raise ConfigError(f"IncrementalTrainer: {name} must be ≥ {low}, got {value}")
        if max_steps is not None and max_steps < 1:
            raise ConfigError(f"IncrementalTrainer: max_steps must be ≥ 1 or None, got {max_steps}")
        trainer.warm_start = True
        self.trainer, self.items, self.arm = trainer, items, arm
        self.slot = slot or ModelSlot(copy.deepcopy(trainer.model_))
        self.replay_events, self.min_new_events = int(replay_events), int(min_new_events)
        self.replay_ratio, self.max_steps = float(replay_ratio), max_steps
        self.watermark = int(watermark)
        self.runs = runs
        self._replay: EncodedEvents | None = None
        #: the (user_id, ts, slate_index) contexts of the last update's new rows (e.g. for RL alignment)
        self.last_contexts: pd.DataFrame | None = None
        self._spare: MultiTaskRanker | None = None  # the model the last swap retired (double buffer)
        self._text_ids = pd.Index([], dtype=np.int64)  # item ids with a row in _text_table
        self._text_table: torch.Tensor | None = None
        self.reports: list[UpdateReport] = []
        self.heldout_every = int(heldout_every)
        #: (update index, day of each row, raw click, p_click before training) of the held-out updates
        self.heldout: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        cfg = trainer.config_
        self._history_cols = history_columns_needed(cfg.features)
        if history is None and self._history_cols:
            history = UserHistory(cfg.labels.long_click_threshold_s)
        self.history = history

    # -- encoding ------------------------------------------------------------------------------------
    def _text_rows(self, frame: pd.DataFrame) -> torch.Tensor | None:
        """Each row's index into the per-item token table (tokenising items seen for the first time)."""
        enc = self.trainer.encoder_
        if not enc.spec.text:
            return None
        ids = frame["item_id"].to_numpy(np.int64)
        pos = self._text_ids.get_indexer(ids)
        if (pos < 0).any():
            fresh = frame.loc[pos < 0].drop_duplicates("item_id")
            table = torch.from_numpy(enc.encode_text(fresh))
            self._text_table = table if self._text_table is None else torch.cat([self._text_table, table])
            self._text_ids = self._text_ids.append(pd.Index(fresh["item_id"].to_numpy(np.int64)))
            pos = self._text_ids.get_indexer(ids)
        return torch.from_numpy(pos.astype(np.int64))

    def encode(self, frame: pd.DataFrame) -> EncodedEvents:
        """Encode joined events (with their history columns) as the trainer would
        (:meth:`Trainer.encode_frame`, same rows), titles through the learner's token cache."""
        cfg = self.trainer.config_
        labels = make_labels(frame, cfg.labels)
        cat, dense = self.trainer.encoder_.encode_numpy(frame)
        n = len(frame)
        slate = frame["slate_id"].to_numpy() if "slate_id" in frame.columns else np.zeros(n, np.int64)
        lab = {k: torch.from_numpy(v) for k, v in labels.items()}
        text = self._text_rows(frame)  # first: it may grow the table
        cat_t, dense_t = torch.from_numpy(cat), torch.from_numpy(dense)
        return EncodedEvents(cat_t, dense_t, lab, slate, text, self._text_table)

    def heldout_auc(self, day: int | None = None) -> float | None:
        """Click ROC-AUC of p_click on the held-out updates' rows (raw clicks, whatever the learner's
        click target), optionally of one day's rows; None without both classes."""
        if not self.heldout:
            return None
        d = np.concatenate([h[1] for h in self.heldout])
        y = np.concatenate([h[2] for h in self.heldout]).astype(np.float64)
        p = np.concatenate([h[3] for h in self.heldout])
        m = np.ones(len(d), bool) if day is None else d == day
        return M.auc(y[m], p[m])

    # -- the update ----------------------------------------------------------------------------------
    def _new_events(self, store: Any, batch: EventBatch | None) -> tuple[pd.DataFrame | None, int]:
        if batch is not None and batch.since == self.watermark:
            frame, last = batch.frame, batch.until
        else:
            last = int(store.watermark())
            if last <= self.watermark:
                return None, last
            frame = load_events(
                store, self.items, since_event_id=self.watermark, until_event_id=last, runs=self.runs
            )
        if self.arm is not None:
            frame = frame[frame["policy"] == self.arm]
        return frame, last

    def _publish(self) -> int:
        """Copy the trained weights into the spare model (or a new one) and swap it in."""
        src = self.trainer.model_
        spare, self._spare = self._spare, None
        if spare is None or type(spare) is not type(src):
            spare = copy.deepcopy(src)
        else:
            with torch.no_grad():
                for a, b in zip(spare.state_dict().values(), src.state_dict().values(), strict=True):
                    a.copy_(b)
        retired = self.slot.model
        version = self.slot.swap(spare)
        if retired is not src and type(retired) is type(src):
            self._spare = retired
        return version

    def update(self, store: Any, batch: EventBatch | None = None) -> UpdateReport | None:
        """Learn from the store's events after the watermark (or from ``batch`` when it starts at the
        watermark); None when there were too few."""
        t0 = time.perf_counter()
        new, last = self._new_events(store, batch)
        if new is None or last <= self.watermark or len(new) < self.min_new_events:
            return None
        new = new.reset_index(drop=True)
        if self.history is not None and self._history_cols:
            hist = history_features_for_events(
                new, long_click_threshold_s=self.history.long_click_threshold_s, base=self.history
            )
            new = new.assign(**{c: hist[c].to_numpy() for c in self._history_cols})
        tr = self.trainer
        with torch_threads(tr._threads()):
            enc = self.encode(new)
            if self.heldout_every and len(self.reports) % self.heldout_every == 0:
                with torch.no_grad():
                    p = tr.predict_encoded(enc)["p_click"]
                day = new["day"].to_numpy(np.int64) if "day" in new.columns else np.zeros(len(new), np.int64)
                self.heldout.append((len(self.reports), day, new["click"].to_numpy(bool), p))
            replayed = 0
            data = enc
            if self._replay is not None and self.replay_ratio > 0:
                k = min(len(self._replay), round(self.replay_ratio * len(enc)))
                if k:
                    seed = tr.config_.train.seed + 7919 * (len(self.reports) + 1)
                    gen = torch.Generator().manual_seed(seed)
                    pick = torch.randperm(len(self._replay), generator=gen)[:k].sort().values.numpy()
                    data = EncodedEvents.concat([enc, self._replay.subset(pick)])
                    replayed = k
            tr.partial_fit(data, max_steps=self.max_steps)
            version = self._publish()
            if self.replay_events > 0:
                buf = enc if self._replay is None else EncodedEvents.concat([self._replay, enc])
                n = len(buf)
                keep = np.arange(n - self.replay_events, n) if n > self.replay_events else None
                self._replay = buf if keep is None else buf.subset(keep)
        self.watermark = last
        self.last_contexts = new[[c for c in CONTEXT_COLUMNS if c in new.columns]]
        if self.history is not None:
            self.history.update(new)
        rec = tr.history_[-1] if tr.history_ else {}
        rep = UpdateReport(
            len(new), replayed, last, version, round(time.perf_counter() - t0, 4),
            rec.get("train_loss"), int(rec.get("steps", 0)),
        )  # fmt: skip
        self.reports.append(rep)
        return rep
