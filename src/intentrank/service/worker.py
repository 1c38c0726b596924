"""Incremental training online: a worker thread that retrains the served model every few minutes.

Every ``worker.interval_s`` (or on :meth:`TrainingWorker.run_once`, what tests and operators call):

1. read the events acknowledged since the watermark (under the store lock; the run in progress
   included) and split them by event id: the older ``1 - holdout_fraction`` are trained on, the
   newest ``holdout_fraction`` are held out;
2. train a candidate with :class:`~intentrank.serving.incremental.IncrementalTrainer` (warm start on the
   new events plus a bounded replay of earlier ones, ``replay_events``) into its own slot, not the
   served one;
3. validate candidate and served model on the held-out events: click AUC (the user-history features
   point in time, from the learner's history) and the heavy-clickbait share of their unmitigated top-20
   over a probe of users × random live candidates;
4. swap the candidate in only if it is not worse: AUC ≥ served AUC − ``max_auc_drop`` and heavy share
   ≤ served share + ``max_heavy_share_rise``; the decision and its reason are kept for ``/v1/models``;
5. on a swap, persist: the checkpoint is written first (its own directory, each file atomically), then
   ``worker.json`` (version, checkpoint, watermark) is replaced atomically. A crash between the two
   leaves the previous pair, which is consistent: on restart the worker loads that checkpoint and
   retrains from that watermark (the orphaned directory is removed).

The held-out events are trained on in the next round (the watermark stops before them). A rejected
candidate's weights stay the learner's (warm start continues from them; it may pass later).
A checkpoint that fails to load at start or on :meth:`reload` leaves the served model as it is; the
error is logged and shown in ``/v1/models`` (``worker.last_error``).

Bounded memory: ``replay_events`` rows of replay, the held-out slice of one round, and the learner's
user history trimmed to ``limits.max_users`` users.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch

from intentrank.clickbait.categories import HEAVY, categorize
from intentrank.errors import IntentRankError
from intentrank.ranking.checkpoint import load_checkpoint, save_checkpoint
from intentrank.ranking.events import load_events
from intentrank.ranking.features import FeatureEncoder, derive_event_columns
from intentrank.ranking.history import history_columns_needed, history_features_for_events
from intentrank.ranking.metrics import auc
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.ranking.trainer import Trainer
from intentrank.service.config import WorkerConfig
from intentrank.serving.incremental import IncrementalTrainer, ModelSlot
from intentrank.serving.ordering import top_s
from intentrank.serving.pipeline import SharedHistory
from intentrank.serving.policy import SlateRequest
from intentrank.serving.ranker import RankerPolicy

log = logging.getLogger("intentrank.service.worker")

STATE_FILE = "worker.json"


class EventWindow(pd.DataFrame):
    """Impressions of ``since < event_id ≤ until`` with a ``watermark()``: what
    :meth:`IncrementalTrainer.update` reads instead of the live store (whose end keeps moving)."""

    _metadata: ClassVar[list[str]] = ["until"]

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def watermark(self) -> int:
        return int(self.until)


@dataclass
class Decision:
    """One round of the worker: what happened and why."""

    at: float
    action: str  # "swapped", "rejected", "skipped", "failed"
    reason: str
    new_events: int = 0
    holdout_events: int = 0
    candidate: dict[str, Any] = field(default_factory=dict)
    served: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    watermark: int | None = None
    seconds: float = 0.0


class TrainingWorker:
    """See the module docstring.

    Args:
        state: the service state (its slot, store, store lock, items, ``publish``).
        config: the worker settings.
        directory: where checkpoints and ``worker.json`` live.
        resume: load ``worker.json``'s checkpoint and watermark when present (else start from the served
            model and the store's current end).
    """

    def __init__(self, state: Any, config: WorkerConfig, directory: str | Path, resume: bool = True) -> None:
        self.state, self.config = state, config
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()  # one round at a time
        self.decisions: list[Decision] = []
        self.last_error: str | None = None
        self.metrics: dict[int, dict[str, Any]] = {}
        self.checkpoint: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = np.random.default_rng(np.random.SeedSequence([state.config.seed, 0x7A1]))
        model, watermark = state.slot.model, None
        if resume:
            got = self._load_saved()
            if got is not None:
                model, watermark, name = got
                state.publish(model, f"worker checkpoint {name} (resumed)")
                self.checkpoint = name
        if watermark is None:
            with state._store_lock:
                watermark = int(state.store.watermark())
            self.checkpoint = self._write_checkpoint(model, watermark, state.slot.version)
        self._clean_orphans()
        self.learner = self._learner(model, watermark)

    # -- persistence ------------------------------------------------------------------------------------
    def _load_saved(self) -> tuple[MultiTaskRanker, int, str] | None:
        """(model, watermark, checkpoint name) of ``worker.json``, or None (absent or unusable: logged)."""
        path = self.dir / STATE_FILE
        if not path.is_file():
            return None
        try:
            saved = json.loads(path.read_text())
            name, wm = str(saved["checkpoint"]), int(saved["watermark"])
            model = load_checkpoint(self.dir / name, self.state.slot.model.config)
        except (OSError, ValueError, KeyError, TypeError, IntentRankError, RuntimeError) as err:
            self._error(f"worker checkpoint in {self.dir} not loaded, the served model stays: {_line(err)}")
            return None
        return model, wm, name

    def _write_checkpoint(self, model: MultiTaskRanker, watermark: int, version: int) -> str:
        """Checkpoint directory first, then ``worker.json`` replaced atomically; returns the name."""
        name = f"v{version:06d}-{int(time.time() * 1000)}"
        save_checkpoint(self.dir / name, model)
        self._between_writes()
        body = {"checkpoint": name, "watermark": int(watermark), "version": int(version),
                "saved_at": time.time()}  # fmt: skip
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{STATE_FILE}.")
        with os.fdopen(fd, "w") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.dir / STATE_FILE)
        old = self.checkpoint
        self.checkpoint = name
        if old is not None and old != name and self.config.keep_checkpoints <= 1:
            shutil.rmtree(self.dir / old, ignore_errors=True)
        self._clean_orphans()
        return name

    def _between_writes(self) -> None:
        """Hook between the checkpoint and ``worker.json`` (tests simulate a crash here)."""

    def _clean_orphans(self) -> None:
        """Remove checkpoint directories that ``worker.json`` does not name, but the newest kept ones."""
        dirs = sorted(p for p in self.dir.iterdir() if p.is_dir() and p.name.startswith("v"))
        keep = {self.checkpoint} | {p.name for p in dirs[-self.config.keep_checkpoints :]}
        for p in dirs:
            if p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)

    def reload(self) -> bool:
        """Serve ``worker.json``'s checkpoint now (an operator's reload); False (and the old model stays,
        the error reported) when it cannot be loaded."""
        with self.lock:
            got = self._load_saved()
            if got is None:
                return False
            model, wm, name = got
            self.state.publish(model, f"worker checkpoint {name} (reloaded)")
            self.checkpoint = name
            self.learner = self._learner(model, wm)
            return True

    def _error(self, msg: str) -> None:
        self.last_error = msg
        log.error(msg)

    # -- the learner ------------------------------------------------------------------------------------
    def _learner(self, model: MultiTaskRanker, watermark: int) -> IncrementalTrainer:
        cfg = model.config
        train = cfg.train.model_copy(
            update={"epochs": self.config.epochs, "progress": False, "valid_fraction": 0.0}
        )
        assert self.checkpoint is not None  # the served model is always checkpointed first
        tr = Trainer.load(self.dir / self.checkpoint, cfg.model_copy(update={"train": train}),
                          warm_start=True, threads=self.config.torch_threads)  # fmt: skip
        history = SharedHistory(cfg.labels.long_click_threshold_s)
        if history_columns_needed(cfg.features) and watermark >= 0:
            with self.state._store_lock:
                imp = self.state.store.read_impressions(None, watermark, "all")
            if len(imp):
                history.update(load_events(imp, self.state.items.snapshot.items))
                history.trim(self.state.config.limits.max_users)
        return IncrementalTrainer(
            tr, slot=ModelSlot(copy.deepcopy(model)), items=self.state.items.snapshot.items,
            replay_events=self.config.replay_events, min_new_events=1, watermark=watermark,
            runs="all", history=history,
        )  # fmt: skip

    # -- one round --------------------------------------------------------------------------------------
    def run_once(self) -> Decision:
        """Train, validate, maybe swap; returns (and records) the decision."""
        with self.lock:
            t0 = time.perf_counter()
            try:
                d = self._round()
            except Exception as err:  # a failed round must never stop serving
                self._error(f"worker round failed, the served model stays: {_line(err)}")
                d = Decision(time.time(), "failed", _line(err))
            d.seconds = round(time.perf_counter() - t0, 3)
            self.decisions.append(d)
            del self.decisions[: -self.config.keep_decisions]
            log.info("worker: %s (%s)", d.action, d.reason)
            return d

    def _round(self) -> Decision:
        st, cfg, inc = self.state, self.config, self.learner
        with st._store_lock:
            last = int(st.store.watermark())
        wm = inc.watermark
        if last - wm < cfg.min_new_events:
            return Decision(time.time(), "skipped", f"{max(last - wm, 0)} new events < min_new_events "
                            f"{cfg.min_new_events}", watermark=wm)  # fmt: skip
        skipped = 0
        if last - wm > cfg.max_new_events:  # bounded memory and lock time: the newest events only
            skipped, wm = last - cfg.max_new_events - wm, last - cfg.max_new_events
            inc.watermark = wm
        with st._store_lock:
            imp = st.store.read_impressions(wm, last, "all")
        imp = imp.sort_values("event_id", kind="stable").reset_index(drop=True)
        n_hold = round(len(imp) * cfg.holdout_fraction)
        cut = int(imp["event_id"].iloc[len(imp) - n_hold - 1]) if n_hold < len(imp) else wm
        train, hold = imp.iloc[: len(imp) - n_hold], imp.iloc[len(imp) - n_hold :]
        if len(train) == 0:
            return Decision(time.time(), "skipped", "nothing to train on before the held-out events")
        items = st.items.snapshot.items
        inc.items = items
        window = EventWindow(train)
        window.until = cut
        rep = inc.update(window)
        if rep is None:
            return Decision(time.time(), "skipped", "the learner found no new events", watermark=wm)
        inc.history.trim(st.config.limits.max_users)
        candidate = inc.slot.model
        served, served_version = st.slot.current()
        hold_j = load_events(hold, items) if len(hold) else hold
        c_m = self.validate(candidate, hold_j)
        s_m = self.validate(served, hold_j)
        d = Decision(time.time(), "rejected", "", rep.new_events, len(hold), c_m, s_m, watermark=cut)
        note = f" ({skipped:,} older event ids skipped: max_new_events)" if skipped else ""
        ok_auc = (
            c_m["click_auc"] is None
            or s_m["click_auc"] is None
            or c_m["click_auc"] >= s_m["click_auc"] - cfg.max_auc_drop
        )
        ok_heavy = c_m["heavy_share"] <= s_m["heavy_share"] + cfg.max_heavy_share_rise
        if not ok_auc:
            d.reason = (f"click AUC {c_m['click_auc']:.4f} < served {s_m['click_auc']:.4f} - "
                        f"{cfg.max_auc_drop:g}{note}")  # fmt: skip
            return d
        if not ok_heavy:
            d.reason = (f"heavy-clickbait share {c_m['heavy_share']:.4f} > served {s_m['heavy_share']:.4f} "
                        f"+ {cfg.max_heavy_share_rise:g}{note}")  # fmt: skip
            return d
        model = copy.deepcopy(candidate).eval()
        version = st.publish(model, f"worker (trained on events ≤ {cut})")
        self.metrics[version] = c_m
        self.metrics.setdefault(served_version, s_m)
        self._write_checkpoint(model, cut, version)
        d.action, d.version = "swapped", version
        auc_txt = "n/a" if c_m["click_auc"] is None else f"{c_m['click_auc']:.4f}"
        d.reason = f"not worse: click AUC {auc_txt}, heavy share {c_m['heavy_share']:.4f}{note}"
        return d

    def validate(self, model: MultiTaskRanker, hold: pd.DataFrame) -> dict[str, Any]:
        """Click AUC on the held-out events and the heavy-clickbait share of the unmitigated top-20 over
        a probe of users × random live candidates."""
        out: dict[str, Any] = {"click_auc": None, "heavy_share": 0.0, "holdout_events": len(hold)}
        inc = self.learner
        spec = model.config.features
        if len(hold):
            frame = hold.reset_index(drop=True)
            need = history_columns_needed(spec)
            if need:
                h = history_features_for_events(
                    frame, long_click_threshold_s=inc.history.long_click_threshold_s, base=inc.history
                )
                frame = frame.assign(**{c: h[c].to_numpy() for c in need})
            enc = FeatureEncoder(spec)
            y = frame["click"].to_numpy(bool)
            if 0 < y.sum() < len(y):
                with torch.inference_mode():
                    p = model.predict(enc.encode(derive_event_columns(frame)))["p_click"].numpy()
                out["click_auc"] = auc(y.astype(np.float64), p.astype(np.float64))
        out["heavy_share"] = self._heavy_share(model, hold)
        return out

    def _heavy_share(self, model: MultiTaskRanker, hold: pd.DataFrame) -> float:
        st, cfg = self.state, self.config
        snap = st.items.snapshot
        live = snap.live_ids
        if len(live) == 0:
            return 0.0
        users = hold["user_id"].unique()[: cfg.probe_users] if len(hold) else np.arange(cfg.probe_users)
        K = min(cfg.probe_candidates, len(live))
        rng = np.random.default_rng(1234)  # the same probe for both models
        cand = np.stack([rng.choice(live, K, replace=False) for _ in users])
        ts = st.now()
        req = SlateRequest(
            np.asarray(users, np.int64), cand, np.zeros(len(users), np.int16), np.full(len(users), ts),
            int(ts // 86_400.0),
        )  # fmt: skip
        pol = RankerPolicy(model, formula=st.formula_of(model), history=self.learner.history)
        s = pol.scores(req, snap)
        top = np.take_along_axis(cand, top_s(s, min(st.config.slate_size, K)), axis=1)
        return float((categorize(snap.clickbait_score[top]) == HEAVY).mean())

    # -- the thread -------------------------------------------------------------------------------------
    def start(self) -> None:
        """Run a round every ``interval_s`` in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="intentrank-worker", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.config.interval_s):
            self.run_once()

    def stop(self, timeout: float | None = 60.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def report(self) -> dict[str, Any]:
        """For ``/v1/models``: the last decision and reason, watermark, checkpoint, last error."""
        last = self.decisions[-1] if self.decisions else None
        return {
            "interval_s": self.config.interval_s,
            "running": self._thread is not None,
            "watermark": self.learner.watermark,
            "checkpoint": self.checkpoint,
            "rounds": len(self.decisions),
            "last_decision": asdict(last) if last is not None else None,
            "last_error": self.last_error,
        }


def _line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300] if text else ''}"
