"""Incremental training: learns only what arrived since the watermark, replays a bounded history, swaps
atomically, and a policy serving from the slot picks the new model up."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from intentrank.errors import ConfigError
from intentrank.ranking.config import RankerConfig
from intentrank.ranking.events import load_events
from intentrank.ranking.trainer import Trainer
from intentrank.serving.incremental import EventBatch, IncrementalTrainer, ModelSlot
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


def test_a_batch_read_once_trains_exactly_as_reading_the_store(setup) -> None:
    """The loop reads each window once for every learner: same rows, same weights as a learner's own read."""
    trainer, store, items, later = setup
    a = IncrementalTrainer(copy.deepcopy(trainer), items=items, replay_events=800, max_steps=2)
    b = IncrementalTrainer(copy.deepcopy(trainer), items=items, replay_events=800, max_steps=2)
    since = -1
    for lo, hi in ((0, 1500), (1500, 3000), (3000, 4500)):
        store.append_impressions(later.iloc[lo:hi])
        last = store.watermark()
        ra = a.update(store)
        rb = b.update(store, EventBatch(load_events(store, items, since, last, runs="all"), since, last))
        since = last
        assert (ra.new_events, ra.replayed, ra.steps) == (rb.new_events, rb.replayed, rb.steps)
    assert ra.steps <= 2 and ra.replayed == 800  # the budget holds; the replay sample is bounded
    for p, q in zip(a.slot.model.parameters(), b.slot.model.parameters(), strict=True):
        assert torch.equal(p, q)
    # a batch that does not start at the learner's watermark is ignored: it reads the store instead
    store.append_impressions(later.iloc[4500:5000])
    stale = EventBatch(later.iloc[:10], since - 5, store.watermark())
    assert a.update(store, stale).new_events == 500


def test_swaps_copy_into_the_retired_model_and_serve_the_trained_weights(setup) -> None:
    trainer, store, items, later = setup
    inc = IncrementalTrainer(trainer, items=items, max_steps=1)
    first = inc.slot.model
    store.append_impressions(later.iloc[:1000])
    inc.update(store)
    second = inc.slot.model
    store.append_impressions(later.iloc[1000:2000])
    inc.update(store)
    # double buffering: the model retired by the first swap receives the next copy
    assert inc.slot.model is first and second is not first and inc.slot.model is not trainer.model_
    for p, q in zip(inc.slot.model.parameters(), trainer.model_.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(("arg", "value"), [("replay_events", -1), ("max_steps", 0), ("replay_ratio", -0.5)])
def test_bad_learner_settings_name_the_argument(setup, arg: str, value: float) -> None:
    with pytest.raises(ConfigError, match=arg):
        IncrementalTrainer(setup[0], **{arg: value})


def test_heldout_rows_are_scored_before_training_and_published_weights_equal_the_trained(setup) -> None:
    trainer, store, items, later = setup
    inc = IncrementalTrainer(trainer, items=items, max_steps=1, heldout_every=2)
    for k in range(6):
        store.append_impressions(later.iloc[k * 400 : (k + 1) * 400])
        inc.update(store)
        served = dict(inc.slot.model.named_parameters())
        for name, p in trainer.model_.named_parameters():
            assert torch.equal(served[name], p), (k, name)
    # progressive validation: every 2nd update's new rows scored before training on them
    assert [h[0] for h in inc.heldout] == [0, 2, 4]
    assert sum(len(h[2]) for h in inc.heldout) == 1200
    auc = inc.heldout_auc()
    assert auc is not None and 0.0 < auc < 1.0
