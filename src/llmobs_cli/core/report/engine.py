"""The cost and latency layer (``llmobs report``), true under sampling.

Contract (``docs/report.md``, "What each number means"): every figure is a population
estimate weighting a row by ``w = 1/sample_rate``.

* ``sampled`` rows seen, ``calls`` = Σw (Horvitz–Thompson), ``n_eff`` = (Σw)²/Σw² (Kish);
* ``latency_ms`` / ``ttft_ms``: P50/P95/P99 from the weighted empirical CDF (the smallest
  value whose cumulative weight reaches q·Σw, numpy's ``inverted_cdf`` on the population
  the weights stand for), ``mean`` the Hájek mean;
* token totals Σw·tokens; ``cache_hit_rate`` = Σw·cached / Σw·input;
* ``cost_usd`` Σw·cost (a record's own ``cost_usd``, else the price table; unpriced calls
  are counted in ``unpriced_calls`` and make ``cost_complete`` false, never a silent $0);
  ``cost_per_call_usd`` = cost_usd / calls over priced calls;
* ``error_rate`` = Σw[status error] / Σw; ``refusal_rate`` = Σw[refusal ∧ ok] / Σw[ok];
* ``citation_rate`` among calls with retrieved documents: the response names a document's
  id or quotes one of its sentences;
* ``sessions`` (estimated as Σ over sessions seen of their rows' mean weight — exact when
  whole sessions are sampled, as ``llmobs sample`` does when it hashes a session-keyed
  trace id, and an underestimate when traces of one session are sampled independently)
  and ``cost_per_session_usd``.

A rate or mean whose denominator is empty is ``null``; an empty group is absent from
``groups`` (group_by never makes one), a bucket with no calls is absent from ``buckets``.

All row work is one Polars lazy query per grouping level (overall, groups, buckets,
buckets × groups); the per-level aggregates are tiny and turned into dicts in Python.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl

from llmobs_cli.core.partials.compute import BIN, SID, PartialSpec, partials
from llmobs_cli.core.partials.finalize import (
    level_quantiles,
    level_sessions,
    level_sums,
    session_totals,
    sketch_values,
)
from llmobs_cli.core.partials.merge import ByKeys, Merger
from llmobs_cli.core.partials.sketch import ALPHA, bin_expr, bin_value
from llmobs_cli.core.record.fields import base_column, field_expr
from llmobs_cli.core.record.jsonable import clean
from llmobs_cli.core.record.weights import W
from llmobs_cli.core.record.windows import Window, after, resolve_bound, resolve_now
from llmobs_cli.core.report import gates, pricing
from llmobs_cli.core.report.metrics import (
    QUANTILES,
    TOKEN_KINDS,
    flatten_metrics,
    to_metrics,
)
from llmobs_cli.core.report.metrics import metric_paths as metric_paths  # re-exported
from llmobs_cli.core.report.metrics import metric_value as metric_value  # re-exported
from llmobs_cli.core.report.refusals import refusal_expr
from llmobs_cli.errors import UsageError

Bucket = Literal["hour", "day", "week"]
BUCKET_EVERY: dict[str, str] = {"hour": "1h", "day": "1d", "week": "1w"}
BUCKET_SPAN: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
}
#: Rows per batch when a frame is reported from memory (files use the memory budget).
BATCH_ROWS = 262_144

#: Canonical fields the report reads (plus the ``--by`` fields).
REPORT_COLUMNS: tuple[str, ...] = (
    "timestamp",
    "sample_rate",
    "latency_ms",
    "ttft_ms",
    "model",
    "provider",
    "route",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "cost_usd",
    "status",
    "response",
    "finish_reason",
    "retrieved",
    "session_id",
)

_BUCKET = "_bucket"
_SID = "_sid"
_REF = "_refusal"
_CITE = "_cites"
_ERR = "_error"
_OK = "_ok"


@dataclass
class Report:
    """The report: ``as_dict()`` is the contract's JSON document."""

    window: Window
    by: list[str]
    overall: dict[str, Any]
    groups: list[dict[str, Any]]
    bucket: str | None = None
    buckets: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    unpriced_models: list[dict[str, Any]] = field(default_factory=list)
    price_sources: list[str] = field(default_factory=list)
    quantiles: tuple[float, ...] = QUANTILES

    @property
    def fired(self) -> bool:
        return bool(self.alerts)

    def as_dict(self) -> dict[str, Any]:
        return clean(
            {
                "window": self.window.as_dict(),
                "by": list(self.by),
                "bucket": self.bucket,
                "overall": self.overall,
                "groups": self.groups,
                "buckets": self.buckets,
                "alerts": self.alerts,
                "unpriced_models": self.unpriced_models,
                "prices": {"sources": self.price_sources},
            }
        )

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows (one per overall/group/bucket entry) for Parquet and CSV output."""
        out: list[dict[str, Any]] = []

        def add(
            level: str, key: dict[str, Any], m: dict[str, Any], start: Any = None, end: Any = None
        ) -> None:
            row: dict[str, Any] = {"level": level, "bucket_start": start, "bucket_end": end}
            for f in self.by:
                row[f] = key.get(f)
            row.update(flatten_metrics(m))
            out.append(row)

        add("overall", {}, self.overall)
        for g in self.groups:
            add("group", g["key"], g)
        for b in self.buckets:
            add("bucket", {}, b["overall"], b["start"], b["end"])
            for g in b["groups"]:
                add("bucket_group", g["key"], g, b["start"], b["end"])
        return clean(out)

    def frame(self) -> pl.DataFrame:
        rows = self.rows()
        schema: dict[str, pl.DataType] = {
            "level": pl.String(),
            "bucket_start": pl.String(),
            "bucket_end": pl.String(),
        }
        for f in self.by:
            schema[f] = pl.String()
        for k in flatten_metrics(self.overall):
            schema[k] = pl.Float64()
        for r in rows:
            for f in self.by:
                r[f] = None if r.get(f) is None else str(r[f])
        return pl.DataFrame(rows, schema=schema, strict=False)


# --- metrics -------------------------------------------------------------------------


def _weighted_quantile_aggs(value: str, qs: Sequence[float], prefix: str) -> list[pl.Expr]:
    """Weighted inverse-CDF quantiles of ``value`` in a group (nulls ignored), as one
    list-valued aggregation ``{prefix}__q`` (one entry per q).

    One sort per group and column: values sorted with their weights, cumulative weight,
    then for every q at once the first value whose cumulative weight reaches ``q·Σw``
    (``search_sorted`` on the cumulative weights; a relative tolerance guards against float
    summation error, as in ``weights.quantile_aggs``). Computing all q from one sorted copy
    is what makes this fast: separate expressions per q would each sort again.
    """
    v = pl.col(value)
    ok = v.is_not_null()
    sv = v.filter(ok)
    sw = pl.col(W).filter(ok).sort_by(sv)
    sv = sv.sort()
    cw = sw.cum_sum()
    targets = pl.lit(pl.Series([q * (1 - 1e-12) for q in qs], dtype=pl.Float64))
    idx = cw.search_sorted(cw.last() * targets, side="left")
    # A trailing null makes an empty group (all values null) give null, not an error.
    padded = sv.append(pl.lit(None, dtype=pl.Float64))
    exact = padded.gather(idx.clip(0, sv.len()))
    # The sketch's answer, computed directly: the representative of the exact quantile's
    # log bucket, clamped to the group's range — what finalize gives from merged partials.
    sketched = bin_value(bin_expr(exact.cast(pl.Float64))).clip(sv.min(), sv.max())
    return [sketched.alias(f"{prefix}__q")]


def _row_terms() -> dict[str, pl.Expr]:
    """Per-row terms whose group sums make every non-quantile metric.

    Computed once per row (then materialised), so each level's aggregation is plain sums
    — the cheapest group_by there is — and merges exactly across partitions.
    """
    c = pl.col
    w = c(W)

    def where(cond: pl.Expr, value: pl.Expr = w) -> pl.Expr:
        return pl.when(cond).then(value)

    terms: dict[str, pl.Expr] = {"calls": w, "_w2": w * w}
    for col in ("latency_ms", "ttft_ms"):
        terms[f"_{col}_wy"] = w * c(col)
        terms[f"_{col}_w"] = where(c(col).is_not_null())
    for tok in TOKEN_KINDS:
        terms[tok] = w * c(tok)
    terms |= {
        "_cached_hit": where(c("input_tokens").is_not_null(), w * c("cached_tokens")),
        "_n_cached": c("cached_tokens").is_not_null().cast(pl.UInt32),
        "cost_usd": w * c(pricing.COST),
        "_priced_calls": where(~c(pricing.UNPRICED)),
        "unpriced_calls": where(c(pricing.UNPRICED)),
        "unpriced_sampled": c(pricing.UNPRICED).cast(pl.UInt32),
        "_errors": where(c(_ERR)),
        "_ok": where(c(_OK)),
        "_refusals": where(c(_OK) & c(_REF)),
        "_rag": where(c(_CITE).is_not_null()),
        "_cited": where(c(_CITE).fill_null(False)),
        "_session_cost": where(c("session_id").is_not_null(), w * c(pricing.COST)),
    }
    return terms


_TERM = "_t:"


def row_terms() -> list[pl.Expr]:
    """The expressions adding the per-row terms (columns prefixed ``_t:``)."""
    return [e.alias(_TERM + name) for name, e in _row_terms().items()]


def metric_aggs(qs: Sequence[float], grouped: bool = True) -> list[pl.Expr]:
    """The aggregations behind every metrics object, over rows carrying :func:`row_terms`.

    ``grouped`` False gives the same for a ``select`` over all rows (list-valued
    aggregations are imploded there)."""
    c = pl.col
    aggs: list[pl.Expr] = [pl.len().alias("sampled")]
    aggs += [c(_TERM + name).sum().alias(name) for name in _row_terms()]
    for col in ("latency_ms", "ttft_ms"):
        qx = _weighted_quantile_aggs(col, qs, col)
        aggs += qx if grouped else [e.implode() for e in qx]
    aggs += [c("timestamp").min().alias("_first"), c("timestamp").max().alias("_last")]
    return aggs


# --- the row pipeline ----------------------------------------------------------------


def prepare(
    frame: pl.LazyFrame,
    *,
    by: Sequence[str],
    table: pricing.PriceTable | None,
    refusal_patterns: Sequence[str] | None,
    bucket: str | None = None,
    citations: bool = True,
) -> pl.LazyFrame:
    """Add weights, cost, refusal, error and citation flags, and the ``--by`` keys.

    ``citations`` False skips the citation match (its flag is null, as for rows without
    documents): for a batch known to carry no retrieved documents."""
    c = pl.col
    schema = frame.collect_schema()
    lf = frame
    keys = [field_expr(f).alias(f) for f in by if f.startswith("metadata.")]
    if keys:
        lf = lf.with_columns(keys)
    # The price lookup needs the batch's distinct (model, provider) pairs: found on the
    # input, not after the citation match (which a second collect would run again).
    pairs = pricing.price_pairs(lf) if table is not None else None
    cites: pl.Expr = pl.lit(None, dtype=pl.Boolean)
    if "retrieved" in schema and "response" in schema and citations:
        lf = _with_citations(lf)
        cites = c(_CITE)
    lf = pricing.with_cost(lf, table, pairs)
    ok = c("status") != "error"
    lf = lf.with_columns(
        (1.0 / c("sample_rate")).alias(W),
        (c("status") == "error").fill_null(False).alias(_ERR),
        ok.fill_null(True).alias(_OK),
        (
            refusal_expr(c("response"), refusal_patterns, finish_reason=c("finish_reason"))
            if "response" in schema
            else pl.lit(False)
        ).alias(_REF),
        cites.alias(_CITE),
    )
    if bucket is not None:
        lf = lf.with_columns(c("timestamp").dt.truncate(BUCKET_EVERY[bucket]).alias(_BUCKET))
    return lf


_MAX_FRAGMENTS = 6
_QUOTE_CHARS = 48
_MIN_FRAGMENT = 20
_CONTENT_CHARS = 1200
_TRIM = " .,;:!?"


def _with_citations(lf: pl.LazyFrame) -> pl.LazyFrame:
    """``_cites``: null without retrieved documents, else whether the response cites one.

    A response cites a document when it contains the document's ``id`` (``[doc-12]``,
    ``(source: doc-12)``) or quotes it: it contains the first ``_QUOTE_CHARS`` characters
    of one of the first ``_MAX_FRAGMENTS`` fragments of the document's first
    ``_CONTENT_CHARS`` characters (text between ``. : ; ! ?``
    of at least ``_MIN_FRAGMENT`` characters, trimmed of spaces and punctuation).
    Case-insensitive, literal matching.
    """
    c = pl.col
    idx = "_row_idx"
    # The index must be computed once for both branches (joins upstream need not keep
    # row order, and a re-evaluated plan could number the rows differently).
    lf = lf.with_row_index(idx).cache()
    docs = (
        lf.filter(c("retrieved").list.len() > 0)
        .select(idx, c("response").str.to_lowercase().alias("_resp"), c("retrieved"))
        .explode("retrieved")
        .select(
            idx,
            "_resp",
            c("retrieved").struct.field("id").str.to_lowercase().alias("_id"),
            c("retrieved").struct.field("content").alias("_content"),
        )
    )
    by_id = docs.select(
        idx,
        (c("_id").str.len_chars() > 0)
        .and_(c("_resp").str.contains(c("_id"), literal=True))
        .fill_null(False)
        .alias("_hit"),
    )
    quotes = (
        docs.select(
            idx,
            "_resp",
            c("_content")
            .str.slice(0, _CONTENT_CHARS)  # the first fragments live here; bounds the copies
            .str.to_lowercase()
            .str.replace_all(r"[.:;!?]\s+", "\x00")
            .str.split("\x00")
            .list.head(_MAX_FRAGMENTS)
            .alias("_frag"),
        )
        .explode("_frag")
        .filter(c("_frag").str.len_chars() >= _MIN_FRAGMENT)
        .select(
            idx,
            c("_resp")
            .str.contains(
                c("_frag").str.slice(0, _QUOTE_CHARS).str.strip_chars(_TRIM), literal=True
            )
            .fill_null(False)
            .alias("_hit"),
        )
    )
    hits = pl.concat([by_id, quotes]).group_by(idx).agg(c("_hit").any().alias(_CITE))
    return lf.join(hits, on=idx, how="left").drop(idx)


_AGG_INPUTS: tuple[str, ...] = (
    W,
    "timestamp",
    "latency_ms",
    "ttft_ms",
    "model",
    "session_id",
    pricing.UNPRICED,
)


def _aggregate_lazy(lf: pl.LazyFrame, keys: list[str], qs: Sequence[float]) -> pl.LazyFrame:
    if keys:
        return lf.group_by(keys).agg(metric_aggs(qs))
    return lf.select(metric_aggs(qs, grouped=False))


def _session_stats_lazy(lf: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    c = pl.col
    per = lf.filter(c(_SID).is_not_null()).group_by([*keys, _SID]).agg(c(W).mean().alias("_sw"))
    stats = [c("_sw").sum().alias("sessions"), pl.len().alias("sessions_sampled")]
    return per.group_by(keys).agg(stats) if keys else per.select(stats)


def _rows_with_sessions(
    agg: pl.DataFrame, sess: pl.DataFrame, keys: list[str]
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    rows = agg.to_dicts()
    if not keys:
        s = sess.to_dicts()[0] if sess.height else None
        return [(r, s) for r in rows]
    lookup = {tuple(r[k] for k in keys): r for r in sess.to_dicts()}
    return [(r, lookup.get(tuple(r[k] for k in keys))) for r in rows]


def _key_value(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def _rounded(x: float | None) -> float:
    return float(f"{x or 0.0:.12g}")


def _sort_groups(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Most expensive first, then most calls, then key (the order people read). Costs
    and calls are compared to 12 significant digits: sums of the same rows in another
    order (other batches, spills, engines) differ in the last bits, and must not reorder
    groups of equal cost."""
    return sorted(
        groups,
        key=lambda g: (
            -_rounded(g.get("cost_usd")),
            -_rounded(g.get("calls")),
            str(list(g["key"].values())),
        ),
    )


