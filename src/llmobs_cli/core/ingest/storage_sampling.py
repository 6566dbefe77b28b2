"""Storage sampling (``llmobs sample``): keep a stable, per-route share of traces.

The seed's volume rule — sample aggressively at high volumes, keep full traces for
low-volume, high-stakes flows — as a pure function of a dump:

* **keep rate per route**, first match wins: ``--rate ROUTE=R``; 1.0 for a route with
  ``stakes: high`` in ``llmobs.yaml``; ``routes.<name>.keep_rate``; ``--default-rate``;
  ``sample.default_rate`` (1.0).
* **whole traces**: a trace is kept when ``u(trace_id) < rate``, with ``u`` the stable
  hash of :mod:`llmobs_cli.core.eval.plan` (salted ``"llmobs-sample"``, so eval selection
  on the sampled dump stays a random subsample). When the calls of one trace are on
  routes with different rates, the trace uses the largest, so it stays or goes as a
  whole and every call's inclusion probability is that rate.
* **weights stay true**: a kept row's ``sample_rate`` is multiplied by the rate it was
  kept with; Horvitz–Thompson figures computed on the output estimate the same
  population as on the input.
* **text dropped, numbers kept** (``--drop-text`` / ``sample.drop_text``, or per route
  ``routes.<name>.drop_text``): prompts, messages, documents, responses, references and
  logprobs are nulled for routine routes (never for high-stakes ones).

Streaming: every input is read in bounded batches (:mod:`llmobs_cli.core.ingest.batches`)
and kept rows are written as they come (:mod:`llmobs_cli.core.sinks`), then published
atomically. When the plan gives routes different rates, a first pass over ``trace_id``
and ``route`` finds the traces whose calls span routes of different rates; it keeps a
64-bit hash, a rate and a flag per distinct trace (about 24 bytes each), the one part of
memory that grows with the input. With one rate for every route that pass is skipped.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import polars as pl

from llmobs_cli.core import outputs
from llmobs_cli.core.eval.plan import stable_uniform
from llmobs_cli.core.ingest.batches import CHUNK_BYTES, BatchStats, iter_batches
from llmobs_cli.core.ingest.convert import output_format
from llmobs_cli.core.ingest.readers import OnError, ReadOptions, expand_paths
from llmobs_cli.core.progress import ProgressFn, no_progress
from llmobs_cli.core.record.config import Config
from llmobs_cli.core.record.schema import FIELDS, TEXT_FIELDS
from llmobs_cli.core.sinks import FileSink
from llmobs_cli.errors import InputWarning, UsageError

SAMPLE_SALT = "llmobs-sample"
KEEP = "_keep_rate"


@dataclass
class SamplePlan:
    """Keep rates and text policy per route."""

    rates: dict[str, float] = field(default_factory=dict)
    default_rate: float = 1.0
    high_stakes: set[str] = field(default_factory=set)
    drop_text: bool = False
    drop_text_routes: set[str] = field(default_factory=set)
    #: Routes the user named with ``--rate``: each must occur in the data (a typo would
    #: silently keep everything at the default rate).
    named: tuple[str, ...] = ()

    def rate_expr(self) -> pl.Expr:
        route = pl.col("route")
        mapping = dict(self.rates)
        return route.replace_strict(mapping, default=self.default_rate, return_dtype=pl.Float64)

    def drop_expr(self) -> pl.Expr:
        """True for rows whose text fields are dropped."""
        route = pl.col("route")
        routine = ~route.is_in(sorted(self.high_stakes))
        explicit = route.is_in(sorted(self.drop_text_routes))
        return (pl.lit(self.drop_text) & routine) | (explicit & routine)

    def as_dict(self) -> dict[str, object]:
        return {
            "rates": self.rates,
            "default_rate": self.default_rate,
            "high_stakes": sorted(self.high_stakes),
            "drop_text": self.drop_text,
            "drop_text_routes": sorted(self.drop_text_routes),
        }


def parse_rates(items: Sequence[str]) -> dict[str, float]:
    """``["chat=0.01", "search_qa=0.1"]`` → rates; a UsageError names a bad item."""
    out: dict[str, float] = {}
    for item in items:
        route, sep, value = item.rpartition("=")
        if not sep or not route:
            raise UsageError(f"rate: expected ROUTE=RATE, got '{item}'", param="rate")
        out[route] = _rate(value, f"rate {route}")
    return out


def _rate(value: str | float, what: str) -> float:
    try:
        r = float(value)
    except ValueError as exc:
        raise UsageError(
            f"{what}: expected a number in (0, 1], got '{value}'", param=what.split()[0]
        ) from exc
    if not 0 < r <= 1:
        raise UsageError(f"{what}: expected a number in (0, 1], got {value}", param=what.split()[0])
    return r


def build_plan(
    config: Config,
    rates: Mapping[str, float] | None = None,
    default_rate: float | None = None,
    drop_text: bool | None = None,
) -> SamplePlan:
    """Flags over configuration (see the module docstring for the precedence)."""
    high = config.high_stakes_routes()
    merged: dict[str, float] = {}
    for name, rc in config.routes.items():
        if rc.keep_rate is not None:
            merged[name] = rc.keep_rate
    for name in high:
        merged[name] = 1.0
    merged.update({r: _rate(v, f"rate {r}") for r, v in (rates or {}).items()})
    default = (
        _rate(default_rate, "default_rate")
        if default_rate is not None
        else config.sample.default_rate
    )
    return SamplePlan(
        rates=merged,
        default_rate=default,
        high_stakes=high,
        drop_text=config.sample.drop_text if drop_text is None else drop_text,
        drop_text_routes={n for n, rc in config.routes.items() if rc.drop_text},
        named=tuple(rates or {}),
    )


def check_named_routes(
    plan: SamplePlan, frame: pl.DataFrame | pl.LazyFrame, sources: Sequence[str | Path]
) -> None:
    """Every ``--rate ROUTE=R`` names a route the data has; else exit 2 (before writing)."""
    if not plan.named:
        return
    from llmobs_cli.core.record.names import require_values

    routes = frame.lazy().select(pl.col("route").fill_null("default"))
    require_values(routes, [("route", r) for r in plan.named], [str(p) for p in sources], "rate")


@dataclass
class SampleResult:
    """What was read and kept, per route."""

    plan: SamplePlan
    routes: list[dict[str, object]]
    rows_in: int
    rows_out: int
    calls_in: float
    calls_out: float
    streamed: bool
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "calls_in": self.calls_in,
            "calls_out": self.calls_out,
            "streamed": self.streamed,
            "plan": self.plan.as_dict(),
            "routes": self.routes,
        }


def apply_plan(
    lf: pl.LazyFrame,
    plan: SamplePlan,
    mixed: pl.DataFrame | None = None,
    *,
    trace_rate: str | None = None,
) -> pl.LazyFrame:
    """Keep whole traces by hash and re-weight (lazy; row-local except the ``mixed`` join,
    whose keys are :func:`_trace_hash` values of the traces spanning several rates).

    ``trace_rate`` names a column that already holds each row's trace rate (the largest
    rate of the trace's calls, computed by a cluster engine); it replaces ``mixed``."""
    # Canonical defaults, in case a Parquet dump left them null.
    lf = lf.with_columns(
        pl.col("sample_rate").fill_null(1.0), pl.col("route").fill_null("default")
    ).with_columns(plan.rate_expr().alias(KEEP))
    if trace_rate is not None:
        lf = lf.with_columns(pl.coalesce(trace_rate, KEEP).alias(KEEP)).drop(trace_rate)
    elif mixed is not None and mixed.height:
        lf = (
            lf.with_columns(_trace_hash())
            .join(mixed.lazy(), on=TRACE_KEY, how="left")
            .with_columns(pl.coalesce("_trace_rate", KEEP).alias(KEEP))
            .drop("_trace_rate", TRACE_KEY)
        )
    u = pl.col("trace_id").map_batches(
        lambda s: pl.Series(s.name, stable_uniform(s, SAMPLE_SALT)), return_dtype=pl.Float64
    )
    drop = plan.drop_expr()
    text = [pl.when(drop).then(None).otherwise(pl.col(c)).alias(c) for c in TEXT_FIELDS]
    return lf.filter(u < pl.col(KEEP)).with_columns(
        (pl.col("sample_rate") * pl.col(KEEP)).alias("sample_rate"), *text
    )


