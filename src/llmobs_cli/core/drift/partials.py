"""Drift's per-batch partial function: rows → additive partials plus bounded samples.

:func:`batch_parts` is a pure function of one batch of canonical rows and a picklable
:class:`DriftPlan`. It tags each row with its window (baseline, current or neither),
computes every columnar feature once, and returns three small frames:

* ``partials`` — a long frame that merges by a plain group-by-sum
  (:func:`llmobs_cli.core.partials.merge`): per (part, feature, window, level, group)
  the rows, Σw and Σw² (part ``rows``: every row; ``mom``: rows with a value of a numeric
  feature, with Σw·x, Σw·x², min and max; ``num``: the same per log bucket of the value,
  :mod:`llmobs_cli.core.partials.sketch`; ``cat``: per category of a categorical feature;
  ``pres``: per feature the rows with a value, with a numeric value, and, for cost, the
  rows priced from the price table and those left unpriced);
* ``sample`` — the rows of the batch, reduced to their window, weight, cluster hash,
  group values and feature values (no text), for :class:`ClusterSample`;
* ``text`` — the same rows' user text and response (cut to :data:`TEXT_CHARS`), only
  when a fitted text feature (language, topics, vocabulary) is asked for.

The samples are thinned by cluster hash (:mod:`llmobs_cli.core.drift.sample`), so what a
run holds is bounded by the caps, never by the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import polars as pl

from llmobs_cli.core.drift.features import (
    FITTED,
    STANDARD,
    FeatureSpec,
    _user_text,
    custom_spec,
    last_user_turn,
)
from llmobs_cli.core.drift.result import BASE, CUR, WIN
from llmobs_cli.core.partials.sketch import ALPHA, bin_expr
from llmobs_cli.core.record.fields import base_column, field_expr
from llmobs_cli.core.record.weights import W

#: The cluster hash column (sessions, else traces, else the row).
CL = "_cl"
#: Order of a row in the input (batch index × 2³² + row), so samples keep input order.
SEQ = "_seq"
#: Characters of text kept per row for the fitted text features.
TEXT_CHARS = 4000
_MAX = (1 << 64) - 1
#: Polars hash seed of the cluster key (the same as the whole-frame path used).
_HASH_SEED = 11


def vcol(name: str) -> str:
    """The sample column holding feature ``name``'s value."""
    return "v:" + name


def ncol(name: str) -> str:
    """The sample column holding an ``auto`` feature's value read as a number."""
    return "vn:" + name


def gcol(field_name: str) -> str:
    """The sample column holding a group field's value (text, null when absent)."""
    return "g:" + field_name


def kcol(field_name: str) -> str:
    """The partial frame's key column of a group field."""
    return "k:g:" + field_name


@dataclass(frozen=True)
class Feature:
    """A columnar feature as the batch function computes it."""

    name: str
    kind: str  # numeric | rate | categorical | auto | cost


@dataclass(frozen=True)
class DriftPlan:
    """What every batch computes (plain data: picklable).

    ``current``/``baseline`` are ``(start, end)`` bounds (``None`` open); a batch read
    from a baseline *file* is tagged with ``fixed_window`` instead. ``levels`` are the key
    sets partials are grouped by: ``()`` overall, the ``--by`` fields together, then each
    slice dimension on its own.
    """

    features: tuple[Feature, ...]
    by: tuple[str, ...]
    slices: tuple[str, ...]
    current: tuple[datetime | None, datetime | None]
    baseline: tuple[datetime | None, datetime | None] | None
    patterns: tuple[str, ...] | None = None
    price_table: Any = None
    text: tuple[str, ...] = ()  # "user" and/or "response"
    embedding: bool = False
    alpha: float = ALPHA
    #: Caps of the cluster sample (all rows) and of the text sample (per window).
    sample_rows: int = 250_000
    text_rows: int = 10_000
    #: Partials also keyed by UTC day (``k:day``), for a state kept across runs.
    by_day: bool = False

    @property
    def group_fields(self) -> list[str]:
        return list(dict.fromkeys([*self.by, *self.slices]))

    @property
    def levels(self) -> list[tuple[str, ...]]:
        out: list[tuple[str, ...]] = [()]
        if self.by:
            out.append(tuple(self.by))
        out += [(d,) for d in self.slices if (d,) not in out]
        return out


