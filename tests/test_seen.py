"""The stream's set of call keys (sorted runs) against a plain Python set."""

from __future__ import annotations

import numpy as np

from llmobs_cli.core.ingest.seen import SeenSet, _merge_sorted


def test_seen_set_matches_a_python_set_across_many_batches() -> None:
    rng = np.random.default_rng(3)
    seen, truth = SeenSet(), set()
    for size in [1, 5, 100, 7, 3000, 1, 250, 4096, 17, 9000, 2]:
        # Small key space: batches repeat each other's keys and their own.
        batch = rng.integers(0, 20_000, size).astype(np.uint64)
        got = seen.contains(batch)
        assert got.tolist() == [int(k) in truth for k in batch]
        seen.add(batch)
        truth.update(int(k) for k in batch)
    probe = np.arange(20_000, dtype=np.uint64)
    assert seen.contains(probe).tolist() == [int(k) in truth for k in probe]


def test_seen_set_keeps_full_64_bit_keys() -> None:
    seen = SeenSet()
    big = np.array([2**64 - 1, 2**63, 0], dtype=np.uint64)
    seen.add(big)
    assert seen.contains(np.array([2**64 - 1, 2**64 - 2, 0, 1], dtype=np.uint64)).tolist() == [
        True,
        False,
        True,
        False,
    ]
    assert not SeenSet().contains(big).any()


def test_merge_sorted_is_the_sorted_union() -> None:
    a = np.array([1, 4, 9, 12], dtype=np.uint64)
    b = np.array([2, 4, 12, 30], dtype=np.uint64)
    assert _merge_sorted(a, b).tolist() == [1, 2, 4, 9, 12, 30]
    assert _merge_sorted(a[:0], b).tolist() == b.tolist()
