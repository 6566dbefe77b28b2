"""Release and model changes per route, and a weighted before/after table for each.

A deployment should be visible: each new ``release`` and each new ``model`` on a route
is drawn as a marker on every time chart, and gets a row in a table that compares
latency, cost, errors and judged quality just before and just after it.

Contract of :func:`find_changes`
    A *change* is the introduction of a value (a ``release``, or a ``model``) on a route:
    its first row, at time ``at``, when the route already had rows in the ``window``
    (default 7 days) before it, and enough of them that the value would have been seen
    there had it existed: with ``s`` its share of the route's sessions in the window
    from ``at`` (add-one smoothed: ``k/(n+1)``) and ``m`` the route's sessions in the
    window before, the chance ``(1-s)^m`` of seeing none of it by luck is below
    :data:`MAX_CHANCE`. Sessions (each counted once, at its first call with the value),
    because the calls of a session share a model and arrive
    in bursts (a row without ``session_id`` counts as its own session). So the values
    a route starts with are its starting state, and a model used for 2 % of a quiet
    route's calls whose first row happens to come late is not a "new" model. ``before`` is
    the value with the most rows on the route in the window before ``at`` (the version
    being replaced). Rows whose value is null are ignored. A rollback to a value seen
    earlier is not an introduction and makes no marker (the value already has its own).
    Counting is done on hourly counts per (route, value), so it costs one small group-by.

Contract of :func:`compare`
    For each change, *before* is the rows of the route carrying the ``before`` value in
    ``[at - window, at)`` and *after* the rows carrying the new value in
    ``[at, at + window)`` (default window 7 days), so the two sides are the two versions
    each in its own time, not a mix of versions. Every figure is weighted by
    ``1/sample_rate`` (:mod:`llmobs_cli.core.record.weights`): ``calls`` is Σw, percentiles come
    from the weighted CDF, ``cost_per_call_usd`` and ``error_rate`` are Hájek means
    (cost over priced rows only; ``unpriced`` counts rows with no cost). Quality comes
    from judgment rows (an ``evals.parquet`` with ``route``, ``timestamp``, ``release``,
    ``model``, ``evaluator``, ``score``, ``weight``, ``error``): per evaluator, the
    weighted mean score with its 95 % interval, judged rows and ``n_eff`` on each side,
    ``delta`` = after − before with its standard error and two-sided p-value.

:func:`markers` merges changes that happened at the same moment on several routes (one
deployment of a global release) into one marker per chart.

Pure: no I/O, no printing. Group work is Polars; the small per-group judgment arrays use
numpy through :func:`llmobs_cli.core.record.weights.hajek_mean_ci`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import polars as pl
from scipy import stats

from llmobs_cli.core.record.weights import W, hajek_expr, hajek_mean_ci, n_eff_expr, quantile_aggs

Kind = Literal["release", "model"]
KINDS: tuple[Kind, ...] = ("release", "model")

#: The canonical columns :func:`find_changes` and :func:`compare` read.
COLUMNS: tuple[str, ...] = (
    "timestamp",
    "route",
    "model",
    "release",
    "sample_rate",
    "latency_ms",
    "ttft_ms",
    "cost_usd",
    "status",
    "input_tokens",
    "output_tokens",
    "session_id",
)

DEFAULT_WINDOW = timedelta(days=7)
#: A value is new when the chance of having missed it before its first row is below this
#: (small, because every route × value of a dump is a candidate).
MAX_CHANCE = 0.001
_PCTS = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Change:
    """One new ``release`` or ``model`` value on one route."""

    kind: Kind
    route: str
    at: datetime
    before: str | None
    after: str

    @property
    def label(self) -> str:
        return f"{self.before or '∅'} → {self.after}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "route": self.route,
            "at": self.at.isoformat(),
            "before": self.before,
            "after": self.after,
        }


@dataclass
class Marker:
    """A change drawn once on a chart: one or more routes changed at the same moment."""

    kind: Kind
    at: datetime
    before: str | None
    after: str
    routes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "at": self.at.isoformat(),
            "before": self.before,
            "after": self.after,
            "routes": list(self.routes),
        }


@dataclass
class Side:
    """Weighted figures of one side (before or after) of a change."""

    sampled: int = 0
    calls: float = 0.0
    n_eff: float = 0.0
    latency_ms: dict[str, float | None] = field(default_factory=dict)
    ttft_ms: dict[str, float | None] = field(default_factory=dict)
    cost_per_call_usd: float | None = None
    unpriced: int = 0
    error_rate: float | None = None
    output_tokens_mean: float | None = None
    start: datetime | None = None
    end: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat() if self.start else None
        d["end"] = self.end.isoformat() if self.end else None
        return d


@dataclass
class Quality:
    """One evaluator's weighted mean score before and after a change."""

    evaluator: str
    before: dict[str, float | int | None]
    after: dict[str, float | int | None]
    delta: float | None
    se: float | None
    p_value: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    change: Change
    before: Side
    after: Side
    quality: list[Quality] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = self.change.as_dict()
        out["before_stats"] = self.before.as_dict()
        out["after_stats"] = self.after.as_dict()
        out["quality"] = [q.as_dict() for q in self.quality]
        return out


