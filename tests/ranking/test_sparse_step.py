"""The online step's fast coalescing of sparse embedding gradients equals torch's ``coalesce``."""

from __future__ import annotations

import copy

import torch

from intentrank.ranking.trainer import _coalesce


def test_fast_coalesce_sums_duplicate_rows_like_coalesce() -> None:
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (400,), generator=gen)
    vals = torch.randn(400, 4, generator=gen)
    grad = torch.sparse_coo_tensor(ids.unsqueeze(0), vals, (1000, 4), check_invariants=True)
    fast, ref = _coalesce(grad), grad.coalesce()
    assert fast.is_coalesced() and torch.equal(fast.indices(), ref.indices())
    torch.testing.assert_close(fast.values(), ref.values())
    torch.testing.assert_close(fast.to_dense(), grad.to_dense())


def test_sparse_adam_steps_on_fast_coalesced_gradients_match() -> None:
    torch.manual_seed(1)
    bag = torch.nn.EmbeddingBag(300, 8, mode="mean", sparse=True)
    other = copy.deepcopy(bag)
    opts = [torch.optim.SparseAdam(m.parameters(), lr=0.01) for m in (bag, other)]
    for _ in range(3):
        ids = torch.randint(1, 40, (600,))
        offsets = torch.arange(0, 600, 12)
        for m, o, fast in ((bag, opts[0], False), (other, opts[1], True)):
            o.zero_grad()
            (m(ids, offsets) ** 2).sum().backward()
            if fast:
                m.weight.grad = _coalesce(m.weight.grad)
            o.step()
    torch.testing.assert_close(bag.weight, other.weight)
