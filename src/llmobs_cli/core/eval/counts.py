"""The eval plan's stratum counts as mergeable partials (pass 1 of a streaming eval).

:func:`stratum_partials` is a pure function of one batch of canonical rows and a picklable
:class:`CountSpec`: for every window of the spec it gives, per stratum (the ``--by``
fields crossed with ``route``, as :func:`core.eval.plan.keyed` makes them), the additive
counts the plan needs — rows (``sum:n``), Σw (``sum:calls``, w = 1/sample_rate), eligible
rows (``sum:rows``), eligible Σw (``sum:elig_calls``), Σw² (``sum:w2``) and the first and
last timestamp — and, for the distinct eligible traces a stratum holds, one partial row
per (window × stratum, trace) keyed by 64-bit hashes (``k:g``, ``k:sid``). Merged by
:class:`EvalMerger` (or any engine's group-by: :mod:`core.engines.run`) they give
:func:`totals_of`, the exact frame :func:`core.eval.plan.stratum_totals` computes on the
whole window, so the plan — and with it the selection — is the same whichever way the
rows arrived.

Memory: the strata part has a row per window × stratum; the traces part 24 bytes per
distinct eligible trace (two hashes and a count), the one state that grows with the input
(like the reader's duplicate check). Two distinct trace ids of one stratum share a hash
with probability about n²/2⁶⁵ (3·10⁻⁶ at ten million traces); the count would then be one
short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from llmobs_cli.core.eval.plan import STRATUM, keyed, strata_fields
from llmobs_cli.core.partials.merge import Merger
from llmobs_cli.core.record.windows import Window

#: The pseudo-window holding every row of the pass (the ``--since/--until`` range).
ALL = "_all"
#: Seed of the within-run hashes (stable inside one Polars version: every worker agrees).
_SEED = 0x6C6C6D6F6273

PART, WINDOW, STR, GROUP = "k:part", "k:window", "k:stratum", "k:g"
SID, METRIC = "k:sid", "k:metric"
N, CALLS, ROWS, ELIG, W2 = "sum:n", "sum:calls", "sum:rows", "sum:elig_calls", "sum:w2"
FIRST, LAST = "min:ts", "max:ts"
STRATA, TRACES = "st", "tr"


def kcol(i: int) -> str:
    """The partial frame's column of the ``i``-th stratum field."""
    return f"k:s{i}"


@dataclass(frozen=True)
class CountSpec:
    """What pass 1 counts: the ``--by`` fields and the named windows ``(name, start,
    end)`` (half-open; ``None`` is open). Plain data, picklable for the engines."""

    by: tuple[str, ...]
    windows: tuple[tuple[str, datetime | None, datetime | None], ...]

    @property
    def width(self) -> int:
        return len(strata_fields(self.by))


def _group_hash(window: str) -> pl.Expr:
    return pl.concat_str([pl.lit(window + "\x1f"), pl.col(STRATUM)]).hash(_SEED)


def stratum_partials(batch: pl.DataFrame, spec: CountSpec) -> pl.DataFrame:
    """One batch → its strata and traces partials (see the module docstring)."""
    rows, kcols = keyed(batch, spec.by)
    rows = rows.select(
        STRATUM,
        *kcols,
        "_eligible",
        "timestamp",
        (1.0 / pl.col("sample_rate")).alias("_w"),
        pl.col("trace_id").cast(pl.String).hash(_SEED).alias("_sid"),
    )
    out: list[pl.DataFrame] = []
    for name, start, end in spec.windows:
        part = rows.filter(Window(start, end).contains())
        elig = pl.col("_eligible")
        st = part.group_by(STRATUM, *kcols).agg(
            pl.len().cast(pl.Int64).alias(N),
            pl.col("_w").sum().alias(CALLS),
            elig.sum().cast(pl.Int64).alias(ROWS),
            pl.col("_w").filter(elig).sum().alias(ELIG),
            (pl.col("_w") ** 2).sum().alias(W2),
            pl.col("timestamp").dt.epoch("us").min().alias(FIRST),
            pl.col("timestamp").dt.epoch("us").max().alias(LAST),
        )
        out.append(
            st.select(
                pl.lit(STRATA).alias(PART),
                pl.lit(name).alias(WINDOW),
                pl.col(STRATUM).alias(STR),
                *[pl.col(c).alias(kcol(i)) for i, c in enumerate(kcols)],
                _group_hash(name).alias(GROUP),
                N,
                CALLS,
                ROWS,
                ELIG,
                W2,
                FIRST,
                LAST,
            )
        )
        if name == ALL:
            continue  # the whole range is only counted, never planned
        tr = (
            part.filter(elig)
            .group_by(STRATUM, "_sid")
            .agg(pl.len().cast(pl.Int64).alias(N))
            .select(
                pl.lit(TRACES).alias(PART),
                _group_hash(name).alias(GROUP),
                pl.col("_sid").alias(SID),
                N,
            )
        )
        out.append(tr)
    frame = pl.concat(out, how="diagonal_relaxed")
    return frame.select(
        pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
        for c, t in _schema(spec).items()
    )