def feature_of(name: str, dtype: Any) -> Feature | None:
    """The columnar feature ``name`` (None for fitted text features)."""
    if name in FITTED:
        return None
    if name == "cost_usd":
        return Feature(name, "cost")
    spec = STANDARD.get(name) or custom_spec(name, dtype)
    return Feature(name, spec.kind)


def spec_of(name: str, kind: str | None = None) -> FeatureSpec:
    """The :class:`FeatureSpec` describing ``name`` (its kind resolved when given)."""
    spec = STANDARD.get(name) or custom_spec(name, None)
    kind = "numeric" if kind == "cost" else kind
    if kind is not None and kind != spec.kind:
        spec = FeatureSpec(spec.name, kind, spec.layer, spec.columns, spec.unit, spec.expr)
    return spec


class BatchParts(NamedTuple):
    partials: pl.DataFrame
    sample: pl.DataFrame
    text: pl.DataFrame | None
    rows: int
    #: Thresholds the batch's own bottom-k cut reached (key -1: all windows), which the
    #: samples must adopt so that no cluster above them survives from another batch.
    sample_cut: dict[int, int]
    text_cut: dict[int, int]


def _window(plan: DriftPlan, fixed: int | None) -> pl.Expr:
    if fixed is not None:
        return pl.lit(fixed, pl.Int8)
    ts = pl.col("timestamp")

    def inside(bounds: tuple[datetime | None, datetime | None]) -> pl.Expr:
        cond = ts.is_not_null()
        if bounds[0] is not None:
            cond = cond & (ts >= bounds[0])
        if bounds[1] is not None:
            cond = cond & (ts < bounds[1])
        return cond

    expr: Any = pl.when(inside(plan.current)).then(pl.lit(CUR, pl.Int8))
    if plan.baseline is not None:
        expr = expr.when(inside(plan.baseline)).then(pl.lit(BASE, pl.Int8))
    return expr.otherwise(None)


def _cluster(schema: pl.Schema) -> pl.Expr:
    keys = [pl.col(c).cast(pl.String) for c in ("session_id", "trace_id") if c in schema]
    return pl.coalesce([*keys, pl.col(SEQ).cast(pl.String)]).hash(_HASH_SEED).alias(CL)


def _values(lf: pl.LazyFrame, plan: DriftPlan) -> tuple[pl.LazyFrame, list[str]]:
    """Add every feature's value column; return the frame and the extra ``pres`` sums."""
    from llmobs_cli.core.report import pricing

    schema = lf.collect_schema()
    patterns = list(plan.patterns) if plan.patterns is not None else None
    exprs: list[pl.Expr] = []
    extra: list[str] = []
    for f in plan.features:
        if f.kind == "cost":
            continue
        spec = spec_of(f.name)
        if spec.expr is None:
            continue
        if f.name not in STANDARD and base_column(f.name) not in schema:
            exprs.append(pl.lit(None, pl.Float64).alias(vcol(f.name)))
            continue
        expr = spec.expr(patterns)
        if f.kind == "auto":
            exprs.append(expr.cast(pl.String).alias(vcol(f.name)))
            exprs.append(expr.cast(pl.String).cast(pl.Float64, strict=False).alias(ncol(f.name)))
        elif f.kind in ("numeric", "rate"):
            exprs.append(expr.cast(pl.Float64).alias(vcol(f.name)))
        else:
            exprs.append(expr.cast(pl.String).alias(vcol(f.name)))
    lf = lf.with_columns(exprs) if exprs else lf
    if any(f.kind == "cost" for f in plan.features):
        frame = lf
        fill = {
            "cost_usd": pl.Float64,
            "cached_tokens": pl.Int64,
            "reasoning_tokens": pl.Int64,
            "cache_write_tokens": pl.Int64,
            "status": pl.String,
            "model": pl.String,
            "provider": pl.String,
            "input_tokens": pl.Int64,
            "output_tokens": pl.Int64,
        }
        have = set(schema)
        tokens = {"model", "provider", "input_tokens", "output_tokens"} <= have
        frame = frame.with_columns(
            pl.lit(None, dtype=t).alias(c) for c, t in fill.items() if c not in have
        )
        if tokens:
            table = plan.price_table
            if table is None:
                table = pricing.build_price_table()
            priced = pricing.with_cost(frame, table)
            frame = priced.with_columns(pl.col(pricing.COST).alias(vcol("cost_usd"))).drop(
                [c for c in priced.collect_schema() if c not in frame.collect_schema()]
            )
        else:
            frame = frame.with_columns(pl.col("cost_usd").cast(pl.Float64).alias(vcol("cost_usd")))
        frame = frame.with_columns(
            pl.col("cost_usd").is_null().cast(pl.Int64).alias("_cost_missing"),
            pl.lit(1 if tokens else 0, pl.Int64).alias("_cost_tokens"),
        )
        lf = frame
        extra = ["_cost_missing", "_cost_tokens"]
    return lf, extra


