"""The random stream of one feed page: a function of (seed, user, session, page) only.

The service's random retrieval used to draw from one generator shared by all requests, so a page's
candidates depended on which requests happened to come before it (the order of concurrent requests):
the same seed gave another outcome with more than one request in flight, and no in-process run could
draw the same candidates. Seeding each page by what identifies it makes the draw reproducible whatever
the order or concurrency, and lets the simulator's in-process counterpart of the service
(:func:`intentrank.simulator.http_client.simulate_like_the_service`) draw exactly the candidates the
service draws for the same page.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["request_rng"]

_MASK64 = (1 << 64) - 1


def request_rng(seed: int, user_id: int, session_key: str, slate_index: int) -> np.random.Generator:
    """The generator of page ``slate_index`` of session ``session_key`` of ``user_id`` (service seed
    ``seed``); the session key enters through a stable 64-bit hash (BLAKE2b), never Python's ``hash``.

    Example:
        >>> a = request_rng(0, 7, "s1", 0).integers(0, 1000, 3)
        >>> bool((a == request_rng(0, 7, "s1", 0).integers(0, 1000, 3)).all())
        True
    """
    key = int.from_bytes(hashlib.blake2b(session_key.encode(), digest_size=8).digest(), "little")
    words = [int(seed) & _MASK64, 0xFEED, int(user_id) & _MASK64, key, int(slate_index) & _MASK64]
    return np.random.default_rng(np.random.SeedSequence(words))
