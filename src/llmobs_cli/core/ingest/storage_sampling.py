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

Streaming: canonical Parquet input is scanned lazily and written with ``sink_parquet``;
a canonical JSONL file larger than :data:`BATCH_BYTES` is read in batches of lines (two
passes: the trace/route pairs, then select and write part by part). Either way memory is
bounded by a batch plus the ids of traces whose calls span routes of different rates.
Other inputs (small JSONL, OTLP, vendor exports) are read whole through the format readers.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, cast

import polars as pl

from llmobs_cli.core import atomic
from llmobs_cli.core.eval.plan import stable_uniform
from llmobs_cli.core.ingest.convert import output_format, to_jsonl_bytes, write_frame
from llmobs_cli.core.ingest.readers import LoadResult, OnError, ReadOptions, expand_paths, load
from llmobs_cli.core.ingest.readers.formats import detect_format
from llmobs_cli.core.record.config import Config
from llmobs_cli.core.record.schema import FIELDS, SCHEMA, TEXT_FIELDS, empty_frame
from llmobs_cli.errors import InputError, UsageError

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
    lf: pl.LazyFrame, plan: SamplePlan, mixed: pl.DataFrame | None = None
) -> pl.LazyFrame:
    """Keep whole traces by hash and re-weight (lazy; row-local except the small ``mixed`` join)."""
    # Canonical defaults, in case a Parquet dump left them null.
    lf = lf.with_columns(
        pl.col("sample_rate").fill_null(1.0), pl.col("route").fill_null("default")
    ).with_columns(plan.rate_expr().alias(KEEP))
    if mixed is not None and mixed.height:
        lf = (
            lf.join(mixed.lazy(), on="trace_id", how="left")
            .with_columns(pl.coalesce("_trace_rate", KEEP).alias(KEEP))
            .drop("_trace_rate")
        )
    u = pl.col("trace_id").map_batches(
        lambda s: pl.Series(s.name, stable_uniform(s, SAMPLE_SALT)), return_dtype=pl.Float64
    )
    drop = plan.drop_expr()
    text = [pl.when(drop).then(None).otherwise(pl.col(c)).alias(c) for c in TEXT_FIELDS]
    return lf.filter(u < pl.col(KEEP)).with_columns(
        (pl.col("sample_rate") * pl.col(KEEP)).alias("sample_rate"), *text
    )


def _mixed_traces(lf: pl.LazyFrame, plan: SamplePlan) -> pl.DataFrame:
    """Traces whose calls span routes with different rates → their largest rate."""
    return (
        lf.select("trace_id", pl.col("route").fill_null("default"))
        .select("trace_id", plan.rate_expr().alias(KEEP))
        .group_by("trace_id")
        .agg(pl.col(KEEP).max().alias("_trace_rate"), pl.col(KEEP).n_unique().alias("_n"))
        .filter(pl.col("_n") > 1)
        .select("trace_id", "_trace_rate")
        .collect(engine="streaming")
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


def _canonical_parquet(paths: list[Path]) -> bool:
    """Parquet sources whose columns already have canonical names and dtypes."""
    for p in paths:
        if detect_format(p) != "parquet":
            return False
        target = next(p.rglob("*.parquet")) if p.is_dir() else p
        schema = pl.read_parquet_schema(target)
        if set(schema) != set(FIELDS) or any(schema[c] != SCHEMA[c] for c in FIELDS):
            return False
    return True


#: Canonical JSONL files larger than this are sampled in batches of lines (bounded memory).
BATCH_BYTES = 256 * 2**20
BATCH_LINES = 200_000


def _line_batches(path: Path, lines_per_batch: int) -> Iterator[tuple[int, bytes]]:
    """``(first_line, bytes)`` batches of a JSON-lines file, cut at newlines."""
    first, buf, count = 1, [], 0
    with path.open("rb") as fh:
        for line in fh:
            buf.append(line)
            count += 1
            if count >= lines_per_batch:
                yield first, b"".join(buf)
                first, buf, count = first + count, [], 0
    if buf:
        yield first, b"".join(buf)


def _load_batch(
    path: Path, first: int, data: bytes, columns: list[str] | None, on_error: OnError
) -> LoadResult:
    """One batch through the canonical reader; problem lines renamed to the source file."""
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir) / "batch.jsonl"
        tmp.write_bytes(data)
        prefix = re.compile(re.escape(str(tmp)) + r":(\d+)")

        def fix(line: str) -> str:
            return prefix.sub(lambda m: f"{path}:{int(m.group(1)) + first - 1}", line)

        try:
            res = load([tmp], columns=columns, on_error=on_error, fmt="canonical")
        except InputError as exc:
            raise InputError([fix(p) for p in exc.problems], total=exc.total) from exc
        res.problems = [fix(p) for p in res.problems]
        return res