@dataclass(frozen=True)
class ReportPlan:
    r"""Everything the per-batch partial function needs (plain data, picklable): the report
    runs :func:`batch_partials` on every batch, merges, and :func:`finalize_report`\s."""

    by: tuple[str, ...]
    bucket: str | None
    table: pricing.PriceTable
    refusal_patterns: tuple[str, ...] | None
    rule_keysets: tuple[tuple[str, ...], ...]
    spec: PartialSpec
    quantiles: tuple[float, ...] = QUANTILES

    @property
    def all_keys(self) -> list[str]:
        return list(dict.fromkeys([*self.by, *(k for ks in self.rule_keysets for k in ks)]))


#: Sketched value columns (with the weight column) and their exact extrema.
_SKETCHED = ("latency_ms", "ttft_ms")


def plan_report(
    *,
    by: Sequence[str],
    bucket: str | None,
    table: pricing.PriceTable,
    refusal_patterns: Sequence[str] | None,
    quantiles: Sequence[float] = QUANTILES,
    rules: Sequence[Any] = (),
    alpha: float = ALPHA,
) -> ReportPlan:
    """The report's levels (overall, groups, rule scopes, buckets, unpriced by model).

    A field the report totals (``output_tokens``, ``cost_usd``, ...) cannot also be a group
    key: UsageError (exit 2) naming it."""
    keys = tuple(by)
    totals = {*_row_terms(), "sampled", "sessions", "sessions_sampled"}
    for option, fields in (("by", keys), ("fail_on", [k for r in rules for k in r.scope_keys])):
        clash = [f for f in fields if f in totals]
        if clash:
            raise UsageError(
                f"{option}: '{clash[0]}' is a figure the report totals per group, not a label "
                "to group by (group by route, model, customer_id, feature, release, "
                "status, ... or metadata.KEY)",
                param=option,
            )
    rule_keysets = tuple(
        tuple(ks) for ks in gates.scope_keysets(rules) if frozenset(ks) != frozenset(keys)
    )
    levels: list[tuple[str, ...]] = [()]
    if keys:
        levels.append(keys)
    levels += list(rule_keysets)
    if bucket is not None:
        levels.append((_BUCKET,))
        if keys:
            levels.append((_BUCKET, *keys))
    levels.append(("model",))  # unpriced models (its last level)
    figure_levels = tuple(range(len(levels) - 1))
    spec = PartialSpec(
        levels=tuple(levels),
        sums=tuple(_TERM + name for name in _row_terms()),
        extrema=("timestamp", *_SKETCHED),
        sketches=tuple((c, W) for c in _SKETCHED),
        sketch_levels=figure_levels,
        session=(_SID, W),
        session_levels=figure_levels,
        # Sessions are kept for the finest levels only (the largest part of the partials,
        # and the one state that grows with the input): the coarser ones regroup them.
        derive_sessions=True,
        alpha=alpha,
    )
    return ReportPlan(
        by=keys,
        bucket=bucket,
        table=table,
        refusal_patterns=None if refusal_patterns is None else tuple(refusal_patterns),
        rule_keysets=rule_keysets,
        spec=spec,
        quantiles=tuple(quantiles),
    )