def _trace_hash(col: str = "trace_id") -> pl.Expr:
    """A 64-bit hash of the trace id, stable within one run (the mixed-rate lookup key)."""
    return pl.col(col).hash(seed=0x5A3F).alias(TRACE_KEY)


TRACE_KEY = "_trace_key"


def _trace_rates(frame: pl.DataFrame, plan: SamplePlan) -> pl.DataFrame:
    """(trace key, lowest rate, highest rate) of one batch's traces."""
    return (
        frame.lazy()
        .select(_trace_hash(), pl.col("route").fill_null("default"))
        .select(TRACE_KEY, plan.rate_expr().alias(KEEP))
        .group_by(TRACE_KEY)
        .agg(pl.col(KEEP).min().alias("_lo"), pl.col(KEEP).max().alias("_hi"))
        .collect()
    )


def _merge_rates(parts: list[pl.DataFrame]) -> pl.DataFrame:
    return pl.concat(parts).group_by(TRACE_KEY).agg(pl.col("_lo").min(), pl.col("_hi").max())


def _mixed_from(rates: pl.DataFrame | None) -> pl.DataFrame | None:
    """Traces whose calls span routes with different rates → their largest rate."""
    if rates is None:
        return None
    return rates.filter(pl.col("_lo") != pl.col("_hi")).select(
        TRACE_KEY, pl.col("_hi").alias("_trace_rate")
    )