@dataclass
class ReleaseResult:
    changes: list[Change]
    markers: list[Marker]
    comparisons: list[Comparison]
    window_days: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "window_days": self.window_days,
            "changes": [c.as_dict() for c in self.changes],
            "markers": [m.as_dict() for m in self.markers],
            "comparisons": [c.as_dict() for c in self.comparisons],
        }


# --- change points ---------------------------------------------------------------------


def find_changes(
    frame: pl.DataFrame | pl.LazyFrame,
    kinds: tuple[Kind, ...] = KINDS,
    *,
    window: timedelta = DEFAULT_WINDOW,
    max_chance: float = MAX_CHANCE,
) -> list[Change]:
    """Every introduction of a ``release``/``model`` value on a route (see module doc)."""
    lf = frame.lazy().filter(pl.col("timestamp").is_not_null())
    lf = lf.with_columns(pl.col("route").fill_null("default"))
    # Calls of one session share their model and release and come in bursts: count
    # sessions (each at its first call with the value; a call without a session counts
    # alone), not calls, or a burst of one session would make a value look common.
    has_sessions = "session_id" in lf.collect_schema().names()
    if has_sessions:
        lf = lf.with_row_index("_i").with_columns(
            pl.coalesce(pl.col("session_id"), pl.format("\x00{}", pl.col("_i"))).alias("_unit")
        )
    out: list[Change] = []
    for kind in kinds:
        rows = lf.filter(pl.col(kind).is_not_null())
        if has_sessions:
            rows = rows.group_by("route", kind, "_unit").agg(pl.col("timestamp").min())
        hourly = (
            rows.group_by("route", kind, pl.col("timestamp").dt.truncate("1h").alias("_h"))
            .agg(pl.len().alias("_n"), pl.col("timestamp").min().alias("_first"))
            .collect()
        )
        out.extend(changes_from_hourly(kind, hourly, window=window, max_chance=max_chance))
    out.sort(key=lambda c: (c.at, c.kind, c.route))
    return out


def changes_from_hourly(
    kind: Kind,
    hourly: pl.DataFrame,
    *,
    window: timedelta = DEFAULT_WINDOW,
    max_chance: float = MAX_CHANCE,
) -> list[Change]:
    """The introductions of ``kind`` values from units counted per hour: one row per
    (``route``, value, ``_h``) with ``_n`` units (sessions at their first call with the
    value, or calls without a session) and ``_first`` their first timestamp — what
    :func:`find_changes` counts, and what the dashboard merges from partials."""
    out: list[Change] = []
    for (route,), part in hourly.sort("route", "_h").group_by("route", maintain_order=True):
        out.extend(_route_changes(kind, str(route), part, window, max_chance))
    return out