def batch_parts(
    batch: pl.DataFrame | pl.LazyFrame,
    plan: DriftPlan,
    *,
    seq: int = 0,
    fixed_window: int | None = None,
    limits: dict[int, int] | None = None,
    text_limits: dict[int, int] | None = None,
) -> BatchParts:
    """One batch's partials and samples (see the module docstring)."""
    lf = tag_rows(batch, plan, seq=seq, fixed_window=fixed_window)
    tagged = lf
    lf, extra = _values(lf, plan)
    if plan.by_day:
        lf = lf.with_columns(pl.col("timestamp").dt.date().alias(_DAY))
    keep = [WIN, W, CL, SEQ, "timestamp", *(gcol(f) for f in plan.group_fields)]
    keep += [_DAY] if plan.by_day else []
    for f in plan.features:
        keep.append(vcol(f.name))
        if f.kind == "auto":
            keep.append(ncol(f.name))
    keep += extra
    # The text columns never leave the query: only the values computed from them do.
    have = lf.collect_schema()
    frame = lf.select([c for c in keep if c in have]).filter(pl.col(WIN).is_not_null()).collect()
    parts = _partials(frame, plan, extra)
    # Only a batch's own bottom-k clusters can be in the bottom-k of all batches: cutting
    # here bounds what a batch hands over.
    sample = frame.drop([*extra, _DAY], strict=False).filter(
        bottom_k(frame, plan.sample_rows, per_window=False, limits=limits)
    )
    sample_cut: dict[int, int] = {}
    # A threshold is reached only when the cap left out rows below the thresholds already
    # reached (rows above them were never candidates: cutting at the largest hash kept
    # would drop other batches' clusters in between).
    under = frame.filter(pl.col(CL) <= (limits or {}).get(-1, _MAX)).height
    if 0 < sample.height < under:
        sample_cut[-1] = int(sample[CL].max())  # type: ignore[arg-type]
    text = None
    text_cut: dict[int, int] = {}
    if plan.text:
        kept = frame.select(WIN, CL).filter(
            bottom_k(frame, plan.text_rows, per_window=True, limits=text_limits)
        )
        for side in (BASE, CUR):
            lim = (text_limits or {}).get(side, _MAX)
            n_all = frame.filter((pl.col(WIN) == side) & (pl.col(CL) <= lim)).height
            mine = kept.filter(pl.col(WIN) == side)
            if mine.height < n_all and mine.height:
                text_cut[side] = int(mine[CL].max())  # type: ignore[arg-type]
        lean = tagged.filter(pl.col(WIN).is_not_null()).join(
            kept.unique().lazy(), on=[WIN, CL], how="semi"
        )
        text = _text(lean.collect(), plan)
    return BatchParts(parts, sample, text, frame.height, sample_cut, text_cut)


def tag_rows(
    batch: pl.DataFrame | pl.LazyFrame, plan: DriftPlan, *, seq: int, fixed_window: int | None
) -> pl.LazyFrame:
    """The batch with each row's window (null outside both), weight, input order, cluster
    hash and group values: the columns every drift pass keys its partials by."""
    lf = batch.lazy()
    schema = lf.collect_schema()
    lf = lf.with_columns(
        _window(plan, fixed_window).alias(WIN),
        (1.0 / pl.col("sample_rate").fill_null(1.0)).cast(pl.Float64).alias(W),
        (pl.int_range(pl.len(), dtype=pl.Int64) + (seq << 32)).alias(SEQ),
    )
    lf = lf.with_columns(_cluster(schema))
    groups = []
    for g in plan.group_fields:
        if base_column(g) in schema:
            groups.append(field_expr(g).cast(pl.String).alias(gcol(g)))
        else:
            groups.append(pl.lit(None, pl.String).alias(gcol(g)))
    return lf.with_columns(groups) if groups else lf


