"""Incremental training: learns only what arrived since the watermark, replays a bounded history, swaps
atomically, and a policy serving from the slot picks the new model up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from intentrank.ranking.config import RankerConfig
from intentrank.ranking.trainer import Trainer
from intentrank.serving.incremental import IncrementalTrainer, ModelSlot
from intentrank.serving.policy import SlateRequest
from intentrank.serving.ranker import RankerPolicy
from intentrank.store import EventStore

from ..ranking.conftest import make_events

SMALL = {
    "train": {"epochs": 1, "progress": False, "valid_fraction": 0.0, "batch_size": 256},
    "model": {"mlp_hidden": [16], "tower_hidden": [8], "cross": {"layers": 1, "rank": 4}},
}


class _Items:
    def __init__(self, items: pd.DataFrame) -> None:
        self.items, self.clickbait_score = items, items["clickbait_score"].to_numpy()


@pytest.fixture()
def setup(tmp_path):
    imp, items = make_events(n_slates=600, seed=4)
    producer = imp.drop(columns=["event_id"])
    first, later = producer.iloc[:4000], producer.iloc[4000:]
    trainer = Trainer(RankerConfig.model_validate(SMALL)).fit(first, items)
    store = EventStore(tmp_path / "ev.duckdb")
    store.write_items(items)
    return trainer, store, items, later


def _params(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_updates_learn_new_events_only_and_swap(setup) -> None:
    trainer, store, items, later = setup
    inc = IncrementalTrainer(trainer, items=items, replay_events=1000)
    served_before = inc.slot.model
    assert inc.update(store) is None  # nothing in the store yet
    store.append_impressions(later.iloc[:3000])
    rep = inc.update(store)
    assert rep is not None and rep.new_events == 3000 and rep.replayed == 0 and rep.version == 1
    assert inc.watermark == store.watermark() and inc.update(store) is None  # nothing new since
    assert inc.slot.model is not served_before  # a new object published, the old one untouched
    pairs = zip(_params(served_before), _params(inc.slot.model), strict=True)
    assert any(not torch.equal(a, b) for a, b in pairs)
    # the served copy is not the object being trained further
    assert inc.slot.model is not trainer.model_
    store.append_impressions(later.iloc[3000:5000])
    rep2 = inc.update(store)
    assert rep2.new_events == 2000 and rep2.replayed == 1000 and rep2.version == 2
    assert inc.slot.swaps == 2


def test_arm_filter_reads_only_that_arms_events(setup) -> None:
    trainer, store, items, later = setup
    batch = later.iloc[:2000].copy()
    batch["policy"] = np.where(np.arange(2000) % 2 == 0, "a", "b")
    store.append_impressions(batch)
    rep = IncrementalTrainer(trainer, items=items, arm="a").update(store)
    assert rep.new_events == 1000


def test_policy_serving_from_the_slot_sees_swaps(setup) -> None:
    trainer, store, items, later = setup
    slot = ModelSlot(trainer.model_)
    pol = RankerPolicy(slot)
    req = SlateRequest(np.arange(2), np.arange(40).reshape(2, 20), np.zeros(2, np.int16), np.zeros(2), 0)
    before = pol.scores(req, _Items(items))
    inc = IncrementalTrainer(trainer, slot=slot, items=items)
    store.append_impressions(later.iloc[:3000])
    inc.update(store)
    assert pol.model is slot.model and slot.version == 1
    assert not np.allclose(before, pol.scores(req, _Items(items)))
