"""Feature hashing: the one-integer hash of the request path equals the vectorised one of training."""

from __future__ import annotations

import numpy as np

from intentrank.ranking.features import hash_bucket_int, hash_buckets


def test_hash_bucket_int_equals_hash_buckets() -> None:
    rng = np.random.default_rng(0)
    ids = np.r_[rng.integers(-(2**62), 2**62, 2_000), [0, 1, -1, 2**63 - 1, -(2**63)]].astype(np.int64)
    for buckets in (1, 24, 64, 200_003):
        want = hash_buckets(ids, buckets)
        got = np.array([hash_bucket_int(int(v), buckets) for v in ids])
        np.testing.assert_array_equal(got, want)
    assert len(set(hash_buckets(ids, 200_003).tolist())) > 1_900  # the check can fail: buckets differ