def bottom_k(
    frame: pl.DataFrame,
    cap: int,
    *,
    per_window: bool,
    limits: dict[int, int] | None = None,
) -> pl.Expr:
    """A filter keeping the rows of the clusters with the smallest hashes, at most ``cap``
    rows (per window with ``per_window``), below the thresholds ``limits`` already
    reached (key ``-1`` for all windows together)."""
    keys = [WIN, CL] if per_window else [CL]
    sizes = frame.group_by(keys).agg(pl.len().alias("_n")).sort(CL)
    if limits:
        if per_window:
            cond = pl.lit(False)
            for win, lim in limits.items():
                cond = cond | ((pl.col(WIN) == win) & (pl.col(CL) <= lim))
            others = [w for w in (BASE, CUR) if w not in limits]
            if others:
                cond = cond | pl.col(WIN).is_in(others)
        else:
            cond = pl.col(CL) <= limits.get(-1, (1 << 64) - 1)
        sizes = sizes.filter(cond)
    over = [WIN] if per_window else []
    cum = pl.col("_n").cum_sum().over(over) if over else pl.col("_n").cum_sum()
    # The first cluster of each window stays even when it alone passes the cap.
    first = pl.int_range(pl.len()).over(over) == 0 if over else pl.int_range(pl.len()) == 0
    kept = sizes.filter((cum <= cap) | first)
    if per_window:
        return pl.struct(WIN, CL).is_in(kept.select(pl.struct(WIN, CL)).to_series().implode())
    return pl.col(CL).is_in(kept[CL].implode())


def _text(frame: pl.DataFrame, plan: DriftPlan) -> pl.DataFrame:
    cols: list[pl.Expr] = [pl.col(WIN), pl.col(W), pl.col(CL), pl.col(SEQ), pl.col("timestamp")]
    cols += [pl.col(gcol(f)) for f in plan.group_fields]
    if "user" in plan.text:
        if "prompt" in frame.columns and "messages" in frame.columns:
            user = _user_text()
        elif "prompt" in frame.columns:
            user = pl.col("prompt")
        elif "messages" in frame.columns:
            user = last_user_turn()
        else:
            user = pl.lit(None, pl.String)
        cols.append(user.cast(pl.String).str.slice(0, TEXT_CHARS).alias("user_text"))
    if "response" in plan.text:
        resp = pl.col("response") if "response" in frame.columns else pl.lit(None, pl.String)
        cols.append(resp.cast(pl.String).str.slice(0, TEXT_CHARS).alias("response"))
    if plan.embedding:
        if "embedding" in frame.columns:
            cols.append(pl.col("embedding"))
        elif "metadata" in frame.columns and frame.schema["metadata"] == pl.String:
            cols.append(
                pl.when(pl.col("metadata").str.contains('"embedding"', literal=True))
                .then(
                    pl.col("metadata")
                    .str.json_path_match("$.embedding")
                    .str.json_decode(pl.List(pl.Float64))
                )
                .otherwise(None)
                .alias("embedding")
            )
    return frame.select(cols)


_DAY = "_day"
DAY = "k:day"
_P = "k:part"
_F = "k:feat"
_L = "k:level"
_B = "k:bin"
_C = "k:cat"
_K = "k:win"
SUMS = ("sum:n", "sum:w", "sum:w2")


def _base_aggs(w: pl.Expr = pl.col(W)) -> list[pl.Expr]:
    return [
        pl.len().cast(pl.Int64).alias("sum:n"),
        w.sum().alias("sum:w"),
        (w * w).sum().alias("sum:w2"),
    ]


