"""The methods on the real MultiTaskRanker / Trainer, composed through MitigationPlan."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from intentrank.errors import ConfigError
from intentrank.mitigation.aux_loss import AuxClickbaitLoss, ClickbaitDownweight
from intentrank.mitigation.heuristic import HeuristicPenalty
from intentrank.mitigation.pipeline import MitigationPlan, encoder_width, parse_mitigation
from intentrank.mitigation.shallow_tower import HeadMaskedRanker
from intentrank.ranking.features import FeatureEncoder
from intentrank.ranking.models.multitask import MultiTaskRanker
from intentrank.ranking.trainer import Trainer

from .conftest import tiny_ranker_config


def _batch(cfg, n: int = 64, c: float | torch.Tensor = 0.5) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    cat = torch.stack([torch.randint(0, f.buckets, (n,), generator=g) for f in cfg.features.categorical], 1)
    dense = torch.rand(n, len(cfg.features.dense), generator=g)
    j = [f.name for f in cfg.features.dense].index("clickbait_score")
    dense[:, j] = c
    return FeatureEncoder(cfg.features).to_batch(cat, dense)


@pytest.mark.parametrize("heads", [["click"], ["click", "dwell", "conversion"]])
def test_shallow_tower_serving_ignores_c_training_uses_it(heads: list[str]) -> None:
    plan = MitigationPlan([{"method": "shallow_tower", "dropout": 0.0, "heads": heads}])
    cfg = plan.ranker_config(tiny_ranker_config())
    assert cfg.shallow_tower is not None and cfg.shallow_tower.features == ["clickbait_score"]
    c_feat = next(f for f in cfg.features.dense if f.name == "clickbait_score")
    assert not c_feat.to_main  # only the tower sees c
    model = plan.build_model(cfg)
    assert isinstance(model, HeadMaskedRanker) == (len(heads) < 3)
    with torch.no_grad():  # make the tower's weight clearly non-zero
        for p in model.shallow.parameters():
            p.add_(0.5)
    lo, hi = _batch(cfg, c=0.0), _batch(cfg, c=1.0)
    model.train()
    with torch.no_grad():
        for task in ("click", "dwell", "conversion"):
            moved = not torch.allclose(model(lo)[task], model(hi)[task])
            assert moved == (task in heads)
    model.eval()
    with torch.no_grad():
        for task in ("click", "dwell", "conversion"):
            torch.testing.assert_close(model(lo)[task], model(hi)[task])


def test_head_masked_ranker_round_trips_weights() -> None:
    cfg = MitigationPlan(["shallow_tower"]).ranker_config(tiny_ranker_config())
    base = MultiTaskRanker(cfg)
    masked = HeadMaskedRanker.from_ranker(base)
    assert set(masked.state_dict()) == set(base.state_dict())
    with pytest.raises(ConfigError, match="heads"):
        HeadMaskedRanker(cfg, heads=["ctr"])


def test_unmitigated_model_does_depend_on_c_at_serving() -> None:
    """Control for the test above: with c as a plain feature, serving scores move with c."""
    cfg = MitigationPlan(["plain_feature"]).ranker_config(tiny_ranker_config())
    torch.manual_seed(0)
    model = MultiTaskRanker(cfg).eval()
    with torch.no_grad():
        assert not torch.allclose(model(_batch(cfg, c=0.0))["click"], model(_batch(cfg, c=1.0))["click"])


def _click_gap(trainer: Trainer, log: pd.DataFrame, items: pd.DataFrame) -> float:
    """log(mean predicted p_click of heavy (c ≥ 0.7) / that of clean (c < 0.4) impressions).

    A ratio, not a difference: down-weighting also shrinks p_click overall, which would shrink a
    difference toward 0 even when clickbait loses relative to clean items.
    """
    pred = trainer.predict(log, items)
    c = log.merge(items[["item_id", "clickbait_score"]], on="item_id")["clickbait_score"].to_numpy()
    return float(np.log(pred["p_click"][c >= 0.7].mean() / pred["p_click"][c < 0.4].mean()))


def test_aux_loss_and_downweight_lower_clickbait_ctr_through_trainer(sim_log) -> None:
    log, items = sim_log
    gaps = {}
    for name, methods in {
        "none": [],
        "aux_loss": [{"method": "aux_loss", "weight": 2.0}],
        "downweight": [{"method": "downweight", "strength": 0.9, "threshold": 0.3}],
    }.items():
        plan = MitigationPlan(methods)
        trainer = plan.make_trainer(tiny_ranker_config())
        hooks = plan.trainer_hooks(MultiTaskRanker(trainer.config))
        if name == "aux_loss":
            assert isinstance(hooks.extra_losses[0], AuxClickbaitLoss)
        if name == "downweight":
            assert isinstance(hooks.sample_weight_fn, ClickbaitDownweight)
        plan.fit(trainer, log, items)
        gaps[name] = _click_gap(trainer, log, items)
    # init seeds 0-4: none -0.22..-0.46, aux_loss 0.47-1.5 lower, downweight 0.16-0.27 lower
    assert gaps["aux_loss"] < gaps["none"] - 0.3
    assert gaps["downweight"] < gaps["none"] - 0.1


def test_adversarial_head_trains_alongside(sim_log) -> None:
    log, items = sim_log
    plan = MitigationPlan([{"method": "adversarial", "weight": 1.0, "hidden": 8}])
    trainer = Trainer(plan.ranker_config(tiny_ranker_config(epochs=1)))
    seen: dict = {}

    def hooks_for(model: torch.nn.Module) -> dict:
        hooks = plan.trainer_hooks(model)
        (head,) = hooks.extra_modules
        assert head.net[0].in_features == encoder_width(model)
        seen["head"], seen["before"] = head, [p.detach().clone() for p in head.parameters()]
        return hooks.as_kwargs()

    trainer.fit(log, items, hooks_for=hooks_for)
    after = seen["head"].parameters()
    assert any(not torch.equal(a, b) for a, b in zip(seen["before"], after, strict=True))


def test_rl_alignment_on_the_ranker(sim_log) -> None:
    log, items = sim_log
    plan = MitigationPlan(
        [{"method": "rl_alignment", "steps": 25, "set_size": 50, "sets_per_step": 8, "lr": 0.01,
          "kl_bound": 0.05, "eval_sets": 32, "sampling": "popularity"}]
    )  # fmt: skip
    trainer = Trainer(plan.ranker_config(tiny_ranker_config(epochs=2)))
    result = plan.fit(trainer, log, items)
    rep = result["alignment"]
    assert rep["kl"] <= rep["kl_bound"] + 1e-9
    assert rep["mean_c_topk_aligned"] < rep["mean_c_topk_frozen"]
    assert not trainer.model_.training


def test_combination_composes_every_stage() -> None:
    plan = MitigationPlan(["shallow_tower", "aux_loss", "heuristic"])
    cfg = plan.ranker_config(tiny_ranker_config())
    assert cfg.shallow_tower is not None
    model = MultiTaskRanker(cfg)
    hooks = plan.trainer_hooks(model)
    assert len(hooks.extra_losses) == 1 and hooks.sample_weight_fn is None and not hooks.extra_modules
    (pp,) = plan.post_processors()
    assert isinstance(pp, HeuristicPenalty)
    scores, c = np.ones((2, 3)), np.array([[0.0, 0.5, 1.0], [0.1, 0.2, 0.9]])
    assert np.all(np.diff(pp(scores, c)[0]) < 0)
    assert MitigationPlan([]).post_processors() == []
    assert MitigationPlan(None).ranker_config(cfg) == cfg


def test_ranker_config_adds_missing_c_feature() -> None:
    base = tiny_ranker_config()
    base = base.model_copy(
        update={"features": base.features.model_copy(update={"dense": base.features.dense[1:]})}
    )
    cfg = MitigationPlan(["aux_loss"]).ranker_config(base)
    c = next(f for f in cfg.features.dense if f.name == "clickbait_score")
    assert not c.to_main  # in the batch for the loss, not an input of the network


@pytest.mark.parametrize(
    ("methods", "msg"),
    [
        (["heuristic", "heuristic"], "repeated: heuristic"),
        (["shallow_tower", "plain_feature"], "both a shallow-tower feature and a plain input"),
        (["nope"], "method"),
        ([{"method": "aux_loss", "weight": -1}], r"mitigation\.methods\.0\.aux_loss\.weight"),
        ([{"method": "adversarial", "reversal": -1}], "reversal"),
        ([{"method": "rl_alignment", "kl_bound": -0.1}], "kl_bound"),
        ([{"method": "rl_alignment", "sampling": "by_magic"}], "sampling"),
        ([{"method": "heuristic", "l": 0.8, "h": 0.2}], "l must be < h"),
        ([{"method": "downweight", "strength": 2}], "strength"),
        ([{"method": "heuristic", "bogus": 1}], "bogus"),
    ],
)
def test_bad_mitigation_configs(methods: list, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        parse_mitigation(methods)


def test_whole_config_file_carries_mitigation(tmp_path) -> None:
    from intentrank.config import load_config

    p = tmp_path / "c.yaml"
    p.write_text(
        "mitigation:\n  methods:\n    - method: shallow_tower\n    - {method: heuristic, w: 0.3, d: 0.05}\n"
    )
    cfg = load_config(p)
    assert cfg.mitigation.names() == ["shallow_tower", "heuristic"]
    p.write_text("mitigation:\n  methods:\n    - {method: heuristic, d: 0.6}\n")
    with pytest.raises(ConfigError, match=r"mitigation\.methods\.0\.heuristic\.d"):
        load_config(p)