def _sample_jsonl_batched(
    path: Path, out: Path, out_fmt: str, plan: SamplePlan, on_error: OnError
) -> SampleResult:
    """Two passes over line batches: traces spanning routes, then select and write."""
    parts = []
    for first, data in _line_batches(path, BATCH_LINES):
        ids = _load_batch(path, first, data, ["trace_id", "route"], "skip").frame
        parts.append(ids.select("trace_id", "route"))
    if parts:
        check_named_routes(plan, pl.concat(parts), [path])
    mixed = _mixed_traces(pl.concat(parts).lazy(), plan) if parts else None
    del parts
    agg = [pl.len().alias("rows"), (1.0 / pl.col("sample_rate")).sum().alias("calls")]
    before: list[pl.DataFrame] = []
    after: list[pl.DataFrame] = []
    skipped = 0
    reasons: dict[str, int] = {}
    suffix = ".parquet" if out_fmt == "parquet" else ".jsonl"
    with atomic.atomic_path(out, suffix) as tmp:
        writer = None
        with open(tmp, "wb") as raw:
            sink = _compressed(raw, out) if out_fmt == "jsonl" else raw
            try:
                for first, data in _line_batches(path, BATCH_LINES):
                    res = _load_batch(path, first, data, None, on_error)
                    skipped += res.skipped
                    for k, v in res.skipped_reasons.items():
                        reasons[k] = reasons.get(k, 0) + v
                    kept = apply_plan(res.frame.lazy(), plan, mixed).select(FIELDS).collect()
                    before.append(res.frame.group_by("route").agg(agg))
                    after.append(kept.group_by("route").agg(agg))
                    if out_fmt == "parquet":
                        import pyarrow.parquet as pq

                        table = kept.to_arrow()
                        if writer is None:
                            writer = pq.ParquetWriter(raw, table.schema, compression="zstd")
                        writer.write_table(table)
                    else:
                        sink.write(to_jsonl_bytes(kept))
            finally:
                if writer is not None:
                    writer.close()  # also on errors: a dangling writer fails at exit
            if writer is None and out_fmt == "parquet":
                empty_frame().write_parquet(raw)
            if sink is not raw:
                sink.close()
    routes = _summary_from_parts(before, after, plan)
    result = _result(plan, routes, streamed=True)
    result.skipped, result.skipped_reasons = skipped, reasons
    return result


def _compressed(raw: BinaryIO, out: Path) -> BinaryIO:
    """A writer that compresses into ``raw`` as the output name says (or ``raw`` itself)."""
    name = out.name.lower()
    if name.endswith(".gz"):
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="wb")  # type: ignore[return-value]
    if name.endswith(".zst"):
        import zstandard

        return zstandard.ZstdCompressor(level=6).stream_writer(raw, closefd=False)
    return raw


def _summary_from_parts(
    before: list[pl.DataFrame], after: list[pl.DataFrame], plan: SamplePlan
) -> list[dict[str, object]]:
    def total(parts: list[pl.DataFrame]) -> pl.LazyFrame:
        schema = {"route": pl.String(), "rows": pl.UInt32(), "calls": pl.Float64()}
        frame = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
        return frame.group_by("route").agg(pl.col("rows").sum(), pl.col("calls").sum()).lazy()

    return _route_summary(total(before), total(after), plan, aggregated=True)


def _is_big_canonical_jsonl(files: list[Path], fmt: str | None) -> bool:
    if len(files) != 1 or fmt not in (None, "canonical"):
        return False
    p = files[0]
    low = p.name.lower()
    if (
        p.is_dir()
        or low.endswith((".gz", ".zst", ".zstd", ".json"))
        or p.stat().st_size <= BATCH_BYTES
    ):
        return False
    return detect_format(p) == "canonical"


def sample(
    paths: Sequence[str | Path],
    out: Path,
    plan: SamplePlan,
    *,
    on_error: OnError = "fail",
    fmt: str | None = None,
    options: ReadOptions | None = None,
) -> SampleResult:
    """Sample ``paths`` into ``out`` (canonical Parquet or JSONL, atomic)."""
    files = expand_paths(paths)
    out_fmt = output_format(out)
    if _is_big_canonical_jsonl(files, fmt):
        return _sample_jsonl_batched(files[0], out, out_fmt, plan, on_error)
    if fmt is None and out_fmt == "parquet" and _canonical_parquet(files):
        sources = [str(p) + "/**/*.parquet" if p.is_dir() else str(p) for p in files]
        lf = pl.scan_parquet(sources, hive_partitioning=False).select(FIELDS)
        check_named_routes(plan, lf, files)
        mixed = _mixed_traces(lf, plan)
        kept = apply_plan(lf, plan, mixed).select(FIELDS)
        with atomic.atomic_path(out, ".parquet") as tmp:
            kept.sink_parquet(tmp, compression="zstd", statistics=True)
        routes = _route_summary(lf, pl.scan_parquet(out), plan)
        return _result(plan, routes, streamed=True)
    loaded = load(files, columns=None, on_error=on_error, fmt=fmt, options=options)
    check_named_routes(plan, loaded.frame, loaded.sources)
    lf = loaded.frame.lazy()
    mixed = _mixed_traces(lf, plan)
    kept_rows = apply_plan(lf, plan, mixed).select(FIELDS).collect()
    write_frame(kept_rows, out, out_fmt)
    routes = _route_summary(lf, kept_rows.lazy(), plan)
    res = _result(plan, routes, streamed=False)
    res.skipped = loaded.skipped
    res.skipped_reasons = dict(loaded.skipped_reasons)
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