def _schema(spec: CountSpec) -> dict[str, pl.DataType]:
    s: dict[str, pl.DataType] = {PART: pl.String(), WINDOW: pl.String(), STR: pl.String()}
    s.update({kcol(i): pl.String() for i in range(spec.width)})
    s.update({GROUP: pl.UInt64(), SID: pl.UInt64(), METRIC: pl.String()})
    s.update({N: pl.Int64(), CALLS: pl.Float64(), ROWS: pl.Int64(), ELIG: pl.Float64()})
    s.update({W2: pl.Float64(), FIRST: pl.Int64(), LAST: pl.Int64()})
    return s


def _used(spec: CountSpec) -> dict[str, list[str]]:
    return {
        STRATA: [
            *(PART, WINDOW, STR),
            *(kcol(i) for i in range(spec.width)),
            *(GROUP, N, CALLS, ROWS, ELIG, W2, FIRST, LAST),
        ],
        TRACES: [PART, GROUP, SID, N],
    }


class EvalMerger:
    """Merges :func:`stratum_partials` frames as they arrive, each part narrow (the
    traces part keeps only its two hashes and count: 24 bytes a trace)."""

    def __init__(self, spec: CountSpec) -> None:
        self.spec = spec
        self._used = _used(spec)
        self._parts = {name: Merger() for name in self._used}

    def add(self, frame: pl.DataFrame) -> None:
        for name, cols in self._used.items():
            rows = frame.filter(pl.col(PART) == name)
            if rows.height:
                self._parts[name].add(rows.select(cols))

    def result(self) -> pl.DataFrame:
        """The merged partials with every column (an empty frame when nothing came)."""
        schema = _schema(self.spec)
        frames = [m.result() for m in self._parts.values()]
        got = [f for f in frames if f is not None and f.height]
        if not got:
            return pl.DataFrame(schema=schema)
        frame = pl.concat(got, how="diagonal_relaxed")
        return frame.select(
            pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
            for c, t in schema.items()
        )


@dataclass
class WindowCounts:
    """One window's merged counts: rows, first and last timestamp, and the strata totals
    shaped as :func:`core.eval.plan.stratum_totals` shapes them."""

    rows: int
    first: datetime | None
    last: datetime | None
    totals: pl.DataFrame


def _ts(us: int | None) -> datetime | None:
    from datetime import timedelta

    if us is None:
        return None
    return datetime.fromtimestamp(0, UTC) + timedelta(microseconds=int(us))


def window_counts(merged: pl.DataFrame, window: str, spec: CountSpec) -> WindowCounts:
    """The counts of ``window`` in merged partials."""
    kcols = [f"_k_{i}" for i in range(spec.width)]
    st = merged.filter((pl.col(PART) == STRATA) & (pl.col(WINDOW) == window))
    tr = (
        merged.filter(pl.col(PART) == TRACES)
        .group_by(GROUP)
        .agg(pl.len().cast(pl.UInt32).alias("traces"))
    )
    totals = (
        st.join(tr, on=GROUP, how="left")
        .select(
            pl.col(STR).alias(STRATUM),
            *[pl.col(kcol(i)).alias(c) for i, c in enumerate(kcols)],
            pl.col(N).cast(pl.UInt32).alias("sampled"),
            pl.col(CALLS).alias("calls"),
            pl.col(ROWS).cast(pl.UInt32).alias("rows"),
            pl.col("traces").fill_null(0),
            pl.col(ELIG).alias("elig_calls"),
        )
        .sort(STRATUM)
    )
    rows = int(st[N].sum() or 0) if st.height else 0
    first = st[FIRST].min() if st.height else None
    last = st[LAST].max() if st.height else None
    return WindowCounts(rows, _ts(first), _ts(last), totals)  # type: ignore[arg-type]


def key_frame(merged: pl.DataFrame, spec: CountSpec) -> pl.DataFrame:
    """One row per stratum seen in the whole range, a column per stratum field (the
    values as strings, nulls kept): stands in for the rows in the ``--by`` name check."""
    fields = strata_fields(spec.by)
    st = merged.filter((pl.col(PART) == STRATA) & (pl.col(WINDOW) == ALL))
    return st.select(pl.col(kcol(i)).alias(f) for i, f in enumerate(fields))


def columns_for(by: Sequence[str]) -> list[str]:
    """The canonical columns pass 1 reads."""
    from llmobs_cli.core.record.fields import base_column

    base = ["trace_id", "timestamp", "sample_rate", "route", "status", "response"]
    return list(dict.fromkeys([*base, *(base_column(f) for f in by)]))


__all__ = [
    "ALL",
    "CountSpec",
    "EvalMerger",
    "WindowCounts",
    "columns_for",
    "key_frame",
    "stratum_partials",
    "window_counts",
]