def _route_changes(
    kind: Kind, route: str, part: pl.DataFrame, window: timedelta, max_chance: float
) -> list[Change]:
    """Introductions on one route from its hourly counts per value (a small table)."""
    totals = part.group_by("_h").agg(pl.col("_n").sum()).sort("_h")
    hours = totals["_h"].to_numpy()
    cum = np.concatenate([[0], np.cumsum(totals["_n"].to_numpy())])
    win = np.timedelta64(int(window.total_seconds() * 1e6), "us")

    def route_rows(lo: Any, hi: Any) -> int:  # numpy datetime64 bounds
        return int(
            cum[np.searchsorted(hours, hi, "left")] - cum[np.searchsorted(hours, lo, "left")]
        )

    firsts = (
        part.group_by(kind)
        .agg(pl.col("_h").min().alias("h0"), pl.col("_first").min().alias("at"))
        .sort("at", kind)
    )
    changes: list[Change] = []
    for value, h0, at in firsts.iter_rows():
        h = np.datetime64(h0.replace(tzinfo=None), "us")
        before_n = route_rows(h - win, h)
        if before_n == 0:
            continue  # the route's starting state, not a change
        vals = part.filter(pl.col(kind) == value)
        vh = vals["_h"].to_numpy() if vals.height else np.array([], dtype="datetime64[us]")
        after_value = int(vals["_n"].to_numpy()[(vh >= h) & (vh < h + win)].sum())
        after_all = route_rows(h, h + win)
        share = after_value / (after_all + 1)
        # The chance that the sessions before showed none of this value had it been there
        # all along at its later share: a value that "appears" late only by luck (a model
        # serving a few sessions of a quiet route) is not an introduction.
        if (1.0 - share) ** before_n >= max_chance:
            continue
        prev = (
            part.filter(
                (pl.col(kind) != value) & (pl.col("_h") >= h0 - window) & (pl.col("_h") < h0)
            )
            .group_by(kind)
            .agg(pl.col("_n").sum())
            .sort("_n", kind, descending=[True, False])
        )
        before = str(prev[kind][0]) if prev.height else None
        changes.append(Change(kind=kind, route=route, at=at, before=before, after=str(value)))
    return changes


def markers(changes: list[Change], tolerance: timedelta = timedelta(hours=1)) -> list[Marker]:
    """Changes of the same kind and values within ``tolerance`` of each other, merged."""
    merged: list[Marker] = []
    for c in sorted(changes, key=lambda c: (c.kind, c.before or "", c.after, c.at)):
        last = merged[-1] if merged else None
        if (
            last is not None
            and (last.kind, last.before, last.after) == (c.kind, c.before, c.after)
            and c.at - last.at <= tolerance
        ):
            if c.route not in last.routes:
                last.routes.append(c.route)
            continue
        merged.append(
            Marker(kind=c.kind, at=c.at, before=c.before, after=c.after, routes=[c.route])
        )
    merged.sort(key=lambda m: (m.at, m.kind))
    return merged


# --- before/after ----------------------------------------------------------------------


def _changes_frame(changes: list[Change], kind: Kind, window: timedelta) -> pl.DataFrame:
    rows = [(i, c.route, c.before, c.after, c.at) for i, c in enumerate(changes) if c.kind == kind]
    return pl.DataFrame(
        rows,
        schema={
            "_cid": pl.Int64,
            "route": pl.String,
            "_before": pl.String,
            "_after": pl.String,
            "_at": pl.Datetime("us", "UTC"),
        },
        orient="row",
    ).with_columns(
        (pl.col("_at") - window).alias("_lo"),
        (pl.col("_at") + window).alias("_hi"),
    )


