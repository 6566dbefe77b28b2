"""Bounded, mergeable samples of whole clusters (sessions), chosen by hash.

A :class:`ClusterSample` keeps every row whose cluster hash is at most a threshold, and
lowers the threshold whenever the rows kept pass the cap, so it always holds the rows of
the clusters with the smallest hashes (a bottom-k sample of clusters). The hash is a
fixed function of the session (else trace) id, so the sample does not depend on the
order or the grouping of the batches: samples of any split of the input merge into the
sample of the whole. While the threshold was never lowered the sample is *complete*:
it holds every row, and the statistics computed on it are those of all rows.

Because clusters are drawn with equal probability whatever their content, a weighted
share or mean over the sample estimates the population's; each row keeps its weight
``1/sample_rate``.
"""

from __future__ import annotations

import polars as pl

from llmobs_cli.core.drift.partials import CL, SEQ
from llmobs_cli.core.drift.result import WIN

_MAX = (1 << 64) - 1


def compact(frame: pl.DataFrame) -> pl.DataFrame:
    """A copy of ``frame`` that owns its data.

    A few rows filtered out of a batch still point into the batch's string buffers (Arrow
    string views), so keeping them would keep every batch's text alive: memory would grow
    with the input. Copying the text columns out cuts those references."""
    strings = [c for c, t in frame.schema.items() if t in (pl.String, pl.Binary) or t.is_nested()]
    if not strings or not frame.height:
        return frame
    table = frame.select(strings).to_arrow(compat_level=pl.CompatLevel.oldest())
    return frame.with_columns(pl.from_arrow(table).get_columns())  # type: ignore[union-attr]


class ClusterSample:
    """Rows of the clusters with the smallest hashes, at most ``cap`` rows per stratum.

    ``per_window`` caps each window separately (the text sample); otherwise the cap is on
    all rows together.
    """

    def __init__(self, cap: int, *, per_window: bool = False) -> None:
        self.cap = cap
        self.per_window = per_window
        self.threshold: dict[int, int] = {}
        self._frames: list[pl.DataFrame] = []
        self._rows = 0
        self._frame: pl.DataFrame | None = None

    def _limit(self, win: int | None) -> int:
        return self.threshold.get(-1 if win is None else win, _MAX)

    @property
    def complete(self) -> bool:
        """True while no cluster was dropped (the sample is all rows)."""
        return not self.threshold

    def adopt(self, cut: dict[int, int]) -> None:
        """Lower the thresholds to ``cut`` (a batch cut its own rows there: a cluster
        above it may be missing rows, so none above it may stay)."""
        for key, limit in cut.items():
            self.threshold[key] = min(self.threshold.get(key, _MAX), limit)

    def add(self, rows: pl.DataFrame, cut: dict[int, int] | None = None) -> None:
        if cut:
            self.adopt(cut)
        if not rows.height:
            return
        rows = self._cut(rows)
        if not rows.height:
            return
        self._frames.append(compact(rows))
        self._rows += rows.height
        # Thinning is cheap (a group-by of the cluster hashes) and, once the threshold is
        # set, rare; holding twice the cap between thinnings cost 0.4 GB at the default
        # cap on kB-wide rows. The bottom-k is the same whenever it is thinned.
        if self._rows > self.cap + self.cap // 4:
            self._thin()

    def _cut(self, rows: pl.DataFrame) -> pl.DataFrame:
        if not self.threshold:
            return rows
        if self.per_window:
            cond = pl.lit(False)
            for win in rows[WIN].unique().to_list():
                cond = cond | ((pl.col(WIN) == win) & (pl.col(CL) <= self._limit(win)))
            return rows.filter(cond)
        return rows.filter(pl.col(CL) <= self._limit(None))

    def _thin(self) -> None:
        frame = pl.concat(self._frames, how="vertical_relaxed")
        if self.per_window:
            kept = []
            for (win,), part in frame.partition_by(WIN, as_dict=True).items():
                kept.append(self._bottom(part, int(win)))
            frame = pl.concat(kept, how="vertical_relaxed")
        else:
            frame = self._bottom(frame, None)
        self._frames = [frame]
        self._rows = frame.height

    def _bottom(self, frame: pl.DataFrame, win: int | None) -> pl.DataFrame:
        if frame.height <= self.cap:
            return frame
        sizes = frame.group_by(CL).agg(pl.len().alias("n")).sort(CL)
        cum = sizes["n"].cum_sum()
        fits = sizes.filter(cum <= self.cap)
        # At least one cluster is kept even when it alone passes the cap.
        limit = int(fits[CL].max()) if fits.height else int(sizes[CL][0])  # type: ignore[arg-type]
        key = -1 if win is None else win
        self.threshold[key] = min(self.threshold.get(key, _MAX), limit)
        return frame.filter(pl.col(CL) <= limit)

    def result(self) -> pl.DataFrame | None:
        """The sample ordered by window (baseline first), time and cluster, or None."""
        if self._frame is None:
            if not self._frames:
                return None
            self._frames = [self._cut(pl.concat(self._frames, how="vertical_relaxed"))]
            self._thin()
            frame = self._frames[0]
            # An order every engine reproduces (the tests' resampling follows row order).
            order = [c for c in (WIN, "timestamp", CL, SEQ) if c in frame.columns]
            self._frame = frame.sort(order)
        return self._frame