def batch_partials(batch: pl.DataFrame | pl.LazyFrame, plan: ReportPlan) -> pl.DataFrame:
    """One batch of canonical rows → the report's partials (pure; see core.partials)."""
    lf = prepare(
        batch.lazy(),
        by=plan.all_keys,
        table=plan.table,
        refusal_patterns=plan.refusal_patterns,
        bucket=plan.bucket,
        citations=_has_documents(batch),
    )
    needed = [*plan.all_keys, *([_BUCKET] if plan.bucket else []), *_AGG_INPUTS]
    # Sessions are grouped by a 64-bit hash of the id: integer hashing is several times
    # faster than string hashing on hundreds of thousands of sessions.
    sid = pl.when(pl.col("session_id").is_not_null()).then(pl.col("session_id").hash())
    needed = [n for n in dict.fromkeys(needed) if n != "session_id" or n in plan.all_keys]
    rows = lf.select(*needed, sid.alias(_SID), *row_terms()).collect()
    return partials(rows, plan.spec)


def _has_documents(batch: pl.DataFrame | pl.LazyFrame) -> bool:
    """Whether any row of an in-memory batch has retrieved documents (the citation match
    joins and explodes; a batch without documents skips it)."""
    if not isinstance(batch, pl.DataFrame) or "retrieved" not in batch.columns:
        return True
    col = batch.get_column("retrieved")
    if col.null_count() == batch.height:
        return False
    return bool(batch.select((pl.col("retrieved").list.len() > 0).any()).item())


def _epoch_us(v: float | None) -> datetime | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return datetime.fromtimestamp(0, tz=UTC) + timedelta(microseconds=int(v))


def _level_rows(
    merged: pl.DataFrame, plan: ReportPlan, i: int
) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(aggregated row, session row) per group of level ``i`` (what ``to_metrics`` reads)."""
    spec, qs = plan.spec, plan.quantiles
    keys = list(spec.levels[i])
    sums = level_sums(merged, spec, i).rename({_TERM + n: n for n in _row_terms()})
    sums = sums.with_columns(
        pl.col("_min_timestamp").alias("_first"), pl.col("_max_timestamp").alias("_last")
    )
    for c in _SKETCHED:
        qf = level_quantiles(merged, spec, i, c, qs)
        sums = (
            sums.join(qf, on=keys, how="left", nulls_equal=True)
            if keys
            else sums.join(qf, how="cross")
            if qf.height
            else sums.with_columns(pl.lit(None, pl.List(pl.Float64)).alias(f"{c}__q"))
        )
    sess = level_sessions(merged, spec, i)
    out = []
    for row, srow in _rows_with_sessions(sums, sess, keys):
        row["_first"], row["_last"] = _epoch_us(row["_first"]), _epoch_us(row["_last"])
        out.append((row, srow))
    return out


def finalize_report(
    merged: pl.DataFrame | None,
    plan: ReportPlan,
    *,
    window: Window | None = None,
    rules: Sequence[Any] = (),
) -> Report:
    """Merged partials → the report (figures, groups, buckets, unpriced models, alerts)."""
    qs = plan.quantiles
    keys = list(plan.by)
    bucket = plan.bucket

    def grouped(i: int, out_keys: list[str]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        if merged is None:
            return []
        return [
            (row, {"key": {k: _key_value(row[k]) for k in out_keys}, **to_metrics(row, qs, srow)})
            for row, srow in _level_rows(merged, plan, i)
            if row.get("sampled")
        ]

    overall_rows = grouped(0, [])
    overall = overall_rows[0][1] if overall_rows else {"key": {}, **to_metrics({}, qs, None)}
    overall.pop("key")
    li = 1
    groups: list[dict[str, Any]] = []
    if keys:
        groups = _sort_groups([g for _, g in grouped(li, keys)])
        li += 1
    extra_groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for ks in plan.rule_keysets:
        # Sorted as the --by groups are: the alerts they fire come in this order, which
        # would otherwise follow the group-by's (a different one on every run).
        extra_groups[frozenset(ks)] = _sort_groups([g for _, g in grouped(li, list(ks))])
        li += 1

    buckets: list[dict[str, Any]] = []
    if bucket is not None:
        span = BUCKET_SPAN[bucket]
        per_bucket: dict[Any, dict[str, Any]] = {}
        for row, m in grouped(li, []):
            m.pop("key")
            start = row[_BUCKET]
            per_bucket[start] = {
                "start": start.isoformat(),
                "end": (start + span).isoformat(),
                "overall": m,
                "groups": [],
            }
        if keys:
            for row, m in grouped(li + 1, keys):
                per_bucket[row[_BUCKET]]["groups"].append(m)
        for b in per_bucket.values():
            b["groups"] = _sort_groups(b["groups"])
        buckets = [per_bucket[k] for k in sorted(per_bucket)]

    unpriced: list[dict[str, Any]] = []
    if merged is not None:
        last = len(plan.spec.levels) - 1
        up = (
            level_sums(merged, plan.spec, last)
            .filter(pl.col(_TERM + "unpriced_sampled") > 0)
            .select(
                "model",
                pl.col(_TERM + "unpriced_sampled").cast(pl.Int64).alias("sampled"),
                pl.col(_TERM + "unpriced_calls").alias("calls"),
            )
            .sort(["calls", "model"], descending=[True, False], nulls_last=True)
        )
        unpriced = [
            {"model": r["model"], "sampled": int(r["sampled"]), "calls": r["calls"]}
            for r in up.to_dicts()
        ]

    if window is None:
        window = Window(
            datetime.fromisoformat(overall["first_timestamp"])
            if overall["first_timestamp"]
            else None,
            after(datetime.fromisoformat(overall["last_timestamp"]))
            if overall["last_timestamp"]
            else None,
        )
    report = Report(
        window=window,
        by=keys,
        overall=overall,
        groups=groups,
        bucket=bucket,
        buckets=buckets,
        unpriced_models=unpriced,
        price_sources=plan.table.sources,
        quantiles=qs,
    )
    report.alerts = gates.evaluate(rules, report, extra_groups)
    return report


def build_report(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    by: Sequence[str] = ("route",),
    bucket: str | None = None,
    window: Window | None = None,
    prices: pricing.PriceTable | None = None,
    refusal_patterns: Sequence[str] | None = None,
    quantiles: Sequence[float] = QUANTILES,
    rules: Sequence[Any] = (),
    progress: Callable[[str], None] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Report:
    """The report over canonical rows (already windowed), through the same partials →
    merge → finalize path as files (the frame is cut into batches of ``batch_rows``).

    ``prices`` None uses the shipped table; pass ``PriceTable([])`` to price nothing.
    ``rules`` are :class:`llmobs_cli.core.report.gates.Rule` objects evaluated on the result.
    """
    say = progress or (lambda _msg: None)
    table = pricing.build_price_table() if prices is None else prices
    schema = frame.collect_schema()
    for f in REPORT_COLUMNS:
        if f not in schema:
            raise ValueError(f"build_report needs the canonical column '{f}'")
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    plan = plan_report(
        by=by,
        bucket=bucket,
        table=table,
        refusal_patterns=refusal_patterns,
        quantiles=quantiles,
        rules=rules,
    )
    say("aggregating")
    merger = report_merger()
    for start in range(0, df.height, batch_rows):
        merger.add(batch_partials(df.slice(start, batch_rows), plan))
    return finalize_report(merged_result(merger, plan), plan, window=window, rules=rules)


def report_merger(spill_rows: int | None = None) -> Merger:
    """A merger for report partials whose session rows (one per session and group, the
    state that grows with the input) and sketch bins (per group, time bucket and bin: many
    with ``--bucket``) go to disk in hash partitions past ``spill_rows``: the sessions by
    their hash, the bins by their group's (every bin of a group in one partition)."""
    return Merger(spill={"sess": SID, "q": ByKeys(exclude=(BIN,))}, spill_rows=spill_rows)


def merged_result(merger: Merger, plan: ReportPlan) -> pl.DataFrame | None:
    """The merged partials with the sessions reduced to per-group totals and the sketch
    bins to each group's quantiles (partition by partition when they were spilled), so
    that finalizing never holds every bin of every group and bucket."""
    return merger.result(
        reduce={
            "sess": functools.partial(session_totals, spec=plan.spec),
            "q": functools.partial(sketch_values, spec=plan.spec, qs=plan.quantiles),
        }
    )


# --- from files ----------------------------------------------------------------------


@dataclass
class LoadedReport:
    report: Report
    skipped: int
    skipped_reasons: dict[str, int]
    sources: list[str]


def run_report(
    paths: Sequence[str | Path],
    *,
    by: Sequence[str] = ("route",),
    bucket: str | None = None,
    since: str | None = None,
    until: str | None = None,
    now: str | None = None,
    on_error: Literal["fail", "skip"] = "fail",
    fmt: str | None = None,
    options: Any = None,
    prices: pricing.PriceTable | None = None,
    refusal_patterns: Sequence[str] | None = None,
    quantiles: Sequence[float] = QUANTILES,
    rules: Sequence[Any] = (),
    progress: Callable[[str], None] | None = None,
    memory: int | None = None,
    engine: Any = None,
) -> LoadedReport:
    """Read trace files batch by batch (only the columns the report needs), window them,
    and report: each batch becomes partials (:func:`batch_partials`), merged as they
    arrive and finalized once, so memory is bounded by ``memory`` (bytes; default a
    quarter of RAM) and the distinct sessions and span ids, not by the number of rows."""
    from llmobs_cli.core.ingest.readers.stream import Stream, default_memory

    say = progress or (lambda _msg: None)
    budget = default_memory() if memory is None else memory
    scope_fields = [k for r in rules for k in getattr(r, "scope_keys", ())]
    columns = list(
        dict.fromkeys([*REPORT_COLUMNS, *(base_column(f) for f in [*by, *scope_fields])])
    )
    # Absolute bounds (or an explicit --now) are known before reading; durations relative
    # to the data's latest timestamp need one pass over the timestamps first.
    relative = any(v and _is_duration(v) for v in (since, until)) and not now
    if now:
        ref_now = resolve_now(now, None)
    elif relative:
        say("finding the latest timestamp")
        ref_now = resolve_now(None, _latest(paths, on_error, fmt, options, budget))
    else:
        ref_now = datetime.now().astimezone()
    start = resolve_bound(since, ref_now, "since")
    end = resolve_bound(until, ref_now, "until")
    if start is not None and end is not None and end <= start:
        raise UsageError(
            f"until: the window ends before it starts ({end.isoformat()} <= {start.isoformat()})",
            param="until",
        )
    window = None
    if start is not None or end is not None:
        window = Window(start, end)
    table = pricing.build_price_table() if prices is None else prices
    plan = plan_report(
        by=by,
        bucket=bucket,
        table=table,
        refusal_patterns=refusal_patterns,
        quantiles=quantiles,
        rules=rules,
    )

    def tell(p: Any) -> None:
        share = f" ({100 * p.bytes / p.total_bytes:.0f} %)" if p.total_bytes else ""
        say(f"{p.rows:,} rows, {p.bytes / 1e6:,.0f} of {p.total_bytes / 1e6:,.0f} MB read{share}")

    stream: Any
    if engine is not None and engine.name != "local":
        stream = _on_engine(engine, paths, columns, plan, start, end, on_error, options, say)
        merged = stream.merged
    else:
        stream = Stream(
            paths,
            columns=columns,
            on_error=on_error,
            fmt=fmt,
            since=start,
            until=end,
            options=options,
            memory=budget,
            on_progress=tell,
        )
        merger = _merge_pipelined(stream, plan)
        say("finalizing")
        merged = merged_result(merger, plan)
    _check_selection(
        _key_frame(merged, plan), stream, window, by, rules, paths, since, until, fmt, options
    )
    report = finalize_report(merged, plan, window=window, rules=rules)
    if window is not None and (window.start is None or window.end is None):
        # Fill an open side from the data so the JSON always says what was covered.
        data_window = Window(
            datetime.fromisoformat(report.overall["first_timestamp"])
            if report.overall["first_timestamp"]
            else None,
            after(datetime.fromisoformat(report.overall["last_timestamp"]))
            if report.overall["last_timestamp"]
            else None,
        )
        report.window = Window(window.start or data_window.start, window.end or data_window.end)
    return LoadedReport(
        report=report,
        skipped=stream.skipped,
        skipped_reasons=dict(stream.skipped_reasons),
        sources=stream.sources,
    )


def _merge_pipelined(batches: Iterable[pl.DataFrame], plan: ReportPlan) -> Merger:
    """Every batch's partials merged, computing one batch's partials on a worker thread
    while the next batch is read and validated (Polars and pyarrow release the GIL, and
    much of a batch's work — a regular expression over one column, a Parquet page — runs
    on one core). At most two batches are in memory; partials are merged in input order,
    and an error from either side surfaces as it would without the thread."""
    from concurrent.futures import Future, ThreadPoolExecutor

    merger = report_merger()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmobs-partials") as pool:
        pending: Future[pl.DataFrame] | None = None
        for batch in batches:
            nxt = pool.submit(batch_partials, batch, plan)
            if pending is not None:
                merger.add(pending.result())
            pending = nxt
        if pending is not None:
            merger.add(pending.result())
    return merger


def _on_engine(
    engine: Any,
    paths: Sequence[str | Path],
    columns: list[str],
    plan: ReportPlan,
    start: datetime | None,
    end: datetime | None,
    on_error: str,
    options: Any,
    say: Callable[[str], None],
) -> Any:
    """The merged partials computed on Spark or Ray (:mod:`core.engines`)."""
    from functools import partial

    from llmobs_cli.core.engines.run import merged_partials
    from llmobs_cli.core.ingest.readers import _with_dependencies
    from llmobs_cli.core.record.schema import REQUIRED

    wanted = sorted(_with_dependencies(columns) | {"trace_id", "span_id"})
    required = tuple(f for f in (*REQUIRED, "latency_ms") if f in wanted)
    say(f"running on {engine.name}")
    return merged_partials(
        engine,
        paths,
        wanted,
        partial(batch_partials, plan=plan),
        since=start,
        until=end,
        required=required,
        on_error=on_error,
        keep_duplicates=bool(getattr(options, "keep_duplicates", False)),
    )


def _key_frame(merged: pl.DataFrame | None, plan: ReportPlan) -> pl.DataFrame:
    """The distinct group keys seen (one row per group of the ``--by`` and rule levels),
    standing in for the rows in the name checks: a field with a value in some row has it
    in some group, and every value of a field is some group's."""
    spec = plan.spec
    if merged is None:
        return pl.DataFrame()
    frames = [
        level_sums(merged, spec, i).select(list(keys))
        for i, keys in enumerate(spec.levels)
        if keys and _BUCKET not in keys and i < len(spec.levels) - 1
    ]
    n = int(level_sums(merged, spec, 0)["sampled"].sum()) if merged.height else 0
    if not frames:
        return pl.DataFrame({"_n": [1] * min(n, 1)})
    return pl.concat(frames, how="diagonal_relaxed")


def _latest(
    paths: Sequence[str | Path], on_error: str, fmt: str | None, options: Any, memory: int
) -> datetime | None:
    """The latest timestamp in the inputs (one pass over the timestamp column only)."""
    import warnings

    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.ingest.readers.stream import Stream

    opts = options or ReadOptions()
    latest: datetime | None = None
    stream = Stream(
        paths,
        columns=["timestamp"],
        on_error=on_error,  # type: ignore[arg-type]
        fmt=fmt,
        options=ReadOptions(
            route_from=opts.route_from,
            include_embeddings=opts.include_embeddings,
            keep_duplicates=True,  # a copy has its original's timestamp
        ),
        memory=memory,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the main pass says them
        for batch in stream:
            got = batch.select(pl.col("timestamp").max()).item()
            if got is not None and (latest is None or got > latest):
                latest = got
    return latest


def _check_selection(
    frame: pl.DataFrame,
    loaded: Any,
    window: Window | None,
    by: Sequence[str],
    rules: Sequence[Any],
    paths: Sequence[str | Path],
    since: str | None,
    until: str | None,
    fmt: str | None,
    options: Any,
) -> None:
    """Nothing read is exit 2, never an all-zero report; so is a name the data lacks."""
    from llmobs_cli.core.ingest.span import data_span
    from llmobs_cli.core.record import names
    from llmobs_cli.core.record.windows import require_rows, window_option
    from llmobs_cli.core.report import gates
    from llmobs_cli.errors import InputError

    sources = loaded.sources
    if frame.height == 0:
        if window is not None:
            require_rows(
                0,
                window_option(since=since, until=until),
                window,
                lambda: data_span(paths, fmt=fmt, options=options),
                sources,
            )
        raise InputError([f"{names.dump_name(sources)}: no calls to report (no records read)"])
    from llmobs_cli.core.ingest.span import data_sample

    names.require_fields(
        frame, by, sources, "--by", sample=lambda: data_sample(paths, fmt=fmt, options=options)
    )
    gates.check_scopes(rules, frame, sources)


def _is_duration(text: str) -> bool:
    from llmobs_cli.core.record.windows import is_duration

    return is_duration(text)


def _clean(obj: Any) -> Any:
    """NaN/inf → None (strict JSON), recursively."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clean(v) for v in obj]
    return obj