def _sides(lf: pl.LazyFrame, changes: list[Change], window: timedelta) -> pl.LazyFrame:
    """Rows tagged ``_cid`` (index into ``changes``) and ``_side`` (before/after)."""
    parts: list[pl.LazyFrame] = []
    for kind in KINDS:
        cf = _changes_frame(changes, kind, window)
        if cf.height == 0:
            continue
        ts = pl.col("timestamp")
        before = lf.join(
            cf.lazy().select("_cid", "route", pl.col("_before").alias(kind), "_at", "_lo"),
            on=["route", kind],
            how="inner",
        ).filter((ts >= pl.col("_lo")) & (ts < pl.col("_at")))
        after = lf.join(
            cf.lazy().select("_cid", "route", pl.col("_after").alias(kind), "_at", "_hi"),
            on=["route", kind],
            how="inner",
        ).filter((ts >= pl.col("_at")) & (ts < pl.col("_hi")))
        keep = [pl.all().exclude("_at", "_lo", "_hi")]
        parts.append(before.select(*keep).with_columns(pl.lit("before").alias("_side")))
        parts.append(after.select(*keep).with_columns(pl.lit("after").alias("_side")))
    if not parts:
        return pl.LazyFrame()
    return pl.concat(parts, how="diagonal_relaxed")


def _ops_stats(tagged: pl.LazyFrame) -> dict[tuple[int, str], Side]:
    schema = tagged.collect_schema()
    has = set(schema.names())
    w = pl.col(W)
    aggs: list[pl.Expr] = [
        pl.len().alias("sampled"),
        w.sum().alias("calls"),
        n_eff_expr().alias("n_eff"),
        pl.col("timestamp").min().alias("start"),
        pl.col("timestamp").max().alias("end"),
    ]
    aggs += quantile_aggs("latency_ms", _PCTS) if "latency_ms" in has else []
    aggs += quantile_aggs("ttft_ms", _PCTS) if "ttft_ms" in has else []
    if "cost_usd" in has:
        aggs += [
            hajek_expr(pl.col("cost_usd")).alias("cost_per_call_usd"),
            pl.col("cost_usd").is_null().sum().alias("unpriced"),
        ]
    if "status" in has:
        aggs.append(hajek_expr((pl.col("status") == "error").cast(pl.Float64)).alias("error_rate"))
    if "output_tokens" in has:
        aggs.append(
            hajek_expr(pl.col("output_tokens").cast(pl.Float64)).alias("output_tokens_mean")
        )
    res = tagged.group_by("_cid", "_side").agg(aggs).collect()
    out: dict[tuple[int, str], Side] = {}
    for row in res.iter_rows(named=True):
        out[(row["_cid"], row["_side"])] = Side(
            sampled=int(row["sampled"]),
            calls=float(row["calls"]),
            n_eff=float(row["n_eff"]),
            latency_ms={
                f"p{int(q * 100)}": _num(row.get(f"latency_ms_p{int(q * 100)}")) for q in _PCTS
            },
            ttft_ms={f"p{int(q * 100)}": _num(row.get(f"ttft_ms_p{int(q * 100)}")) for q in _PCTS},
            cost_per_call_usd=_num(row.get("cost_per_call_usd")),
            unpriced=int(row.get("unpriced") or 0),
            error_rate=_num(row.get("error_rate")),
            output_tokens_mean=_num(row.get("output_tokens_mean")),
            start=row["start"],
            end=row["end"],
        )
    return out


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _quality(
    evals: pl.DataFrame, changes: list[Change], window: timedelta
) -> dict[int, list[Quality]]:
    """Per change and evaluator: weighted mean score before/after with intervals."""
    needed = {"route", "timestamp", "evaluator", "score"}
    if evals.height == 0 or not needed <= set(evals.columns):
        return {}
    ev = evals
    if "error" in ev.columns:
        ev = ev.filter(pl.col("error").is_null())
    # Human labels are not a probability sample (reviewers get the high-stakes, borderline
    # and disputed calls): they are not scores of a release.
    ev = ev.filter(pl.col("evaluator") != "human")
    weight = pl.col("weight") if "weight" in ev.columns else pl.lit(1.0)
    ev = ev.filter(pl.col("score").is_not_null()).with_columns(
        weight.cast(pl.Float64).alias(W),
        pl.col("timestamp").cast(pl.Datetime("us", "UTC")),
    )
    for kind in KINDS:
        if kind not in ev.columns:
            ev = ev.with_columns(pl.lit(None, dtype=pl.String).alias(kind))
    tagged = _sides(ev.lazy(), changes, window).collect()
    if tagged.height == 0:
        return {}
    out: dict[int, list[Quality]] = {}
    for (cid, evaluator), grp in tagged.sort("_cid", "evaluator").group_by(
        "_cid", "evaluator", maintain_order=True
    ):
        sides: dict[str, dict[str, float | int | None]] = {}
        ses: dict[str, float] = {}
        for side in ("before", "after"):
            part = grp.filter(pl.col("_side") == side)
            y = part["score"].to_numpy().astype(float)
            w = part[W].to_numpy().astype(float)
            if y.size == 0:
                sides[side] = {
                    "judged": 0,
                    "n_eff": 0.0,
                    "score": None,
                    "ci_low": None,
                    "ci_high": None,
                }
                continue
            mean, lo, hi, se = hajek_mean_ci(y, w)
            ne = float(np.sum(w) ** 2 / np.sum(w**2))
            sides[side] = {
                "judged": int(y.size),
                "n_eff": ne,
                "score": _num(mean),
                "ci_low": _num(lo),
                "ci_high": _num(hi),
            }
            ses[side] = se
        delta = se_d = p = None
        b, a = sides["before"].get("score"), sides["after"].get("score")
        if a is not None and b is not None:
            delta = float(a) - float(b)
            s = math.sqrt(ses["before"] ** 2 + ses["after"] ** 2)
            if s == s and s > 0:
                se_d = s
                p = float(2 * stats.norm.sf(abs(delta) / s))
        out.setdefault(int(cid), []).append(
            Quality(
                evaluator=str(evaluator),
                before=sides["before"],
                after=sides["after"],
                delta=delta,
                se=se_d,
                p_value=p,
            )
        )
    return out


