"""RL alignment with a tiny stand-in actor: KL within the bound, less clickbait at the top."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from intentrank.errors import ConfigError, DataError
from intentrank.mitigation.rl_alignment import ItemSetSampler, RLAligner

N_ITEMS = 300


class StandIn(nn.Module):
    """A 'trained ranker' that likes clickbait: logit = per-item quality + MLP(c)."""

    def __init__(self, c: np.ndarray, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("c", torch.as_tensor(c, dtype=torch.float32))
        self.item = nn.Embedding(len(c), 1)
        with torch.no_grad():
            self.item.weight.copy_(torch.randn(len(c), 1, generator=g) * 0.5)
        self.mlp = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
        with torch.no_grad():  # make the model favour clickbait, as a click-trained ranker does
            self.mlp[0].weight.fill_(1.0)
            self.mlp[0].bias.zero_()
            self.mlp[2].weight.fill_(0.5)
            self.mlp[2].bias.zero_()

    def forward(self, items: torch.Tensor, ctx: torch.Tensor | None) -> torch.Tensor:
        return self.item(items).squeeze(-1) + self.mlp(self.c[items].unsqueeze(-1)).squeeze(-1)


@pytest.fixture
def catalogue() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, N_ITEMS)


@pytest.mark.parametrize("sampling", ["uniform", "popularity", "clickbait"])
def test_alignment_lowers_topk_clickbait_within_kl_bound(catalogue: np.ndarray, sampling: str) -> None:
    torch.manual_seed(0)
    pop = np.random.default_rng(1).poisson(5, N_ITEMS)
    sampler = ItemSetSampler(catalogue, strategy=sampling, popularity=pop)
    model = StandIn(catalogue)
    frozen_state = {k: v.clone() for k, v in model.state_dict().items()}
    aligner = RLAligner(sampler, steps=80, set_size=50, sets_per_step=12, kl_bound=0.1, lr=0.03, eval_sets=48)
    rep = aligner.align(model)
    assert rep.kl <= rep.kl_bound + 1e-9
    assert rep.kl > 0.0  # it moved
    assert rep.mean_c_topk_aligned < rep.mean_c_topk_frozen - 0.02
    assert rep.expected_reward_aligned > rep.expected_reward_frozen
    # independently re-measure with the untouched frozen weights on new sets
    frozen = StandIn(catalogue)
    frozen.load_state_dict(frozen_state)
    items, _ = ItemSetSampler(catalogue).sample(100, 60, np.random.default_rng(7))
    it = torch.from_numpy(items)
    with torch.no_grad():
        lp0 = torch.log_softmax(frozen(it, None), 1)
        lp = torch.log_softmax(model(it, None), 1)
    c = torch.as_tensor(catalogue, dtype=torch.float32)
    top0 = c[it.gather(1, lp0.topk(20, 1).indices)].mean()
    top1 = c[it.gather(1, lp.topk(20, 1).indices)].mean()
    assert top1 < top0
    kl = (lp.exp() * (lp - lp0)).sum(1).mean().item()
    assert kl <= 1.5 * rep.kl_bound  # fresh sets: same order as the bound


def test_tight_bound_is_enforced_by_pullback(catalogue: np.ndarray) -> None:
    torch.manual_seed(0)
    model = StandIn(catalogue)
    aligner = RLAligner(
        ItemSetSampler(catalogue), steps=60, set_size=50, sets_per_step=16, kl_bound=1e-3, lr=0.1, kl_coef=0.0
    )
    rep = aligner.align(model)
    assert rep.kl <= 1e-3 + 1e-12
    assert rep.mean_c_topk_aligned <= rep.mean_c_topk_frozen


def test_neg_lcb_reward_needs_click_scorer(catalogue: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="neg_lcb"):
        RLAligner(ItemSetSampler(catalogue), reward="neg_lcb")
    model = StandIn(catalogue)
    aligner = RLAligner(
        ItemSetSampler(catalogue),
        reward="neg_lcb",
        click_scorer=lambda m, i, c: m(i, c),
        steps=40,
        set_size=50,
        kl_bound=0.1,
        lr=0.02,
    )
    rep = aligner.align(model)
    assert rep.kl <= 0.1 and rep.expected_reward_aligned >= rep.expected_reward_frozen


def test_sampler_draws_distinct_items_and_respects_strategy(catalogue: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    items, ctx = ItemSetSampler(catalogue, contexts=np.arange(5)).sample(200, 40, rng)
    assert items.shape == (200, 40) and ctx is not None and ctx.shape == (200,)
    assert all(len(set(row)) == 40 for row in items)
    cb_items, _ = ItemSetSampler(catalogue, strategy="clickbait", power=3.0).sample(200, 40, rng)
    assert catalogue[cb_items].mean() > catalogue[items].mean() + 0.1


def test_bad_inputs(catalogue: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="popularity"):
        ItemSetSampler(catalogue, strategy="popularity")
    with pytest.raises(ConfigError, match="sampling"):
        ItemSetSampler(catalogue, strategy="nope")
    with pytest.raises(DataError, match="clickbait"):
        ItemSetSampler(np.array([0.1, 1.5]))
    with pytest.raises(ConfigError, match=r"rl_alignment\.kl_bound"):
        RLAligner(ItemSetSampler(catalogue), kl_bound=0.0)
    with pytest.raises(ConfigError, match=r"rl_alignment\.loss_weight"):
        RLAligner(ItemSetSampler(catalogue), loss_weight=-1.0)
    with pytest.raises(ConfigError, match="set_size"):
        RLAligner(ItemSetSampler(catalogue), set_size=N_ITEMS + 1)
