"""The harness's learner modes: ``learner: shared`` (one model learns from every arm's traffic) and
``rl_every`` (RL alignment on every k-th update of its arm's model)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from intentrank.experiments.abtest import AligningLearner, run_abtest
from intentrank.serving.incremental import IncrementalTrainer
from tests.experiments.conftest import tiny_config


class _FakeInner:
    """An inner learner whose ``update`` learns (appends a report) when told to."""

    def __init__(self) -> None:
        self.reports: list[str] = []
        self.last_contexts = pd.DataFrame({"user_id": [1], "ts": [0.0], "slate_index": [0]})
        labels = SimpleNamespace(long_click_threshold_s=30)
        self.trainer = SimpleNamespace(model_=object(), formula=None, config_=SimpleNamespace(labels=labels))
        self.history = None
        self.learn_next = True

    def update(self, store: Any, batch: Any = None) -> str | None:
        if not self.learn_next:
            return None
        self.reports.append(f"r{len(self.reports)}")
        return self.reports[-1]


def _aligner(inner: _FakeInner, every: int) -> tuple[AligningLearner, list[int]]:
    aligned_at: list[int] = []
    al = AligningLearner(inner, SimpleNamespace(), SimpleNamespace(), pd.DataFrame(), every=every)  # type: ignore[arg-type]
    al.align_and_publish = lambda contexts: (aligned_at.append(len(inner.reports)),  # type: ignore[method-assign]
                                             al.alignments.append({}))  # fmt: skip
    return al, aligned_at


def test_rl_every_2_aligns_after_every_second_update() -> None:
    inner = _FakeInner()
    al, aligned_at = _aligner(inner, every=2)
    for i in range(7):
        inner.learn_next = i != 3  # the 4th call learns nothing: no update, no alignment
        al.update(None)
    assert len(inner.reports) == 6 and al.updates == 6
    assert aligned_at == [2, 4, 6]
    one, at_one = _aligner(_FakeInner(), every=1)
    for _ in range(3):
        one.update(None)
    assert at_one == [1, 2, 3]


def test_an_aligner_on_a_shared_learner_aligns_after_another_arms_update() -> None:
    # the shared model is updated by the control arm's call first; the RL arm's call then learns nothing
    # new itself but must still count that update and align
    inner = _FakeInner()
    al, aligned_at = _aligner(inner, every=1)
    for _ in range(3):
        inner.learn_next = True
        inner.update(None)  # another arm's call
        inner.learn_next = False
        assert al.update(None) is not None  # the RL arm's call reports the shared update
    assert aligned_at == [1, 2, 3] and al.updates == 3


ARMS = [
    {"name": "control", "learner": "shared"},
    {"name": "heuristic", "mitigation": [{"method": "heuristic", "w": 0.9}], "learner": "shared"},
    {"name": "rl", "learner": "shared",
     "mitigation": [{"method": "rl_alignment", "steps": 5, "set_size": 20, "sets_per_step": 4}]},
]  # fmt: skip


@pytest.fixture(scope="module")
def shared_run(tiny_pool, tmp_path_factory):
    seen: list[tuple[int, str | None, frozenset[str]]] = []
    original = IncrementalTrainer._new_events

    def spy(self: IncrementalTrainer, store: Any, batch: Any) -> Any:
        frame, last = original(self, store, batch)
        if frame is not None and len(frame):
            seen.append((id(self), self.arm, frozenset(frame["policy"].unique())))
        return frame, last

    mp = pytest.MonkeyPatch()
    mp.setattr(IncrementalTrainer, "_new_events", spy)
    try:
        cfg = tiny_config(ARMS, users=400, window_min=720, rl_every=2)
        res = run_abtest(cfg, tmp_path_factory.mktemp("shared") / "store", pool=tiny_pool, progress=False)
    finally:
        mp.undo()
    return res, seen


def test_a_shared_learner_learns_from_every_arms_traffic(shared_run) -> None:
    res, seen = shared_run
    assert seen, "no learner read any events"
    learners = {lid for lid, _, _ in seen}
    assert len(learners) == 1  # one model for the recipe, not one per arm
    assert all(arm is None for _, arm, _ in seen)  # reads all traffic, not one arm's
    policies = frozenset().union(*(p for _, _, p in seen))
    assert {"control", "control_aa", "heuristic", "rl"} <= policies
    assert max(len(p) for _, _, p in seen) >= 3  # one update's rows came from several arms
    n = {res.updates[a] for a in ("control", "control_aa", "heuristic", "rl")}
    assert len(n) == 1 and n.pop() >= 2, res.updates  # the arms share its updates


def test_rl_every_2_in_the_harness(shared_run) -> None:
    res, _ = shared_run
    updates = res.updates["rl"]
    assert updates >= 2
    assert res.extra["alignments"]["rl"] == 1 + updates // 2  # the initial alignment + every 2nd update
