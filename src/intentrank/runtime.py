"""The one place that applies thread and seed settings to torch.

Setting torch's thread count or global seed in library code leaks into the caller's process; these
context managers apply a setting for a block and restore what was there before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with ``threads`` intra-op torch threads (None: leave torch's setting as it is)."""
    import torch

    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def torch_seed(seed: int) -> Iterator[None]:
    """Run the block with torch's global RNG seeded by ``seed``; the caller's RNG state is restored after
    (e.g. to initialise a model's weights reproducibly without touching anyone else's randomness)."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield
