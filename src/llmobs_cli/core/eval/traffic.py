"""``llmobs plan``'s traffic figures as mergeable partials.

:func:`traffic_partials` is a pure function of one batch of canonical rows. Its output
has three parts (``k:part``), each merged by a group-by (``sum:`` adds, ``max:`` takes the
largest), so batches, files and Spark/Ray workers merge into the same totals:

* ``rt`` per route: rows, Σw over all rows and over the calls eval can judge (status ok,
  with a response: "ok" below), ok rows, Σw² of ok, and Σw·x of ok for the shares and mean
  lengths :class:`~llmobs_cli.core.eval.rates.RouteTraffic` reports (documents,
  reference, input/response/document characters), with the first and last timestamp;
* ``tw`` per (route, trace) over ok rows: the largest weight of the trace's calls, keyed
  by 64-bit hashes of the route and the trace id (24 bytes a trace: the one part that
  grows with the input);
* ``wd`` per (route, UTC day) over ok rows: rows and Σw, for the weekday pattern.

:func:`core.eval.rates.traffic_from` turns merged partials into the figures; the
whole-frame :func:`core.eval.rates.traffic_of` is the same two steps on one batch.
"""

from __future__ import annotations

import polars as pl

from llmobs_cli.core.partials.merge import Merger

PART, ROUTE, GROUP, SID, DAY, METRIC = "k:part", "k:route", "k:g", "k:sid", "k:day", "k:metric"
N = "sum:n"
SUMS = (
    "sum:all_calls",
    "sum:calls",
    "sum:ok_rows",
    "sum:w2",
    "sum:w_docs",
    "sum:w_ref",
    "sum:w_in",
    "sum:w_out",
    "sum:w_doc",
)
FIRST, LAST, TW = "min:ts", "max:ts", "max:w"
ROUTES, TRACES, DAYS = "rt", "tw", "wd"
_SEED = 0x706C616E


def _chars_of_input() -> pl.Expr:
    msgs = (
        pl.col("messages")
        .list.eval(pl.element().struct.field("content").str.len_chars())
        .list.sum()
        .fill_null(0)
    )
    prompt = pl.col("prompt").str.len_chars().fill_null(0)
    system = pl.col("system").str.len_chars().fill_null(0)
    return system + pl.when(msgs > 0).then(msgs).otherwise(prompt)


SCHEMA: dict[str, pl.DataType] = {
    PART: pl.String(),
    ROUTE: pl.String(),
    GROUP: pl.UInt64(),
    SID: pl.UInt64(),
    DAY: pl.Int32(),
    METRIC: pl.String(),
    N: pl.Int64(),
    **{c: (pl.Int64() if c == "sum:ok_rows" else pl.Float64()) for c in SUMS},
    FIRST: pl.Int64(),
    LAST: pl.Int64(),
    TW: pl.Float64(),
}
_USED = {
    ROUTES: [PART, ROUTE, N, *SUMS, FIRST, LAST],
    TRACES: [PART, GROUP, SID, TW],
    DAYS: [PART, ROUTE, DAY, N, "sum:calls"],
}


def traffic_partials(batch: pl.DataFrame) -> pl.DataFrame:
    """One batch of canonical rows → its traffic partials (see the module docstring)."""
    w = 1.0 / pl.col("sample_rate")
    ok = (pl.col("status").fill_null("ok") == "ok") & (
        pl.col("response").fill_null("").str.len_chars() > 0
    )
    docs = pl.col("retrieved").list.len().fill_null(0) > 0
    rows = batch.select(
        pl.col("route").fill_null("default").alias("route"),
        w.alias("_w"),
        ok.alias("_ok"),
        docs.alias("_docs"),
        (pl.col("reference").fill_null("").str.len_chars() > 0).alias("_ref"),
        _chars_of_input().alias("_in"),
        pl.col("response").str.len_chars().fill_null(0).alias("_out"),
        pl.col("retrieved")
        .list.eval(pl.element().struct.field("content").str.len_chars())
        .list.sum()
        .fill_null(0)
        .alias("_doc"),
        pl.col("timestamp").dt.epoch("us").alias("_ts"),
        pl.col("timestamp").dt.date().cast(pl.Int32).alias("_day"),
        pl.col("trace_id"),
    )
    wk, okc = pl.col("_w"), pl.col("_ok")
    rt = rows.group_by("route").agg(
        pl.len().cast(pl.Int64).alias(N),
        wk.sum().alias("sum:all_calls"),
        wk.filter(okc).sum().alias("sum:calls"),
        okc.sum().cast(pl.Int64).alias("sum:ok_rows"),
        (wk**2).filter(okc).sum().alias("sum:w2"),
        (wk * pl.col("_docs")).filter(okc).sum().alias("sum:w_docs"),
        (wk * pl.col("_ref")).filter(okc).sum().alias("sum:w_ref"),
        (wk * pl.col("_in")).filter(okc).sum().alias("sum:w_in"),
        (wk * pl.col("_out")).filter(okc).sum().alias("sum:w_out"),
        (wk * pl.col("_doc")).filter(okc & pl.col("_docs")).sum().alias("sum:w_doc"),
        pl.col("_ts").min().alias(FIRST),
        pl.col("_ts").max().alias(LAST),
    )
    good = rows.filter(okc)
    tw = (
        good.group_by("route", pl.col("trace_id").cast(pl.String).hash(_SEED).alias(SID))
        .agg(wk.max().alias(TW))
        .select(pl.col("route").hash(_SEED).alias(GROUP), SID, TW)
    )
    wd = good.group_by("route", "_day").agg(
        pl.len().cast(pl.Int64).alias(N), wk.sum().alias("sum:calls")
    )
    frames = [
        rt.rename({"route": ROUTE}).with_columns(pl.lit(ROUTES).alias(PART)),
        tw.with_columns(pl.lit(TRACES).alias(PART)),
        wd.rename({"route": ROUTE, "_day": DAY}).with_columns(pl.lit(DAYS).alias(PART)),
    ]
    return _conform(pl.concat(frames, how="diagonal_relaxed"))


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
        for c, t in SCHEMA.items()
    )


class TrafficMerger:
    """Merges :func:`traffic_partials` frames as they arrive, each part narrow."""

    def __init__(self) -> None:
        self._parts = {name: Merger() for name in _USED}

    def add(self, frame: pl.DataFrame) -> None:
        for name, cols in _USED.items():
            rows = frame.filter(pl.col(PART) == name)
            if rows.height:
                self._parts[name].add(rows.select(cols))

    def result(self) -> pl.DataFrame:
        got = [f for f in (m.result() for m in self._parts.values()) if f is not None]
        if not got:
            return pl.DataFrame(schema=SCHEMA)
        return _conform(pl.concat(got, how="diagonal_relaxed"))


def route_groups(routes: pl.Series) -> pl.Series:
    """The ``k:g`` of each route (as :func:`traffic_partials` computes it)."""
    return routes.cast(pl.String).hash(_SEED)


__all__ = ["TrafficMerger", "route_groups", "traffic_partials"]
