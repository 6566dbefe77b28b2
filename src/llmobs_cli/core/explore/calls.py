"""``llmobs calls``: the calls behind a number, filtered (``--where``) and ranked (``--sort``).

Two passes keep memory bounded by the answer, not the dump:

1. read only the columns the filter, the sort and the listing's numbers need (Parquet
   pushes the projection and the time window into the scan), filter and keep the
   ``top_k`` rows — Polars' partial sort, never a full sort;
2. read the text (prompt, messages, response) of just those rows: a Parquet source is
   scanned again with a ``trace_id`` predicate pushed down; other formats are read whole
   anyway, so their text is joined from one more read.

Ties are broken by ``trace_id`` then ``span_id`` so the ranking is reproducible.
Numbers here describe single calls, so nothing is weighted; ``sample_rate`` is listed so a
reader can see what each call stands for.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from llmobs_cli.core.explore import judgments as jm
from llmobs_cli.core.explore.where import Kind, compile_where
from llmobs_cli.core.record.fields import base_column, field_expr
from llmobs_cli.core.record.schema import SCHEMA
from llmobs_cli.core.record.windows import Window, after, parse_duration, resolve_bound, resolve_now
from llmobs_cli.errors import UsageError

#: Fields every listing shows (besides the sort key and the judgment columns).
LIST_FIELDS = (
    "trace_id",
    "span_id",
    "timestamp",
    "route",
    "model",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "status",
    "sample_rate",
)
#: Text read in the second pass, for the one-line excerpts.
TEXT_FIELDS = ("prompt", "messages", "response")
#: Derived fields usable in ``--where`` and ``--sort``.
DERIVED: dict[str, Kind] = {"tokens": "num"}
#: Per-call signals (core/signals): the record fields each is computed from.
SIGNALS: dict[str, tuple[str, ...]] = {
    "response_confidence": ("logprobs",),
    "low_confidence_share": ("logprobs",),
    "min_window_confidence": ("logprobs",),
    "cited_rank": ("retrieved", "response", "finish_reason"),
}
DERIVED.update(dict.fromkeys(SIGNALS, "num"))


def _signal_expr(name: str) -> pl.Expr:
    from llmobs_cli.core.signals import citations, confidence

    if name == "cited_rank":
        return citations.cited_rank().cast(pl.Float64)
    return confidence.feature_expr(name)


EXCERPT_CHARS = 160


def record_kinds() -> dict[str, Kind]:
    """The ``--where`` kind of every record field (``logprobs`` is not filterable)."""
    out: dict[str, Kind] = {}
    for name, dtype in SCHEMA.items():
        if name == "logprobs":
            continue
        if name in ("messages", "retrieved"):
            out[name] = "text_list"
        elif isinstance(dtype, pl.List):
            out[name] = "list"
        elif isinstance(dtype, pl.Datetime):
            out[name] = "time"
        elif dtype in (pl.Float64(), pl.Int64()):
            out[name] = "ms" if name.endswith("_ms") else "num"
        else:
            out[name] = "str"
    return out


@dataclass(frozen=True)
class SortSpec:
    field: str
    descending: bool

    def label(self) -> str:
        return f"{'-' if self.descending else '+'}{self.field}"


def parse_sort(text: str | None, ascending: bool, kinds: dict[str, Kind], judged: bool) -> SortSpec:
    """``latency_ms`` / ``-latency_ms`` (descending) / ``+latency_ms`` (ascending).

    Without ``--sort``: the worst-judged first when judgments are joined, else the newest.
    """
    if text is None or not text.strip():
        return SortSpec("score", False) if judged else SortSpec("timestamp", not ascending)
    raw = text.strip()
    desc = not ascending
    if raw[0] in "+-":
        desc = raw[0] == "-"
        raw = raw[1:].strip()
    if raw.startswith("metadata.") and len(raw) > len("metadata."):
        return SortSpec(raw, desc)
    kind = kinds.get(raw)
    if kind is None:
        close = difflib.get_close_matches(raw, list(kinds), n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        if raw in jm.JUDGMENT_FIELDS and not judged:
            hint = " (it needs --evals EVALS)"
        raise UsageError(f"--sort: unknown field '{raw}'{hint}")
    if kind in ("list", "text_list"):
        raise UsageError(f"--sort: {raw} is a list and cannot be sorted")
    return SortSpec(raw, desc)


@dataclass
class CallsResult:
    """The ranked calls and what they were chosen from."""

    calls: pl.DataFrame
    matched: int
    scanned: int
    sort: SortSpec
    where: str | None
    window: Window
    judged: bool
    sources: list[str] = field(default_factory=list)
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """The calls as JSON-ready dicts (times as RFC 3339 strings)."""
        rows = self.calls.with_columns(
            pl.col(pl.Datetime).dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        ).to_dicts()
        return rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window.as_dict(),
            "where": self.where,
            "sort": self.sort.label(),
            "scanned": self.scanned,
            "matched": self.matched,
            "calls": self.records(),
        }


def find_calls(
    paths: Sequence[str | Path],
    *,
    where: str | None = None,
    sort: str | None = None,
    ascending: bool = False,
    top: int = 20,
    since: str | None = None,
    until: str | None = None,
    now: str | None = None,
    evals: str | Path | None = None,
    on_error: Literal["fail", "skip"] = "fail",
    fmt: str | None = None,
    options: Any = None,
    prices: Any = None,
    progress: Callable[[str], None] | None = None,
) -> CallsResult:
    """Read, filter, rank: the ``top`` calls of ``paths`` by ``sort`` among ``where``."""
    from llmobs_cli.core.ingest.readers import load

    say = progress or (lambda _msg: None)
    if top < 1:
        raise UsageError(f"--top: expected a positive number of calls, got {top}")
    # More than any dump holds means "all of them" (Polars' top_k takes a 32-bit count).
    top = min(top, 2**31 - 1)
    judged = evals is not None
    kinds: dict[str, Kind] = {**record_kinds(), **DERIVED}
    if judged:
        kinds.update(jm.JUDGMENT_FIELDS)  # type: ignore[arg-type]
    # Judgment fields are known words even without --evals, so the error can say what
    # is missing rather than "unknown field".
    where_kinds = {**kinds, **jm.JUDGMENT_FIELDS}
    compiled = (
        compile_where(where, where_kinds, _expr_for)  # type: ignore[arg-type]
        if where is not None
        else None
    )
    if compiled is not None and not judged:
        need = sorted(f for f in compiled.fields if f in jm.JUDGMENT_FIELDS)
        if need:
            raise UsageError(f"--where: {need[0]} needs --evals EVALS (judgments to join)")
    spec = parse_sort(sort, ascending, kinds, judged)
    judgments = jm.per_call(jm.read(evals)) if evals is not None else None

    used = {spec.field, *(compiled.fields if compiled else ())}
    record_used = [base_column(f) for f in used if f not in jm.JUDGMENT_FIELDS]
    if "tokens" in used:
        record_used += ["input_tokens", "output_tokens"]
    for name in used & SIGNALS.keys():
        record_used += SIGNALS[name]
    record_used = [f for f in record_used if f != "tokens" and f not in SIGNALS]
    from llmobs_cli.core.report.pricing import PRICE_COLUMNS

    columns = list(dict.fromkeys([*LIST_FIELDS, *PRICE_COLUMNS, *record_used]))

    pre_since, pre_until, relative = _pre_bounds(since, until, now)
    say(f"reading {len(paths)} path(s)")
    keep_dups = bool(getattr(options, "keep_duplicates", False))
    fast = _fast_frame(paths, columns, fmt, since, until, now, pre_since, pre_until)
    ranked: _Ranked | None = None
    if fast is not None:
        lf, maybe_window, sources, checks = fast
        say("filtering and ranking")
        ranked = _rank(lf, prices, judgments, compiled, spec, top, checks)
        if (
            ranked.scanned == 0
            or ranked.stats.get("problems")
            or (ranked.matched != ranked.distinct and not keep_dups)
        ):
            ranked = None  # nothing read, a bad row or the same call twice: load() decides
        else:
            window = maybe_window or _window_from(
                ranked.stats["first"], ranked.stats["last"], since, until, now
            )
            formats = {str(p): "parquet" for p in sources}
            skipped, reasons, text_loaded = 0, {}, False
    if ranked is None:
        loaded = load(
            paths,
            columns=columns,
            on_error=on_error,
            fmt=fmt,
            since=pre_since,
            until=pre_until,
            options=options,
        )
        frame = loaded.frame
        window = _window(frame, since, until, now)
        if relative:
            frame = _in_window(frame, window)
        say("filtering and ranking")
        ranked = _rank(frame.lazy(), prices, judgments, compiled, spec, top)
        formats, sources = loaded.formats, [Path(s) for s in loaded.sources]
        skipped, reasons = loaded.skipped, dict(loaded.skipped_reasons)
        text_loaded = all(f in frame.columns and f in record_used for f in TEXT_FIELDS)
    if ranked.scanned == 0:
        raise UsageError("no calls in the input and window (nothing to list)")
    chosen = ranked.chosen
    say("reading the text of the chosen calls")
    if text_loaded:
        texts = chosen.select("trace_id", "span_id", *TEXT_FIELDS)
    else:
        texts = _fetch_text(formats, chosen, on_error, options)
    chosen = chosen.drop([c for c in TEXT_FIELDS if c in chosen.columns]).join(
        texts, on=["trace_id", "span_id"], how="left", nulls_equal=True
    )
    calls = _shape(chosen, spec, judged)
    return CallsResult(
        calls=calls,
        matched=ranked.matched,
        scanned=ranked.scanned,
        sort=spec,
        where=where,
        window=window,
        judged=judged,
        sources=[str(p) for p in sources],
        skipped=skipped,
        skipped_reasons=reasons,
    )


@dataclass
class _Ranked:
    scanned: int
    matched: int
    distinct: int
    chosen: pl.DataFrame
    stats: dict[str, Any] = field(default_factory=dict)


def _rank(
    base: pl.LazyFrame,
    prices: Any,
    judgments: pl.DataFrame | None,
    compiled: Any,
    spec: SortSpec,
    top: int,
    checks: list[pl.Expr] | None = None,
) -> _Ranked:
    """One pass: rows read, rows matching, distinct calls matching, and the top k;
    ``checks`` (named expressions over the rows read) are computed in the same pass."""
    lf = _with_derived(base, prices)
    if judgments is not None:
        lf = lf.join(judgments.lazy(), on=["trace_id", "span_id"], how="left")
    if compiled is not None:
        lf = lf.filter(compiled.expr)
    lf = lf.with_columns(_expr_for(spec.field).alias("_sort")).filter(pl.col("_sort").is_not_null())
    counts, chosen, scanned = pl.collect_all(
        [
            lf.select(
                pl.len().alias("n"),
                # Distinct calls by a 64-bit hash of the ids (8x faster than the strings):
                # a collision can only look like a duplicate, which sends the command
                # through the validating reader — slower, never wrong.
                pl.struct("trace_id", "span_id").hash(7).n_unique().alias("distinct"),
            ),
            lf.top_k(
                top,
                by=["_sort", "trace_id", "span_id"],
                reverse=[not spec.descending, True, True],
            ),
            base.select(pl.len().alias("n"), *(checks or [])),
        ],
        engine="streaming",
    )
    n = int(counts["n"][0])
    stats = scanned.row(0, named=True)
    return _Ranked(
        scanned=int(stats["n"]),
        matched=n,
        distinct=int(counts["distinct"][0]) if n else 0,
        chosen=chosen,
        stats=stats,
    )


def _fast_frame(
    paths: Sequence[str | Path],
    columns: list[str],
    fmt: str | None,
    since: str | None,
    until: str | None,
    now: str | None,
    pre_since: datetime | None,
    pre_until: datetime | None,
) -> tuple[pl.LazyFrame, Window | None, list[Path], list[pl.Expr]] | None:
    """The lazy canonical-Parquet scan (see :mod:`.fastscan`), windowed, and the checks
    (validation problems, first and last call) still to run over it.

    Without ``--since/--until`` nothing depends on the checks before ranking, so they
    run in the ranking's own pass; with a window, they run first (a duration is counted
    back from the latest call) and the window is returned.
    """
    from llmobs_cli.core.explore import fastscan

    sources = fastscan.canonical_sources(paths, fmt)
    if sources is None:
        return None
    lf = fastscan.scan(sources, columns, pre_since, pre_until)
    present = {c for c in columns if c in SCHEMA}
    checks = [
        fastscan.problems(present).alias("problems"),
        pl.col("timestamp").min().alias("first"),
        pl.col("timestamp").max().alias("last"),
    ]
    if since is None and until is None:
        return lf, None, sources, checks
    stats = lf.select(pl.len().alias("n"), *checks).collect(engine="streaming")
    if stats["n"][0] == 0 or stats["problems"][0]:
        return None  # let load() name the file, the row and the field
    window = _window_from(stats["first"][0], stats["last"][0], since, until, now)
    return _in_window_lazy(lf, window), window, sources, []


def _in_window_lazy(lf: pl.LazyFrame, w: Window) -> pl.LazyFrame:
    if w.start is not None:
        lf = lf.filter(pl.col("timestamp") >= w.start)
    if w.end is not None:
        lf = lf.filter(pl.col("timestamp") < w.end)
    return lf


def _expr_for(name: str) -> pl.Expr:
    if name == "tokens" or name in SIGNALS:
        return pl.col(name)
    return field_expr(name)


def _with_derived(lf: pl.LazyFrame, prices: Any) -> pl.LazyFrame:
    """Cost from the record or the price table (as ``llmobs report`` does), and ``tokens``."""
    from llmobs_cli.core.report import pricing

    priced = pricing.with_cost(lf, prices)
    have = set(priced.collect_schema().names())
    # Signals whose inputs were read (only when --where/--sort names them); null otherwise.
    signals = [
        (_signal_expr(n) if set(cols) <= have else pl.lit(None, pl.Float64)).alias(n)
        for n, cols in SIGNALS.items()
        if set(cols) & have or n not in have
    ]
    return priced.with_columns(
        pl.col(pricing.COST).alias("cost_usd"),
        (pl.col("input_tokens").fill_null(0) + pl.col("output_tokens").fill_null(0)).alias(
            "tokens"
        ),
        *signals,
    ).drop([c for c in (pricing.COST, pricing.PRICED, pricing.UNPRICED, pricing.PRICE_MODEL)])


def _pre_bounds(
    since: str | None, until: str | None, now: str | None
) -> tuple[datetime | None, datetime | None, bool]:
    """Bounds that can be pushed into the reader; durations without ``--now`` cannot."""
    relative = any(v and parse_duration(v) is not None for v in (since, until)) and not now
    if relative:
        return None, None, True
    ref = resolve_now(now, None)
    return resolve_bound(since, ref, "since"), resolve_bound(until, ref, "until"), False


def _window(frame: pl.DataFrame, since: str | None, until: str | None, now: str | None) -> Window:
    first = frame.select(pl.col("timestamp").min()).item() if frame.height else None
    last = frame.select(pl.col("timestamp").max()).item() if frame.height else None
    return _window_from(first, last, since, until, now)


def _window_from(
    first: datetime | None,
    last: datetime | None,
    since: str | None,
    until: str | None,
    now: str | None,
) -> Window:
    """The window asked for, its open sides filled from the data's first and last call."""
    ref = resolve_now(now, None) if now else resolve_now(None, last)
    start = resolve_bound(since, ref, "--since")
    end = resolve_bound(until, ref, "--until")
    if start is not None and end is not None and end <= start:
        raise UsageError(
            f"until: the window ends before it starts ({end.isoformat()} <= {start.isoformat()})",
            param="until",
        )
    start = start or first
    end = end or (after(last) if last is not None else None)
    return Window(start, end)


