"""Incremental training: keep a served model fresh from the events that arrive, and swap it in atomically.

Every update (a window of the simulator's clock, or every few minutes in the feed service):

1. read the events appended to the store since the learner's watermark (optionally only one arm's);
2. train the current weights on them together with a bounded replay of the most recent earlier events
   (``replay_events`` rows), ``epochs`` passes, warm start (:class:`~intentrank.ranking.trainer.Trainer`
   with ``warm_start=True``);
3. publish a copy of the trained weights to the :class:`ModelSlot` the policies serve from: one
   reference swap, so a reader sees the old model or the new one, never a half-trained one.

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

import pandas as pd

from intentrank.ranking.events import load_events
from intentrank.ranking.history import UserHistory, history_columns_needed, history_features_for_events
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.ranking.trainer import Trainer


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


class IncrementalTrainer:
    """Warm-start updates of a fitted :class:`Trainer` from a store's new events, published to a slot.

    Args:
        trainer: a fitted trainer (``fit`` once on a first log, or ``Trainer.load``); it is switched to
            ``warm_start=True`` and trains its own copy of the weights.
        slot: where the served model lives (default: a new slot with a copy of the trainer's model).
        items: the item table joined to the events (public item features).
        arm: read only events whose ``policy`` column equals this (an arm's own traffic); None = all.
        replay_events: most recent earlier rows trained on again with each update (bounds memory).
        min_new_events: skip an update with fewer new rows (the watermark stays).
        watermark: the last event id already learned from (-1: none).
        runs: which runs' events to learn from (default ``"all"``: an online learner learns from events
            as they are acknowledged, the run in progress included; see ``EventStore.read_impressions``).
        history: the history of the events before ``watermark`` (for user-history features; default an
            empty one when the model reads them). The learner updates it; do not share it with a policy
            (the policy's history may already hold events the learner has not yet featurised).
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
    ) -> None:
        trainer.model_  # noqa: B018 (raises AttributeError early when the trainer is not fitted)
        trainer.warm_start = True
        self.trainer, self.items, self.arm = trainer, items, arm
        self.slot = slot or ModelSlot(copy.deepcopy(trainer.model_))
        self.replay_events, self.min_new_events = int(replay_events), int(min_new_events)
        self.watermark = int(watermark)
        self.runs = runs
        self._replay: pd.DataFrame | None = None
        self.reports: list[UpdateReport] = []
        cfg = trainer.config_
        self._history_cols = history_columns_needed(cfg.features)
        if history is None and self._history_cols:
            history = UserHistory(cfg.labels.long_click_threshold_s)
        self.history = history

    def update(self, store: Any) -> UpdateReport | None:
        """Learn from the store's events after the watermark; None when there were too few."""
        t0 = time.perf_counter()
        last = int(store.watermark())
        if last <= self.watermark:
            return None
        new = load_events(
            store, self.items, since_event_id=self.watermark, until_event_id=last, runs=self.runs
        )
        if self.arm is not None:
            new = new[new["policy"] == self.arm]
        if len(new) < self.min_new_events:
            return None
        if self.history is not None and self._history_cols:
            hist = history_features_for_events(
                new, long_click_threshold_s=self.history.long_click_threshold_s, base=self.history
            )
            new = new.reset_index(drop=True).assign(**{c: hist[c].to_numpy() for c in self._history_cols})
        batch = new if self._replay is None else pd.concat([self._replay, new], ignore_index=True)
        self.trainer.fit(batch)
        version = self.slot.swap(copy.deepcopy(self.trainer.model_))
        replayed = 0 if self._replay is None else len(self._replay)
        self._replay = batch.iloc[-self.replay_events :] if self.replay_events > 0 else None
        self.watermark = last
        if self.history is not None:
            self.history.update(new)
        hist = self.trainer.history_
        rep = UpdateReport(
            len(new), replayed, last, version, round(time.perf_counter() - t0, 4),
            hist[-1]["train_loss"] if hist else None,
        )  # fmt: skip
        self.reports.append(rep)
        return rep
