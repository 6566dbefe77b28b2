"""Eval-in-prod: plan, judge and score a stratified, weighted sample of traces.

One core call per command (:func:`run_eval`; :func:`~core.eval.summary.summarize` for saved
results); the CLI only parses and renders. The pipeline:

1. load the needed columns, resolve the ``current``/``baseline`` windows (named windows
   end where the window they are compared with starts: see :mod:`core.record.windows`);
2. :func:`core.eval.plan.make_plan` per window — strata, eval rates, deterministic
   selection; a dry run stops here with token and cost estimates and makes no call;
3. build the tasks: every selected call × every evaluator that applies (LLM criteria,
   ``faithfulness`` only with retrieved documents, criteria with ``applies_to: reference``
   and the ``reference`` comparison only with a reference, ``self_consistency`` when
   enabled) and run them through :class:`core.eval.judges.client.JudgeRunner` (cache,
   retries, concurrency, cost cap);
4. one row per judgment (:mod:`core.eval.judgments`) and
   :func:`~core.eval.summary.summarize`.

Options and results live in :mod:`core.eval.options`; the names other modules imported
from here before the split are re-exported.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import polars as pl

from llmobs_cli.core.eval.judges.cache import JudgmentCache, cache_key, endpoint_id
from llmobs_cli.core.eval.judges.capabilities import ModelCatalog
from llmobs_cli.core.eval.judges.client import (
    DEFAULT_BASE_URL,
    ClientSettings,
    JudgeRunner,
    Notice,
    Outcome,
    Progress,
    RunResult,
    Task,
    make_client,
)
from llmobs_cli.core.eval.judges.consistency import input_messages
from llmobs_cli.core.eval.judges.prompts import render
from llmobs_cli.core.eval.judgments import (
    HUMAN,
    JUDGMENT_SCHEMA,
    REFERENCE,
    SELF_CONSISTENCY,
    Pending,
    empty_judgments,
    judgment_frame,
    read_evals,
)
from llmobs_cli.core.eval.options import (
    EvalOptions,
    EvalRun,
    EvalSummary,
    JudgeStats,
    resolve_criteria,
)
from llmobs_cli.core.eval.plan import STRATUM, Plan, make_plan
from llmobs_cli.core.eval.summary import agreement_table, judge_stats_from_frame, summarize
from llmobs_cli.core.record.names import dump_name, require_fields
from llmobs_cli.core.record.windows import (
    Window,
    require_rows,
    resolve_now,
    resolve_window,
    span_of,
    window_option,
)
from llmobs_cli.errors import InputError, UsageError

__all__ = [
    "ANSWER_TOKENS",
    "HUMAN",
    "JUDGMENT_SCHEMA",
    "REFERENCE",
    "SELF_CONSISTENCY",
    "TEMPLATE_TOKENS",
    "TRACE_COLUMNS",
    "EvalOptions",
    "EvalRun",
    "EvalSummary",
    "JudgeStats",
    "agreement_table",
    "empty_judgments",
    "evaluate_frame",
    "judge_plans",
    "judge_stats_from_frame",
    "plan_windows",
    "read_evals",
    "resolve_criteria",
    "resolve_windows",
    "run_eval",
    "summarize",
    "trace_columns",
]

#: tokens of a criterion template and of a judge answer, for estimates before any call
TEMPLATE_TOKENS = 350
ANSWER_TOKENS = 120
TRACE_COLUMNS = (
    "trace_id",
    "span_id",
    "timestamp",
    "route",
    "model",
    "release",
    "status",
    "response",
    "prompt",
    "system",
    "messages",
    "retrieved",
    "reference",
    "sample_rate",
    "logprobs",  # reduced to response_confidence on load
    "session_id",  # --unit session
    "error",
    "finish_reason",
)


# --- windows -----------------------------------------------------------------------------


def resolve_windows(opts: EvalOptions, latest: datetime | None) -> tuple[Window, Window | None]:
    now = resolve_now(opts.now, latest)
    cur_text = opts.current
    if cur_text is None and opts.baseline is not None:
        cur_text = "last_week"
    current = resolve_window(cur_text, now, option="current")
    baseline = None
    if opts.baseline is not None:
        baseline = resolve_window(opts.baseline, now, end=current.start, option="baseline")
        if baseline.start is None and baseline.end is None:
            raise UsageError(
                "baseline: give a window (last_month, START..END or 30d)", param="baseline"
            )
    return current, baseline


def _require_rows(
    rows: int, option: str, window: Window, frame: pl.DataFrame, sources: Sequence[str]
) -> None:
    """A window with no call is exit 2 naming it and the span ``frame`` covers."""
    require_rows(rows, option, window, lambda: span_of(frame), sources)


# --- text for the judge ---------------------------------------------------------------------


def _text_columns(frame: pl.DataFrame) -> pl.DataFrame:
    msgs = (
        pl.col("messages")
        .list.eval(
            pl.concat_str(
                [
                    pl.element().struct.field("role").fill_null("user"),
                    pl.lit(": "),
                    pl.element().struct.field("content").fill_null(""),
                ]
            )
        )
        .list.join("\n")
    )
    conv = (
        pl.when(pl.col("messages").list.len() > 0)
        .then(msgs)
        .otherwise(pl.lit("user: ") + pl.col("prompt"))
    )
    system = (
        pl.when(pl.col("system").is_not_null())
        .then(pl.lit("system: ") + pl.col("system") + pl.lit("\n"))
        .otherwise(pl.lit(""))
    )
    docs = (
        pl.col("retrieved")
        .list.eval(
            pl.concat_str(
                [
                    pl.lit("["),
                    pl.element().struct.field("id").cast(pl.String).fill_null(""),
                    pl.lit("] "),
                    pl.element().struct.field("content").fill_null(""),
                ]
            )
        )
        .list.join("\n\n")
    )
    return frame.with_columns(
        (system + conv.fill_null("")).alias("input_text"),
        docs.fill_null("").alias("_documents"),
        (pl.col("retrieved").list.len().fill_null(0) > 0).alias("_has_docs"),
        (pl.col("reference").fill_null("").str.len_chars() > 0).alias("_has_ref"),
    )


def _tokens(text_len: int) -> int:
    return text_len // 4 + 1


# --- the run --------------------------------------------------------------------------------
def plan_windows(
    frame: pl.DataFrame, opts: EvalOptions, sources: Sequence[str] = ()
) -> tuple[list[Plan], dict[str, Any]]:
    latest = frame["timestamp"].max() if frame.height else None
    current, baseline = resolve_windows(opts, latest)  # type: ignore[arg-type]
    cur_text = opts.current or ("last_week" if opts.baseline is not None else None)
    if cur_text is not None:
        n = frame.select(current.contains().sum()).item()
        _require_rows(n, f"current {cur_text}", current, frame, sources)
    if baseline is not None:
        n = frame.select(baseline.contains().sum()).item()
        _require_rows(n, f"baseline {opts.baseline}", baseline, frame, sources)
    windows = {"current": current.as_dict()}
    plans = [
        make_plan(
            frame.filter(current.contains()),
            by=opts.by,
            budget=opts.budget,
            route_budgets=opts.route_budgets,
            high_stakes=opts.high_stakes,
            allocation=opts.allocation,
            window="current",
        )
    ]
    if baseline is not None:
        windows["baseline"] = baseline.as_dict()
        plans.append(
            make_plan(
                frame.filter(baseline.contains()),
                by=opts.by,
                budget=opts.budget,
                route_budgets=opts.route_budgets,
                high_stakes=opts.high_stakes,
                allocation=opts.allocation,
                window="baseline",
            )
        )
    return plans, windows


def run_eval(
    paths: Sequence[str | Path],
    opts: EvalOptions,
    *,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    on_error: Literal["fail", "skip"] = "fail",
    fmt: str | None = None,
    read_options: Any = None,
    client_factory: Callable[[ClientSettings], Any] = make_client,
    notice: Notice | None = None,
    memory: int | None = None,
    engine: Any = None,
    status: Callable[[str], None] | None = None,
    state: str | Path | None = None,
) -> EvalRun:
    """Read traces and evaluate them (see the module docstring). ``notice`` receives
    one-line messages to show as they happen (failures, waits, format step-downs).

    Calls (``unit="call"``) are planned from streamed counts and only the selected rows
    are kept (:mod:`core.eval.passes`): memory is bounded by ``memory`` (bytes; default a
    quarter of RAM) and the selection, not by the rows read. ``engine`` (Spark or Ray
    :class:`~llmobs_cli.core.engines.EngineSettings`) runs the counting pass there; the
    selecting pass always streams locally. ``status`` hears which pass is running.
    Sessions (``unit="session"``) stream too (:mod:`core.eval.session_passes`): light
    per-call rows spilled to disk by session, folded a partition at a time, then the text
    of the selected sessions only. ``state`` (a folder) makes the run
    incremental: :mod:`core.eval.incremental`."""
    if state is not None:
        if engine is not None and getattr(engine, "name", "local") != "local":
            raise UsageError("--state: incremental runs read locally; leave out --engine")
        from llmobs_cli.core.eval.incremental import run_incremental

        return run_incremental(
            paths,
            opts,
            state,
            cache_dir=cache_dir,
            progress=progress,
            on_error=on_error,
            fmt=fmt,
            read_options=read_options,
            client_factory=client_factory,
            notice=notice,
            memory=memory,
            status=status,
        )
    if opts.unit == "session":
        if engine is not None and getattr(engine, "name", "local") != "local":
            raise UsageError(
                "--engine: --unit session folds whole conversations on this machine "
                "(spilled to disk) and runs locally; leave out --engine (or use --unit call)",
                param="engine",
            )
        from llmobs_cli.core.eval.session_passes import evaluate_session_files

        return evaluate_session_files(
            paths,
            opts,
            trace_columns=trace_columns(opts.by),
            judge=judge_plans,
            cache_dir=cache_dir,
            progress=progress,
            on_error=on_error,
            fmt=fmt,
            read_options=read_options,
            client_factory=client_factory,
            notice=notice,
            memory=memory,
            say=status or (lambda _m: None),
        )
    from llmobs_cli.core.eval.passes import plan_streaming

    columns = trace_columns(opts.by)
    if getattr(read_options, "keep_origin", False):
        columns.append("metadata")  # where each call came from: judgments record it
    planned = plan_streaming(
        paths,
        opts,
        trace_columns=columns,
        on_error=on_error,
        fmt=fmt,
        options=read_options,
        memory=memory,
        engine=engine,
        prepare=_with_confidence,
        say=status or (lambda _m: None),
    )
    run = judge_plans(
        planned.plans,
        planned.windows,
        opts,
        cache_dir=cache_dir,
        progress=progress,
        client_factory=client_factory,
        notice=notice,
    )
    run.skipped = planned.skipped
    run.skipped_reasons = dict(planned.skipped_reasons)
    return run


def trace_columns(by: Sequence[str]) -> list[str]:
    """The canonical columns an eval reads: :data:`TRACE_COLUMNS` and the ``--by`` fields."""
    from llmobs_cli.core.record.fields import base_column

    return list(dict.fromkeys([*TRACE_COLUMNS, *(base_column(f) for f in by)]))


def _run_loaded(
    paths: Sequence[str | Path],
    opts: EvalOptions,
    *,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    on_error: Literal["fail", "skip"] = "fail",
    fmt: str | None = None,
    read_options: Any = None,
    client_factory: Callable[[ClientSettings], Any] = make_client,
    notice: Notice | None = None,
) -> EvalRun:
    """The whole-window path: load every row, then :func:`evaluate_frame` (the reference
    the streaming paths, calls and sessions, are tested against)."""
    from llmobs_cli.core.ingest.readers import load

    cols = set(trace_columns(opts.by))
    now_hint = None
    loaded = load(paths, columns=cols, on_error=on_error, fmt=fmt, options=read_options)
    frame = _with_confidence(loaded.frame)
    if opts.since or opts.until:
        from llmobs_cli.core.record.windows import resolve_bound

        latest = frame["timestamp"].max() if frame.height else None
        now_hint = resolve_now(opts.now, latest)  # type: ignore[arg-type]
        lo = resolve_bound(opts.since, now_hint, "since")
        hi = resolve_bound(opts.until, now_hint, "until")
        if lo is not None:
            frame = frame.filter(pl.col("timestamp") >= lo)
        if hi is not None:
            frame = frame.filter(pl.col("timestamp") < hi)
        _require_rows(
            frame.height,
            window_option(since=opts.since, until=opts.until),
            Window(lo, hi),
            loaded.frame,
            loaded.sources,
        )
    if frame.height == 0:
        raise InputError([f"{dump_name(loaded.sources)}: no calls to judge (no records read)"])
    require_fields(frame, opts.by, loaded.sources, "by")
    run = evaluate_frame(
        frame,
        opts,
        cache_dir=cache_dir,
        progress=progress,
        client_factory=client_factory,
        notice=notice,
        sources=loaded.sources,
    )
    run.skipped = loaded.skipped
    run.skipped_reasons = dict(loaded.skipped_reasons)
    return run


def _with_confidence(frame: pl.DataFrame) -> pl.DataFrame:
    """Reduce ``logprobs`` to the call's ``response_confidence`` (one number per call, not
    the token lists); judgment rows carry it (core/signals/confident_wrong)."""
    if "logprobs" not in frame.columns:
        return frame
    from llmobs_cli.core.signals.confidence import mean_logprob

    return frame.with_columns(mean_logprob().alias("response_confidence")).drop("logprobs")


def evaluate_frame(
    frame: pl.DataFrame,
    opts: EvalOptions,
    *,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    client_factory: Callable[[ClientSettings], Any] = make_client,
    notice: Notice | None = None,
    sources: Sequence[str] = (),
) -> EvalRun:
    """Evaluate canonical rows already in memory (the testable core of :func:`run_eval`).

    Every call is priced at its own model's price (judge calls at the judge's, self-
    consistency re-asks at the re-asked model's: :class:`ModelCatalog`); models without a
    price are listed in ``summary.judge.unpriced_models``. Models that refuse
    ``temperature`` (reasoning models) are asked without it, and self-consistency on them
    samples at the model's default temperature (a note says so).

    A ``--current``/``--baseline`` window with no row is
    :class:`~llmobs_cli.core.record.windows.EmptyWindowError` (exit 2); ``sources`` names
    the files ``frame`` came from in that message.
    """
    if opts.unit == "session":
        from llmobs_cli.core.eval.session_unit import evaluate_sessions

        def _calls(f: pl.DataFrame, o: EvalOptions) -> EvalRun:
            return evaluate_frame(
                f,
                o,
                cache_dir=cache_dir,
                progress=progress,
                client_factory=client_factory,
                notice=notice,
                sources=sources,
            )

        return evaluate_sessions(frame, opts, _calls)
    frame = _with_confidence(frame)
    plans, windows = plan_windows(frame, opts, sources)
    return judge_plans(
        plans,
        windows,
        opts,
        cache_dir=cache_dir,
        progress=progress,
        client_factory=client_factory,
        notice=notice,
    )


def judge_plans(
    plans: list[Plan],
    windows: dict[str, Any],
    opts: EvalOptions,
    *,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    client_factory: Callable[[ClientSettings], Any] = make_client,
    notice: Notice | None = None,
) -> EvalRun:
    """Judge the selected rows of ``plans`` (each plan's ``selection``) and summarize: the
    part of :func:`evaluate_frame` after planning, shared with the streaming
    :func:`run_eval` whose plans come from merged partials."""
    criteria = resolve_criteria(opts.evaluators, opts.criteria)
    use_ref = REFERENCE in opts.evaluators
    use_sc = opts.self_consistency or SELF_CONSISTENCY in opts.evaluators
    sel = (
        pl.concat(
            [p.selection.with_columns(pl.lit(p.window).alias("window")) for p in plans],
            how="diagonal_relaxed",
        )
        if plans
        else pl.DataFrame()
    )
    sel = _text_columns(sel) if sel.height else sel
    hs = opts.high_stakes
    price_known = bool(opts.client.input_price_per_million or opts.client.output_price_per_million)

    # Which evaluator applies to which selected row.
    pend: list[Pending] = []
    if sel.height:
        has_docs = sel["_has_docs"].to_list()
        has_ref = sel["_has_ref"].to_list()
        for name, crit in criteria.items():
            for i in range(sel.height):
                if (crit.applies_to == "retrieved" and not has_docs[i]) or (
                    crit.applies_to == "reference" and not has_ref[i]
                ):
                    continue
                pend.append(Pending(i, name, crit, -1))
        if use_sc:
            for i in range(sel.height):
                for k in range(opts.sc_samples):
                    pend.append(Pending(i, SELF_CONSISTENCY, None, -1, k))

    if opts.dry_run:
        summary = _dry_summary(plans, sel, pend, opts, use_ref, windows)
        return EvalRun(
            frame=empty_judgments(),
            summary=summary,
            plans=plans,
            dry_run=True,
            price_known=price_known,
        )

    # Build tasks (only for pending LLM work; one cache key each).
    tasks: list[Task] = []
    records = (
        sel.select(
            "input_text",
            "_documents",
            "response",
            "reference",
            "model",
            "system",
            "messages",
            "prompt",
        ).to_dicts()
        if sel.height
        else []
    )
    catalog = opts.catalog or ModelCatalog.shipped()
    judge_info = catalog.info(opts.judge_model)
    judge_temp = None if judge_info.fixed_temperature else 0.0
    unpriced: list[str] = [] if price_known else [opts.judge_model]
    notes: list[str] = []
    fixed_sc: set[str] = set()  # self-consistency models sampled at their own temperature
    if judge_temp is None and pend:
        notes.append(
            f"judge model '{opts.judge_model}' refuses temperature: judged at its default "
            "temperature"
        )
    # Clients are created lazily (only when a task is not cached): see JudgeRunner.
    client = (lambda: client_factory(opts.client)) if pend else None
    endpoint = endpoint_id(opts.client.base_url or DEFAULT_BASE_URL)
    sc_client = None
    if use_sc and opts.sc_base_url and pend:
        sc_settings = ClientSettings(**{**opts.client.__dict__, "base_url": opts.sc_base_url})
        sc_client = lambda: client_factory(sc_settings)  # noqa: E731
    sc_inputs: dict[int, list[dict[str, str]] | None] = {}
    for p in pend:
        rec = records[p.row]
        if p.criterion is not None:
            values = {
                "input": rec["input_text"] or "",
                "response": rec["response"] or "",
                "documents": rec["_documents"] or "",
                "reference": rec["reference"] or "",
            }
            msgs = render(p.criterion, values)
            crit = p.criterion
            key = cache_key(
                model=opts.judge_model,
                endpoint=endpoint,
                messages=msgs,
                schema=crit.json_schema(),
                params={"temperature": 0.0 if judge_temp is not None else "default"},
                prompt=f"{crit.name}@{crit.version}:{crit.prompt_hash}",
                sample_index=0,
            )
            n_in = sum(len(m["content"]) for m in msgs)
            tasks.append(
                Task(
                    key=key,
                    messages=msgs,
                    model=opts.judge_model,
                    criterion=crit,
                    temperature=judge_temp,
                    est_input_tokens=_tokens(n_in),
                    est_output_tokens=ANSWER_TOKENS,
                    rejects=judge_info.rejects,
                )
            )
        else:
            if p.row not in sc_inputs:
                sc_inputs[p.row] = input_messages(rec["system"], rec["messages"], rec["prompt"])
            msgs_sc = sc_inputs[p.row]
            model = opts.sc_model or rec["model"] or opts.judge_model
            if not msgs_sc:
                msgs_sc = [{"role": "user", "content": ""}]
            info = catalog.info(model)
            temp = None if info.fixed_temperature else opts.sc_temperature
            if temp is None and model not in fixed_sc:
                fixed_sc.add(model)
                notes.append(
                    f"self-consistency on '{model}' sampled at the model's default "
                    f"temperature (it refuses temperature={opts.sc_temperature:g})"
                )
            if model == opts.judge_model:
                prices: tuple[float | None, float | None] = (None, None)  # the judge's
            elif info.priced:
                prices = (info.input_per_million, info.output_per_million)
            else:
                prices = (0.0, 0.0)
                if model not in unpriced:
                    unpriced.append(model)
            key = cache_key(
                model=model,
                endpoint=endpoint_id(opts.sc_base_url) if opts.sc_base_url else endpoint,
                messages=msgs_sc,
                schema=None,
                params={"temperature": temp if temp is not None else "default"},
                prompt="self_consistency@1",
                sample_index=p.sample,
            )
            n_in = sum(len(m["content"]) for m in msgs_sc)
            tasks.append(
                Task(
                    key=key,
                    messages=msgs_sc,
                    model=model,
                    criterion=None,
                    temperature=temp,
                    est_input_tokens=_tokens(n_in),
                    est_output_tokens=_tokens(len(rec["response"] or "")) + 16,
                    input_price_per_million=prices[0],
                    output_price_per_million=prices[1],
                    rejects=info.rejects,
                )
            )
        p.task_index = len(tasks) - 1

    cache = JudgmentCache(cache_dir)
    stats = JudgeStats(model=opts.judge_model)
    result = RunResult(outcomes=[])
    try:
        if tasks and client is not None:
            if sc_client is not None:
                # Two endpoints: judge tasks and generation tasks run as two batches.
                idx_j = [i for i, t in enumerate(tasks) if t.criterion is not None]
                idx_g = [i for i, t in enumerate(tasks) if t.criterion is None]
                outcomes: list[Outcome] = [Outcome(ok=False, skipped=True)] * len(tasks)
                r1 = JudgeRunner(client, opts.client, cache).run(
                    [tasks[i] for i in idx_j], progress, notice
                )
                settings2 = ClientSettings(**{**opts.client.__dict__, "base_url": opts.sc_base_url})
                if r1.fatal is None and not r1.interrupted and not r1.stopped:
                    left = (
                        None
                        if settings2.max_cost_usd is None
                        else max(0.0, settings2.max_cost_usd - r1.cost_usd)
                    )
                    settings2.max_cost_usd = left
                    r2 = JudgeRunner(sc_client, settings2, cache).run(
                        [tasks[i] for i in idx_g], progress, notice
                    )
                else:
                    r2 = RunResult(outcomes=[Outcome(ok=False, skipped=True)] * len(idx_g))
                for i, o in zip(idx_j, r1.outcomes, strict=True):
                    outcomes[i] = o
                for i, o in zip(idx_g, r2.outcomes, strict=True):
                    outcomes[i] = o
                result = RunResult(
                    outcomes=outcomes,
                    calls=r1.calls + r2.calls,
                    cached=r1.cached + r2.cached,
                    failed=r1.failed + r2.failed,
                    skipped=r1.skipped + r2.skipped,
                    cost_usd=r1.cost_usd + r2.cost_usd,
                    fatal=r1.fatal or r2.fatal,
                    stopped=r1.stopped or r2.stopped,
                    mode=r1.mode,
                    service_failures=r1.service_failures + r2.service_failures,
                    interrupted=r1.interrupted or r2.interrupted,
                    notes=r1.notes + r2.notes,
                )
            else:
                result = JudgeRunner(client, opts.client, cache).run(tasks, progress, notice)
    finally:
        cache.close()
    stats.calls, stats.cached, stats.failed = result.calls, result.cached, result.failed
    stats.skipped, stats.cost_usd, stats.mode = result.skipped, result.cost_usd, result.mode
    stats.unpriced = not price_known
    stats.unpriced_models = unpriced

    frame_out = judgment_frame(sel, pend, result.outcomes, opts, hs, use_ref)
    summary = summarize(
        frame_out, by=opts.by, bucket=opts.bucket, alpha=opts.alpha, min_drop=opts.min_drop
    )
    summary.judge = stats
    summary.windows = windows
    summary.plan = [s.as_dict() | {"window": p.window} for p in plans for s in p.strata]
    fatal = result.fatal
    if fatal is None and result.service_failures:
        fatal = (
            f"the judge endpoint failed after retries for {result.service_failures} "
            "judgment(s); rerun to retry them (successful judgments are cached)"
        )
    summary.notes.extend(notes + result.notes)
    if unpriced:
        summary.notes.append(
            "no price for " + ", ".join(f"'{m}'" for m in unpriced) + ": their calls count "
            "as $0 in the judge cost (set judge.input_price_per_million/"
            "output_price_per_million or add the model to the price table)"
        )
    if result.stopped:
        summary.notes.append(result.stopped)
    if result.interrupted:
        summary.notes.append("interrupted: partial results (rerun the same command to resume)")
    return EvalRun(
        frame=frame_out,
        summary=summary,
        plans=plans,
        fatal=fatal,
        stopped=result.stopped,
        price_known=price_known,
        interrupted=result.interrupted,
        cache_dir=None if cache_dir is None else str(cache_dir),
        kept=sum(1 for o in result.outcomes if o.ok),
    )


def _dry_summary(
    plans: list[Plan],
    sel: pl.DataFrame,
    pend: list[Pending],
    opts: EvalOptions,
    use_ref: bool,
    windows: dict[str, Any],
) -> EvalSummary:
    """Per stratum: judgments, estimated judge tokens and cost (no call is made). Judge
    calls are priced at the judge's price, self-consistency re-asks at the re-asked model's
    (unpriced models count $0 and are named in a note)."""
    if sel.height:
        lens = sel.select(
            (
                pl.col("input_text").str.len_chars().fill_null(0)
                + pl.col("response").str.len_chars().fill_null(0)
            ).alias("n"),
            pl.col("_documents").str.len_chars().fill_null(0).alias("d"),
            pl.col("response").str.len_chars().fill_null(0).alias("r"),
            pl.col("window"),
            pl.col(STRATUM),
            pl.col("model"),
        ).to_dicts()
    else:
        lens = []
    pin = opts.client.input_price_per_million
    pout = opts.client.output_price_per_million
    catalog = opts.catalog or ModelCatalog.shipped()
    unpriced: set[str] = set()
    per: dict[tuple[str, str], list[float]] = {}
    for p in pend:
        row = lens[p.row]
        acc = per.setdefault((row["window"], row[STRATUM]), [0, 0, 0, 0.0])
        acc[0] += 1 if p.sample == 0 else 0
        if p.criterion is not None:
            extra = row["d"] if p.criterion.applies_to == "retrieved" else 0
            ti, to = TEMPLATE_TOKENS + _tokens(row["n"] + extra), ANSWER_TOKENS
            price = (pin, pout)
        else:
            ti, to = _tokens(row["n"]), _tokens(row["r"]) + 16
            model = opts.sc_model or row["model"] or opts.judge_model
            info = catalog.info(model)
            if model == opts.judge_model:
                price = (pin, pout)
            elif info.priced:
                price = (info.input_per_million or 0.0, info.output_per_million or 0.0)
            else:
                price = (0.0, 0.0)
                unpriced.add(model)
        acc[1] += ti
        acc[2] += to
        acc[3] += (ti * price[0] + to * price[1]) / 1e6
    if use_ref and sel.height:
        refc = sel.filter(pl.col("_has_ref")).group_by("window", STRATUM).len()
        for r in refc.iter_rows(named=True):
            per.setdefault((r["window"], r[STRATUM]), [0, 0, 0, 0.0])[0] += r["len"]
    rows = []
    for plan in plans:
        for s in plan.strata:
            n_j, t_in, t_out, cost = per.get((plan.window, s.stratum), [0, 0, 0, 0.0])
            s.judgments = int(n_j)
            s.est_input_tokens = int(t_in)
            s.est_output_tokens = int(t_out)
            s.est_cost_usd = float(cost)
            rows.append(s.as_dict() | {"window": plan.window})
    total = sum(r["est_cost_usd"] for r in rows)
    summary = EvalSummary(by=opts.by, groups=[], windows=windows, plan=rows)
    summary.judge = JudgeStats(model=opts.judge_model, cost_usd=0.0)
    summary.notes.append(f"dry run: no judge call made; estimated judge cost ${total:.4f}")
    if unpriced:
        summary.notes.append(
            "no price for " + ", ".join(f"'{m}'" for m in sorted(unpriced)) + ": their "
            "self-consistency calls count as $0 in the estimate"
        )
    return summary