def _in_window(frame: pl.DataFrame, w: Window) -> pl.DataFrame:
    if w.start is not None:
        frame = frame.filter(pl.col("timestamp") >= w.start)
    if w.end is not None:
        frame = frame.filter(pl.col("timestamp") < w.end)
    return frame


def _fetch_text(
    formats: dict[str, str], chosen: pl.DataFrame, on_error: str, options: Any
) -> pl.DataFrame:
    """The prompt, messages and response of the ``chosen`` calls only."""
    from llmobs_cli.core.ingest.readers import load

    keys = chosen.select("trace_id", "span_id").unique()
    empty = pl.DataFrame(
        schema={
            "trace_id": pl.String(),
            "span_id": pl.String(),
            **{f: SCHEMA[f] for f in TEXT_FIELDS},
        }
    )
    if not keys.height:
        return empty
    parts: list[pl.DataFrame] = []
    for source, kind in formats.items():
        if kind == "parquet":
            part = _parquet_text(Path(source), keys)
        else:
            read = load([source], columns=TEXT_FIELDS, on_error="skip", fmt=kind, options=options)
            part_frame = read.frame.select("trace_id", "span_id", *TEXT_FIELDS)
            part = part_frame.join(keys, on=["trace_id", "span_id"], how="semi", nulls_equal=True)
        parts.append(part)
    out = pl.concat([empty, *parts], how="vertical_relaxed")
    return out.unique(["trace_id", "span_id"], keep="first", maintain_order=True)