def _partials(frame: pl.DataFrame, plan: DriftPlan, extra: list[str]) -> pl.DataFrame:
    lf = frame.lazy()
    queries: list[pl.LazyFrame] = []
    w = pl.col(W)
    for li, level in enumerate(plan.levels):
        day = [_DAY] if plan.by_day else []
        keys = [WIN, *day, *(gcol(f) for f in level)]

        def tag(
            q: pl.LazyFrame, part: str, feat: str, level: tuple[str, ...] = level, li: int = li
        ) -> Any:
            names = {WIN: _K, **{gcol(f): kcol(f) for f in level}}
            if plan.by_day:
                names[_DAY] = DAY
            return q.rename(names).with_columns(
                pl.lit(part).alias(_P), pl.lit(feat).alias(_F), pl.lit(li, pl.Int32).alias(_L)
            )

        rows = lf.group_by(keys).agg(
            *_base_aggs(),
            pl.col("timestamp").dt.epoch("us").cast(pl.Float64).min().alias("min:x"),
            pl.col("timestamp").dt.epoch("us").cast(pl.Float64).max().alias("max:x"),
        )
        queries.append(tag(rows, "rows", ""))
        for f in plan.features:
            v = vcol(f.name)
            if f.kind in ("numeric", "cost", "auto"):
                num = ncol(f.name) if f.kind == "auto" else v
                x = pl.col(num)
                has = lf.filter(x.is_not_null() & x.is_finite())
                mom = has.group_by(keys).agg(
                    *_base_aggs(),
                    (w * x).sum().alias("sum:wx"),
                    (w * x * x).sum().alias("sum:wx2"),
                    x.min().alias("min:x"),
                    x.max().alias("max:x"),
                )
                queries.append(tag(mom, "mom", f.name))
                bins = has.with_columns(bin_expr(x, plan.alpha).alias(_B)).group_by([*keys, _B])
                queries.append(tag(bins.agg(*_base_aggs()), "num", f.name))
            if f.kind in ("categorical", "rate", "auto"):
                c = pl.col(v)
                if f.kind == "rate":
                    c = (
                        pl.when(c.is_null() | c.is_nan())
                        .then(None)
                        .otherwise((c > 0).cast(pl.Int8).cast(pl.String))
                    )
                cats = (
                    lf.with_columns(c.alias(_C))
                    .filter(pl.col(_C).is_not_null())
                    .group_by([*keys, _C])
                    .agg(*_base_aggs())
                )
                queries.append(tag(cats, "cat", f.name))
        if li == 0:
            for f in plan.features:
                v = vcol(f.name)
                aggs = [pl.col(v).is_not_null().sum().cast(pl.Int64).alias("sum:n")]
                if f.kind == "auto":
                    aggs.append(pl.col(ncol(f.name)).is_not_null().sum().alias("sum:w"))
                elif f.kind == "cost":
                    aggs.append(pl.col("_cost_missing").sum().cast(pl.Float64).alias("sum:w"))
                    unpriced = (pl.col(v).is_null() & (pl.col("_cost_missing") == 1)).sum()
                    aggs.append(unpriced.cast(pl.Float64).alias("sum:w2"))
                    aggs.append(pl.col("_cost_tokens").max().cast(pl.Float64).alias("max:x"))
                q = (lf.group_by(day).agg(aggs) if day else lf.select(aggs)).with_columns(
                    pl.lit(CUR, pl.Int8).alias(WIN)
                )
                queries.append(tag(q, "pres", f.name))
    out = pl.concat(pl.collect_all(queries), how="diagonal_relaxed")
    return conform(out, plan)


def conform(df: pl.DataFrame, plan: DriftPlan) -> pl.DataFrame:
    """Every partial column present, in one order and type (so batches concatenate)."""
    cols: dict[str, pl.DataType] = {
        _P: pl.String(),
        _F: pl.String(),
        _K: pl.Int8(),
        _L: pl.Int32(),
    }
    for f in plan.group_fields:
        cols[kcol(f)] = pl.String()
    if plan.by_day:
        cols[DAY] = pl.Date()
    cols |= {_B: pl.Int64(), _C: pl.String()}
    cols |= {
        "sum:n": pl.Int64(),
        "sum:w": pl.Float64(),
        "sum:w2": pl.Float64(),
        "sum:wx": pl.Float64(),
        "sum:wx2": pl.Float64(),
        "min:x": pl.Float64(),
        "max:x": pl.Float64(),
    }
    return df.select(
        (pl.col(c).cast(t) if c in df.columns else pl.lit(None, t).alias(c))
        for c, t in cols.items()
    )
