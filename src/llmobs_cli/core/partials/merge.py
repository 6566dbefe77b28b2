"""Merging partial frames: a plain group-by over the ``k:`` columns.

``sum:`` columns add, ``min:`` / ``max:`` columns take the min / max. Exact, associative
and order-independent (up to float summation order), so partials from any number of
batches, files, processes or cluster workers merge into the same totals.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl


def merge_aggs(columns: Iterable[str]) -> list[pl.Expr]:
    """The aggregation of each non-key partial column, named for how it merges."""
    out = []
    for c in columns:
        if c.startswith("k:"):
            continue
        if c.startswith("min:"):
            out.append(pl.col(c).min())
        elif c.startswith("max:"):
            out.append(pl.col(c).max())
        else:
            out.append(pl.col(c).sum())
    return out


def merge(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Merge partial frames (same columns) into one with a row per distinct key."""
    frames = [f for f in frames if f.height]
    if not frames:
        raise ValueError("merge needs at least one non-empty partial frame")
    df = pl.concat(frames, how="vertical_relaxed")
    keys = [c for c in df.columns if c.startswith("k:")]
    return df.group_by(keys).agg(merge_aggs(df.columns)).select(df.columns)


class Merger:
    """Merges partials as they arrive, keeping at most ``pending`` unmerged frames (and
    so memory bounded by the merged size, not by the number of batches)."""

    def __init__(self, pending: int = 4) -> None:
        self.pending = pending
        self._frames: list[pl.DataFrame] = []
        self._merged: pl.DataFrame | None = None

    def add(self, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        self._frames.append(frame)
        if len(self._frames) >= self.pending:
            self._fold()

    def _fold(self) -> None:
        frames = ([self._merged] if self._merged is not None else []) + self._frames
        self._frames = []
        if frames:
            self._merged = merge(frames)

    def result(self) -> pl.DataFrame | None:
        """The merged partials (None when nothing was added)."""
        self._fold()
        return self._merged
