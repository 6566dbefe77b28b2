"""``llmobs eval --unit session`` on files in bounded memory: sessions folded from light
per-call rows spilled to disk, then the text of the selected sessions only.

The whole-frame path (:func:`core.eval.session_unit.evaluate_sessions`) holds every call
of the window, text included, to fold them into conversations. Reading files,
:func:`evaluate_session_files` instead makes

* **pass 0** (only for a window relative to the data): the latest timestamp, as the call
  path does (:func:`core.eval.passes.latest_timestamp`);
* **pass 1**: the batches with the columns the fold needs, each reduced at once to light
  per-call rows (:func:`core.signals.sessions.call_rows` without text: session key, first-
  call columns, sample rate, whether the call succeeded without refusing, its estimated
  tokens, whether its answer is non-empty, and the lowercased head of the user turn the
  repeat heuristic compares — at most 500 characters), spilled to disk by the hash of
  the session key (:class:`core.spill.HashSpill`). Every call of a session lands in one
  partition, in input order;
* **fold**: partition by partition, one light row per session
  (:func:`core.signals.sessions.fold_sessions`) — weights, turns, heuristics, dropped
  turns — then every session's light row, sorted by session key as the whole-frame path
  sorts them. The plan, the selection and ``summary.sessions`` are computed from these
  rows by the very functions the whole-frame path calls;
* **pass 2**: the batches again, keeping only the calls of the selected sessions; their
  conversations are built by :func:`core.signals.sessions.session_rows` as in the
  whole-frame path, and each plan selects them again (a session's fate depends only on
  its key's hash and its stratum, so this picks the sessions the light rows picked).

Memory holds one batch, one spill partition, one light row per session (no text: about
200 bytes) and the calls of the selected sessions. Results equal the whole-frame path's:
the same sessions with the same values in the same order, so the same plan, the same
judge requests and the same summary.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import polars as pl

from llmobs_cli.core.eval.judges.client import ClientSettings, Notice, Progress, make_client
from llmobs_cli.core.eval.options import EvalOptions, EvalRun
from llmobs_cli.core.eval.plan import count_selected, keyed, rates_frame, select_rows
from llmobs_cli.core.eval.session_unit import attach_heuristics, session_options
from llmobs_cli.core.signals.sessions import (
    call_rows,
    carried,
    finish_sessions,
    fold_sessions,
    session_key,
    session_rows,
)
from llmobs_cli.errors import InputError

_HASH = "_h"
#: Spill partitions: at least :data:`~core.spill.PARTS`, more for large inputs (the light
#: rows of 2M generated calls, 313 MB of Parquet, are ~440 MB: ~7 MB per partition).
PARTS = 64
MAX_PARTS = 256
INPUT_PER_PART = 16 << 20
#: Columns the fold reads (the ids are read anyway for duplicates).
FOLD_COLUMNS = (
    "session_id",
    "trace_id",
    "timestamp",
    "route",
    "model",
    "release",
    "sample_rate",
    "status",
    "response",
    "error",
    "finish_reason",
    "prompt",
    "messages",
)


def evaluate_session_files(
    paths: Sequence[str | Path],
    opts: EvalOptions,
    *,
    trace_columns: Sequence[str],
    judge: Callable[..., EvalRun],
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    on_error: Literal["fail", "skip"] = "fail",
    fmt: str | None = None,
    read_options: Any = None,
    client_factory: Callable[[ClientSettings], Any] = make_client,
    notice: Notice | None = None,
    memory: int | None = None,
    say: Callable[[str], None] = lambda _m: None,
    spill_dir: str | Path | None = None,
) -> EvalRun:
    """Evaluate the sessions of ``paths`` (see the module docstring); ``judge`` is
    :func:`core.eval.run.judge_plans`. Errors and their order are the whole-frame path's:
    an empty ``--since/--until`` range, nothing read, a ``--by`` field the data lacks, an
    empty ``--current``/``--baseline``."""
    from llmobs_cli.core.eval.passes import read_bounds
    from llmobs_cli.core.eval.run import plan_windows
    from llmobs_cli.core.ingest.readers.stream import default_memory
    from llmobs_cli.core.ingest.span import data_sample, data_span
    from llmobs_cli.core.record.names import dump_name, require_fields
    from llmobs_cli.core.record.windows import (
        Window,
        require_rows,
        window_option,
    )
    from llmobs_cli.core.spill import HashSpill

    budget = default_memory() if memory is None else memory
    read = {"fmt": fmt, "options": read_options, "memory": budget}
    lo, hi = read_bounds(paths, opts, read, say)
    carry = carried(opts.by)
    full = list(dict.fromkeys([*trace_columns, *carry]))
    # With --on-error skip pass 1 reads what pass 2 reads, so both drop the same rows.
    narrow = full if on_error == "skip" else list(dict.fromkeys([*FOLD_COLUMNS, *carry]))
    say("folding the calls into sessions")
    with HashSpill(_HASH, parts=spill_parts(paths), directory=spill_dir) as spill:
        rows, sources, seen = _pass1(paths, narrow, opts.by, carry, lo, hi, on_error, read, spill)
        if lo is not None or hi is not None:
            require_rows(
                rows,
                window_option(since=opts.since, until=opts.until),
                Window(lo, hi),
                lambda: data_span(paths, fmt=fmt, options=read_options),
                sources,
            )
        if rows == 0:
            raise InputError([f"{dump_name(sources)}: no calls to judge (no records read)"])
        require_fields(
            pl.DataFrame({f: ["x" if seen[f] else None] for f in dict.fromkeys(opts.by)}),
            opts.by,
            sources,
            "by",
            sample=lambda: data_sample(paths, fmt=fmt, options=read_options),
        )
        light = _fold(spill, opts.session_tokens)
    inner, notes = session_options(opts)
    plans, windows = plan_windows(light.frame, inner, sources)
    keys = pl.concat([p.selection.select("trace_id") for p in plans]).to_series()
    say("reading the selected conversations")
    calls, stream = _pass2(paths, full, carry, keys, lo, hi, on_error, read)
    chosen = session_rows(calls, opts.session_tokens, carry=carry).frame
    for plan in plans:
        expected = plan.selection.height
        # The plan's sessions, selected again from their full rows (same hash, same rate).
        mine = chosen.filter(pl.col("trace_id").is_in(plan.selection["trace_id"].implode()))
        rows_k, kcols = keyed(mine, inner.by)
        plan.selection = select_rows(rows_k, kcols, rates_frame(plan.strata))
        if plan.selection.height != expected:  # the light rows and the texts disagree
            raise RuntimeError(
                f"sessions: {plan.selection.height} selected conversations read back, "
                f"{expected} planned"
            )
        count_selected(plan.strata, plan.selection)
    run = judge(
        plans,
        windows,
        inner,
        cache_dir=cache_dir,
        progress=progress,
        client_factory=client_factory,
        notice=notice,
    )
    run.skipped = stream.skipped
    run.skipped_reasons = dict(stream.skipped_reasons)
    return attach_heuristics(run, light.frame, opts, [*light.notes, *notes])


def spill_parts(paths: Sequence[str | Path]) -> int:
    """Spill partitions for ``paths``: one per :data:`INPUT_PER_PART` bytes of input, a
    power of two between :data:`PARTS` and :data:`MAX_PARTS`, so that the calls of one
    partition (folded at once) stay about the same size however large the input."""
    from llmobs_cli.core.ingest.readers import expand_paths
    from llmobs_cli.core.ingest.readers.stream import _size

    try:
        total = sum(_size(p) for p in expand_paths(paths))
    except InputError:
        return PARTS  # the reader names the missing input, as on the other paths
    parts = PARTS
    while parts < MAX_PARTS and parts * INPUT_PER_PART < total:
        parts *= 2
    return parts


def _pass1(
    paths: Sequence[str | Path],
    columns: list[str],
    by: Sequence[str],
    carry: list[str],
    lo: Any,
    hi: Any,
    on_error: str,
    read: dict[str, Any],
    spill: Any,
) -> tuple[int, list[str], dict[str, bool]]:
    """Stream the calls into ``spill`` as light rows; the rows read, the sources, and
    which ``--by`` field has a value in some row."""
    from llmobs_cli.core.ingest.readers.stream import Stream
    from llmobs_cli.core.record.fields import field_expr

    stream = Stream(paths, columns=columns, on_error=on_error, since=lo, until=hi, **read)  # type: ignore[arg-type]
    seen = dict.fromkeys(by, False)
    rows = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pass 2 reads the same rows and says them
        for batch in stream:
            rows += batch.height
            todo = [f for f, got in seen.items() if not got]
            if todo:
                present = batch.select(
                    _has(field_expr(f), f, batch.columns).alias(f"_{i}") for i, f in enumerate(todo)
                ).row(0)
                for f, got in zip(todo, present, strict=True):
                    seen[f] = bool(got)
            light = call_rows(batch, text=False, carry=carry)
            spill.add(light.with_columns(pl.col("_session").hash(11).alias(_HASH)))
    return rows, list(stream.sources), seen


def _has(expr: pl.Expr, field: str, columns: list[str]) -> pl.Expr:
    from llmobs_cli.core.record.fields import base_column

    if base_column(field) not in columns:
        return pl.lit(False)
    return expr.is_not_null().any()


def _fold(spill: Any, budget_tokens: int) -> Any:
    """One light row per session, partition by partition (see the module docstring)."""
    parts = []
    for p in range(spill.parts):
        calls = spill.partition(p)
        if calls is None:
            continue
        per, _ = fold_sessions(calls.drop(_HASH), budget_tokens)
        parts.append(per)
        spill.drop_partition(p)
    per = pl.concat(parts, how="vertical_relaxed").sort("_session", maintain_order=True)
    return finish_sessions(per, None, budget_tokens)


def _pass2(
    paths: Sequence[str | Path],
    columns: list[str],
    carry: list[str],
    keys: pl.Series,
    lo: Any,
    hi: Any,
    on_error: str,
    read: dict[str, Any],
) -> tuple[pl.DataFrame, Any]:
    """The calls (every column the fold needs) of the sessions in ``keys``."""
    from llmobs_cli.core.eval.passes import _compact
    from llmobs_cli.core.ingest.readers.stream import Stream

    stream = Stream(paths, columns=columns, on_error=on_error, since=lo, until=hi, **read)  # type: ignore[arg-type]
    wanted = keys.drop_nulls().unique().implode()
    with_null = bool(keys.is_null().any())
    need = list(dict.fromkeys([*FOLD_COLUMNS, *carry]))
    kept: list[pl.DataFrame] = []
    for batch in stream:
        key = session_key()
        hit = key.is_in(wanted)
        if with_null:
            hit = hit | key.is_null()
        got = batch.filter(hit.fill_null(False))
        if got.height or not kept:
            kept.append(_compact(got.select(c for c in need if c in batch.columns)))
    calls = pl.concat(kept, how="vertical_relaxed") if kept else pl.DataFrame()
    return calls, stream


__all__ = ["FOLD_COLUMNS", "evaluate_session_files"]
