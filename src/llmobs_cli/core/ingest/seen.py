"""The set of call keys already read, for counting a call read twice once.

A stream keeps one 64-bit hash per distinct call with a given span id; this module owns
that set's layout (sorted runs) so that lookups and inserts stay O(log n) per key however
many batches arrive.
"""

from __future__ import annotations

import numpy as np


class SeenSet:
    """A set of 64-bit hashes in sorted runs whose sizes halve (log-structured): adding
    ``n`` hashes costs O(n log n) in all, a lookup one binary search per run. Memory is 8
    bytes per distinct hash (the one state of a stream that grows with its rows).

    Two sorted runs are merged by a stable sort of their concatenation: numpy's stable sort
    of 64-bit integers is a timsort, which finds the two runs and merges them (measured
    36 ms for two runs of 4M keys, the default sort 56 ms); ``np.union1d`` once per batch
    over every key seen took a fifth of a report's time on 2M rows."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def contains(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h).astype(np.uint64, copy=False)
        out = np.zeros(len(h), dtype=bool)
        if not len(h) or not self._runs:
            return out
        # Sorted needles make each binary search walk nearby memory (several times faster).
        order = np.argsort(h)
        needles = h[order]
        found = np.zeros(len(h), dtype=bool)
        for run in self._runs:
            i = np.searchsorted(run, needles)
            i[i == len(run)] = 0
            found |= run[i] == needles
        out[order] = found
        return out

    def add(self, h: np.ndarray) -> None:
        if not len(h):
            return
        run = np.unique(np.asarray(h).astype(np.uint64, copy=False))
        while self._runs and len(self._runs[-1]) <= len(run):
            run = _merge_sorted(self._runs.pop(), run)
        self._runs.append(run)


def _merge_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted distinct values of two sorted distinct arrays (a linear-time merge)."""
    both = np.concatenate([a, b])
    both.sort(kind="stable")
    if len(both) > 1:
        keep = np.empty(len(both), dtype=bool)
        keep[0] = True
        np.not_equal(both[1:], both[:-1], out=keep[1:])
        if not keep.all():
            both = both[keep]
    return both