def compare(
    frame: pl.DataFrame | pl.LazyFrame,
    changes: list[Change],
    *,
    evals: pl.DataFrame | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> list[Comparison]:
    """The weighted before/after figures of every change (see module doc)."""
    if not changes:
        return []
    lf = frame.lazy()
    names = set(lf.collect_schema().names())
    if W not in names:
        lf = lf.with_columns((1.0 / pl.col("sample_rate")).alias(W))
    lf = lf.with_columns(pl.col("route").fill_null("default"))
    ops = _ops_stats(_sides(lf, changes, window))
    return comparisons(changes, ops, evals=evals, window=window)


def comparisons(
    changes: list[Change],
    ops: dict[tuple[int, str], Side],
    *,
    evals: pl.DataFrame | None = None,
    window: timedelta = DEFAULT_WINDOW,
) -> list[Comparison]:
    """Each change with its sides' figures (``ops`` keyed by (index, ``before``/``after``);
    a side without rows is empty) and, from ``evals``, its judged quality."""
    qual = _quality(evals, changes, window) if evals is not None else {}
    return [
        Comparison(
            change=c,
            before=ops.get((i, "before"), Side()),
            after=ops.get((i, "after"), Side()),
            quality=qual.get(i, []),
        )
        for i, c in enumerate(changes)
    ]


def analyse(
    frame: pl.DataFrame | pl.LazyFrame,
    *,
    evals: pl.DataFrame | None = None,
    window: timedelta = DEFAULT_WINDOW,
    kinds: tuple[Kind, ...] = KINDS,
) -> ReleaseResult:
    """Changes, chart markers and before/after comparisons in one call."""
    changes = find_changes(frame, kinds, window=window)
    return ReleaseResult(
        changes=changes,
        markers=markers(changes),
        comparisons=compare(frame, changes, evals=evals, window=window),
        window_days=window.total_seconds() / 86400,
    )