def _parquet_text(path: Path, keys: pl.DataFrame) -> pl.DataFrame:
    """Text of ``keys`` from a Parquet source, with the trace-id predicate pushed down."""
    from llmobs_cli.core.ingest.readers.parquet import scan, source_columns
    from llmobs_cli.core.record.schema import ALIASES, ROW, normalize

    lf = scan(path)
    names = [c for c in lf.collect_schema().names() if c != ROW]
    cols = source_columns(names, ["trace_id", "span_id", *TEXT_FIELDS])
    id_cols = [c for c in ("trace_id", *ALIASES["trace_id"]) if c in names]
    if not id_cols:
        return pl.DataFrame()
    ids = keys["trace_id"].unique().implode()
    raw = (
        lf.select([ROW, *cols])
        .filter(pl.col(id_cols[0]).cast(pl.String).is_in(ids))
        .collect()
        .with_columns(pl.col(ROW).cast(pl.Int64))
    )
    frame = normalize(raw, check_required=()).frame
    return frame.select("trace_id", "span_id", *TEXT_FIELDS).join(
        keys, on=["trace_id", "span_id"], how="semi", nulls_equal=True
    )


def one_line(expr: pl.Expr, width: int = EXCERPT_CHARS) -> pl.Expr:
    """Text on one line (whitespace runs → one space), cut to ``width`` with ``…``."""
    flat = expr.str.replace_all(r"\s+", " ").str.strip_chars()
    return (
        pl.when(flat.str.len_chars() > width)
        .then(flat.str.slice(0, width - 1) + pl.lit("…"))
        .otherwise(flat)
    )


def _last_user(messages: pl.Expr) -> pl.Expr:
    users = messages.list.eval(
        pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content")
    )
    return users.list.last()


def _shape(chosen: pl.DataFrame, spec: SortSpec, judged: bool) -> pl.DataFrame:
    """The listing's columns, in rank order."""
    prompt = pl.coalesce(pl.col("prompt"), _last_user(pl.col("messages")))
    cols: list[pl.Expr] = [pl.col(c) for c in LIST_FIELDS]
    if judged:
        cols += [pl.col(c) for c in jm.JUDGMENT_FIELDS]
    cols += [
        one_line(prompt).alias("prompt_excerpt"),
        one_line(pl.col("response")).alias("response_excerpt"),
    ]
    shown = {*LIST_FIELDS, *(jm.JUDGMENT_FIELDS if judged else ())}
    if spec.field not in shown:
        cols.append(pl.col("_sort").alias(spec.field))
    return chosen.sort(
        ["_sort", "trace_id", "span_id"],
        descending=[spec.descending, False, False],
        nulls_last=True,
    ).select(cols)
