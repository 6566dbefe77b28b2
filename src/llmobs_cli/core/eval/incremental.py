"""``llmobs eval --state DIR``: a nightly eval that judges only what is new.

What a run with a state does (the state itself: :mod:`core.eval.state`):

* **Reads** only the rows after the stored watermark (pushed down to the reader, so the
  row groups of old data are skipped), plus every row of an input source no earlier run
  has seen (late data in a new file). A file whose size or modification time changed
  since it was recorded is named in a note; its rows after the watermark are read, its
  rows at or before it are not judged again. A new file inside an already-seen Parquet
  folder counts as that folder: only its rows after the watermark are read.
* **Plans and judges** those new rows only: each window's strata and eval rates are made
  from the new rows (the budget applies per run), so every judgment keeps the
  Horvitz–Thompson weight of the run that made it.
* **Summarizes** the stored and the new judgments together for the requested windows,
  resolved against the latest timestamp seen by any run (``--now`` overrides): stored
  judgments outside the windows are left out of the summary, not out of the state. The
  run's frame (``-o``, ``--export``) holds only its new judgments, so an exporter never
  sends one twice; all of them are in the state's judgments file. A judgment of a call
  the state already holds (the same trace, span and evaluator read
  again from a copied file) is not added twice.
* **Stores** the new watermark, the input files and all judgments, only when the run
  finished (a stopped, failed or interrupted run leaves the state as it was; the judge
  cache makes the rerun free for what was already judged). A dry run never writes.

Not recomputed: judgments of rows already processed (their scores, weights and strata stay
as judged), and nothing is re-read from before the watermark except new sources. With a
budget that judges every eligible call (rates of 1) the summary equals one run over the
whole dump; with smaller budgets each run is its own stratified sample of its new rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.eval.judges.client import ClientSettings, Notice, Progress, make_client
from llmobs_cli.core.eval.judgments import empty_judgments
from llmobs_cli.core.eval.options import EvalOptions, EvalRun, EvalSummary, JudgeStats
from llmobs_cli.core.eval.state import (
    check_options,
    file_marks,
    open_state,
    read_judgments,
    save_state,
)
from llmobs_cli.errors import UsageError

_KEY = ["trace_id", "span_id", "evaluator"]


def comparability(opts: EvalOptions) -> dict[str, Any]:
    """The options judgments of different runs must share to be summarized together."""
    return {
        "by": list(opts.by),
        "evaluators": sorted(opts.evaluators),
        "judge_model": opts.judge_model,
        "unit": opts.unit,
        "self_consistency": bool(opts.self_consistency),
    }


def run_incremental(
    paths: Sequence[str | Path],
    opts: EvalOptions,
    folder: str | Path,
    *,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    on_error: str = "fail",
    fmt: str | None = None,
    read_options: Any = None,
    client_factory: Callable[[ClientSettings], Any] = make_client,
    notice: Notice | None = None,
    memory: int | None = None,
    status: Callable[[str], None] | None = None,
) -> EvalRun:
    """One incremental run (see the module docstring)."""
    from llmobs_cli.core.eval.passes import latest_timestamp, plan_streaming
    from llmobs_cli.core.eval.run import (
        _with_confidence,
        judge_plans,
        resolve_windows,
        trace_columns,
    )
    from llmobs_cli.core.eval.summary import summarize
    from llmobs_cli.core.ingest.readers import expand_paths
    from llmobs_cli.core.ingest.readers.stream import default_memory

    if opts.unit != "call":
        raise UsageError("--state: incremental runs judge calls (--unit call)", param="state")
    if opts.until:
        raise UsageError(
            "--state: --until would leave the later rows of recorded files unread for good; "
            "leave it out (the summary covers --current/--baseline)",
            param="state",
        )
    state = open_state(folder)
    wanted = comparability(opts)
    check_options(state, wanted)
    sources = expand_paths(paths)
    marks = file_marks(sources)
    notes: list[str] = []
    changed = sorted(p for p, m in marks.items() if p in state.files and state.files[p] != m)
    for p in changed:
        notes.append(
            f"{p} changed since the last run: its rows after the watermark are read, "
            "earlier rows are not judged again"
        )
    full = frozenset(str(s) for s in sources if not any(f in state.files for f in file_marks([s])))
    new_files = [p for p in marks if p not in state.files]
    nothing_new = not state.fresh and not changed and not new_files
    budget = default_memory() if memory is None else memory
    now_text = opts.now
    latest = None
    if not now_text and not nothing_new:
        latest = latest_timestamp(
            paths, since=None, until=None, fmt=fmt, options=read_options, memory=budget
        )
    if not now_text:
        seen = [t for t in (latest, state.watermark) if t is not None]
        now_text = max(seen).isoformat() if seen else None
    run_opts = replace(opts, now=now_text)
    old = read_judgments(state)
    columns = trace_columns(opts.by)
    if getattr(read_options, "keep_origin", False):
        columns.append("metadata")  # where each call came from: judgments record it
    planned = None
    if not nothing_new:
        planned = plan_streaming(
            paths,
            run_opts,
            trace_columns=columns,
            on_error=on_error,
            fmt=fmt,
            options=read_options,
            memory=budget,
            prepare=_with_confidence,
            say=status or (lambda _m: None),
            floor=None if state.fresh else state.watermark,
            full_sources=full if not state.fresh else frozenset(),
            allow_empty=not state.fresh,
        )
    current, baseline = resolve_windows(run_opts, None)
    windows = {"current": current.as_dict()}
    if baseline is not None:
        windows["baseline"] = baseline.as_dict()
    if planned is not None and planned.plans:
        fresh = judge_plans(
            planned.plans,
            planned.windows,
            run_opts,
            cache_dir=cache_dir,
            progress=progress,
            client_factory=client_factory,
            notice=notice,
        )
        fresh.skipped = planned.skipped
        fresh.skipped_reasons = dict(planned.skipped_reasons)
    else:
        summary = EvalSummary(by=list(opts.by), groups=[], windows=windows, plan=[])
        summary.judge = JudgeStats(model=opts.judge_model)
        fresh = EvalRun(frame=empty_judgments(), summary=summary, plans=[], dry_run=opts.dry_run)
        summary.notes.append(
            "no new rows since the last run"
            + (f" (watermark {state.watermark.isoformat()})" if state.watermark else "")
        )
    fresh.summary.notes.extend(notes)
    if fresh.dry_run:
        return fresh  # the plan of the new rows; the state is not touched
    new = fresh.frame
    if old.height and new.height:
        new = new.join(old.select(_KEY).unique(), on=_KEY, how="anti", maintain_order="left")
    every = pl.concat([old, new], how="diagonal_relaxed") if old.height else new
    label: pl.Expr = pl.when(current.contains()).then(pl.lit("current"))
    if baseline is not None:
        label = (
            pl.when(current.contains())
            .then(pl.lit("current"))
            .when(baseline.contains())
            .then(pl.lit("baseline"))
        )
    framed = every.with_columns(label.alias("window"))
    inside = framed.filter(pl.col("window").is_not_null())
    summary = summarize(
        inside, by=opts.by, bucket=opts.bucket, alpha=opts.alpha, min_drop=opts.min_drop
    )
    summary.judge = fresh.summary.judge
    summary.windows = windows
    summary.plan = fresh.summary.plan
    summary.notes.extend(fresh.summary.notes)
    summary.notes.append(
        f"incremental (--state {state.folder}): {old.height} judgment(s) from earlier runs, "
        f"{new.height} new; {framed.height - inside.height} outside the window(s) left out "
        "of this summary"
    )
    finished = not (fresh.fatal or fresh.stopped or fresh.interrupted)
    if finished:
        seen = [t for t in (state.watermark, planned.last if planned else None) if t is not None]
        save_state(
            state,
            watermark=max(seen) if seen else None,
            files={**state.files, **marks},
            options=wanted,
            judgments=every,
            run={
                "new_judgments": new.height,
                "judge_calls": fresh.summary.judge.calls if fresh.summary.judge else 0,
                "now": now_text,
            },
        )
    else:
        summary.notes.append(f"the state in {state.folder} was not updated (rerun to resume)")
    fresh.summary = summary
    fresh.frame = new  # -o and --export get this run's judgments once, never the old again
    return fresh


__all__ = ["comparability", "run_incremental"]
