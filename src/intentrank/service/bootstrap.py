"""What ``intentrank serve`` starts from on the embedded defaults: the shipped catalogue and a model.

The model is a saved ranker (``--model DIR`` / ``service.model_dir``) or, when there is none, a quick
one trained at start on a small random simulated log (``service.bootstrap_users`` users, one day, a
uniformly random logging policy), with progress on stderr: enough to serve a sensible feed at once;
a real deployment serves a model of the main job or of its own events.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from intentrank.config import IntentRankConfig
from intentrank.ranking.checkpoint import load_checkpoint
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.ranking.trainer import Trainer
from intentrank.service.state import ServiceState
from intentrank.service.worker import TrainingWorker
from intentrank.simulator.ab import simulate
from intentrank.simulator.catalogue import Catalogue
from intentrank.simulator.sinks import CollectSink


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def quick_model(
    catalogue: Catalogue, cfg: IntentRankConfig, progress: Callable[[str], None] = say
) -> MultiTaskRanker:
    """A ranker trained on a random log of ``cfg.service.bootstrap_users`` simulated users (one day)."""
    svc = cfg.service
    sim_cfg = cfg.simulator.model_copy(update={"users": svc.bootstrap_users, "days": 1})
    progress(f"[serve] no model given: simulating {svc.bootstrap_users:,} users x 1 day under 'random'")
    sink = CollectSink()
    simulate("random", sim_cfg, seed=cfg.seed, catalogue=catalogue, sink=sink)
    return train_quick(sink.table().to_pandas(), catalogue.items, cfg, progress)


def train_quick(
    events: pd.DataFrame, items: pd.DataFrame, cfg: IntentRankConfig, progress: Callable[[str], None] = say
) -> MultiTaskRanker:
    """A ranker trained on ``events`` (``service.bootstrap_epochs`` epochs, progress bars on stderr):
    the quick model of the simulated log, or of a user's own events (``intentrank serve --events``)."""
    svc = cfg.service
    progress(
        f"[serve] training a quick ranker on {len(events):,} impressions ({svc.bootstrap_epochs} epoch(s))"
    )
    train = cfg.ranker.train.model_copy(update={"epochs": svc.bootstrap_epochs, "progress": True})
    trainer = Trainer(cfg.ranker.model_copy(update={"train": train})).fit(events, items)
    return trainer.model_


def serving_model(
    catalogue: Catalogue, cfg: IntentRankConfig, model_dir: Path | None
) -> tuple[MultiTaskRanker, str]:
    """(model, where it came from): the saved one in ``model_dir`` or a quick one (module docstring)."""
    if model_dir is not None:
        say(f"[serve] loading the ranker in {model_dir}")
        return load_checkpoint(model_dir), str(model_dir)
    return quick_model(catalogue, cfg), "quick model (random log)"


def start_worker(state: ServiceState) -> TrainingWorker | None:
    """The incremental training worker of ``state`` (``service.worker``), started; None when disabled.

    Its folder (``worker.directory``, default ``worker/`` next to the store) keeps the checkpoints and
    ``worker.json``: a restarted service resumes the last swapped-in model and its watermark."""
    wcfg = state.config.worker
    if not wcfg.enabled:
        return None
    directory = Path(wcfg.directory) if wcfg.directory else Path(state.config.store_path).parent / "worker"
    worker = TrainingWorker(state, wcfg, directory)
    state.worker = worker
    worker.start()
    say(
        f"[serve] training worker: every {wcfg.interval_s:g} s, checkpoints in {directory} "
        f"(watermark {worker.learner.watermark}, model v{state.slot.version})"
    )
    return worker