def _route_summary(
    before: pl.LazyFrame, after: pl.LazyFrame, plan: SamplePlan, aggregated: bool = False
) -> list[dict[str, object]]:
    agg = [
        pl.len().alias("rows"),
        (1.0 / pl.col("sample_rate").fill_null(1.0)).sum().alias("calls"),
    ]
    before = before.with_columns(pl.col("route").fill_null("default"))
    if aggregated:  # already (route, rows, calls)
        b, a = before.collect(), after.collect()
    else:
        b = before.group_by("route").agg(agg).collect(engine="streaming")
        a = after.group_by("route").agg(agg).collect(engine="streaming")
    table = b.join(a, on="route", how="left", suffix="_kept").sort("route")
    out = []
    for route, rows, calls, kept, calls_kept in table.iter_rows():
        out.append(
            {
                "route": route,
                "keep_rate": plan.rates.get(route, plan.default_rate),
                "rows_in": rows,
                "rows_out": kept or 0,
                "calls_in": calls,
                "calls_out": calls_kept or 0.0,
                "text_dropped": bool(
                    route not in plan.high_stakes
                    and (plan.drop_text or route in plan.drop_text_routes)
                ),
            }
        )
    return out


def _summary_from_parts(
    before: list[pl.DataFrame], after: list[pl.DataFrame], plan: SamplePlan
) -> list[dict[str, object]]:
    def total(parts: list[pl.DataFrame]) -> pl.LazyFrame:
        schema = {"route": pl.String(), "rows": pl.UInt32(), "calls": pl.Float64()}
        frame = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
        return frame.group_by("route").agg(pl.col("rows").sum(), pl.col("calls").sum()).lazy()

    return _route_summary(total(before), total(after), plan, aggregated=True)


def sample(
    paths: Sequence[str | Path],
    out: Path,
    plan: SamplePlan,
    *,
    on_error: OnError = "fail",
    fmt: str | None = None,
    options: ReadOptions | None = None,
    progress: ProgressFn = no_progress,
    chunk_bytes: int = CHUNK_BYTES,
) -> SampleResult:
    """Sample ``paths`` into ``out`` (canonical Parquet or JSONL), streaming, atomic."""
    out = Path(out)
    inputs = expand_paths(paths)
    out_fmt = output_format(out)
    outputs.check_file_output(out, outputs.input_paths(paths, inputs))
    read = {"fmt": fmt, "options": options, "chunk_bytes": chunk_bytes}
    rates = None
    if len({*plan.rates.values(), plan.default_rate}) > 1 or plan.named:
        parts: list[pl.DataFrame] = []
        seen_routes: set[str] = set()
        # Pass 1 only needs each trace's routes: duplicates do not change them, and its
        # warnings would repeat those of pass 2.
        base = options or ReadOptions()
        scan_opts = ReadOptions(
            route_from=base.route_from,
            include_embeddings=base.include_embeddings,
            keep_duplicates=True,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            for frame in iter_batches(
                inputs,
                columns=["trace_id", "route"],
                on_error="skip",
                progress=progress,
                stage="scan 1/2",
                fmt=fmt,
                options=scan_opts,
                chunk_bytes=chunk_bytes,
            ):
                seen_routes.update(frame["route"].fill_null("default").unique().to_list())
                parts.append(_trace_rates(frame, plan))
                if len(parts) >= 16:  # fold as we go: one row per trace, not per call
                    parts = [_merge_rates(parts)]
        routes_read = pl.DataFrame({"route": sorted(seen_routes)}, schema={"route": pl.String})
        check_named_routes(plan, routes_read, inputs)
        rates = _merge_rates(parts) if parts else None
        del parts
    mixed = _mixed_from(rates)
    del rates
    agg = [pl.len().alias("rows"), (1.0 / pl.col("sample_rate")).sum().alias("calls")]
    before: list[pl.DataFrame] = []
    after: list[pl.DataFrame] = []
    stats = BatchStats()
    with FileSink(out, out_fmt) as sink:
        for frame in iter_batches(
            inputs,
            on_error=on_error,
            stats=stats,
            progress=progress,
            stage="write 2/2" if mixed is not None else "",
            **read,  # type: ignore[arg-type]
        ):
            kept = apply_plan(frame.lazy(), plan, mixed).select(FIELDS).collect()
            before.append(frame.group_by("route").agg(agg))
            after.append(kept.group_by("route").agg(agg))
            sink.write(kept)
        sink.publish()
    routes = _summary_from_parts(before, after, plan)
    res = _result(plan, routes, streamed=True)
    res.skipped, res.skipped_reasons = stats.skipped, dict(stats.skipped_reasons)
    return res


def _result(plan: SamplePlan, routes: list[dict[str, object]], streamed: bool) -> SampleResult:
    return SampleResult(
        plan=plan,
        routes=routes,
        rows_in=sum(cast(int, r["rows_in"]) for r in routes),
        rows_out=sum(cast(int, r["rows_out"]) for r in routes),
        calls_in=sum(cast(float, r["calls_in"]) for r in routes),
        calls_out=sum(cast(float, r["calls_out"]) for r in routes),
        streamed=streamed,
    )
