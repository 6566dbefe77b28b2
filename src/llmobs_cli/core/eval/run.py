"""Eval-in-prod: plan, judge, score and test a stratified, weighted sample of traces.

One core call per command (:func:`run_eval`, :func:`summarize`); the CLI only parses and
renders. The pipeline:

1. load the needed columns, resolve ``--current``/``--baseline`` windows (named windows
   end where the window they are compared with starts: see :mod:`core.windows`);
2. :func:`core.sampling.make_plan` per window — strata, eval rates, deterministic
   selection; ``--dry-run`` stops here with token and cost estimates and makes no call;
3. build the tasks: every selected call × every evaluator that applies (LLM criteria,
   ``faithfulness`` only with retrieved documents, criteria with ``applies_to: reference``
   and the ``reference`` comparison only with a reference, ``self_consistency`` when
   enabled) and run them through :class:`core.judges.client.JudgeRunner` (cache, retries,
   concurrency, cost cap);
4. one row per judgment (:data:`JUDGMENT_SCHEMA`) and :func:`summarize`.

:func:`summarize` is the API the dashboard and ``llmobs eval summarize`` use on a saved
``evals.parquet``: per group × evaluator the judged count, ``n_eff``, the Hájek mean score
with a 95 % interval (stratified linearised variance, Wilson with ``n_eff`` for small
groups: :func:`core.weights.hajek_mean_ci`), error rate; overall figures standardised to
the current window's stratum mix; an optional time series; window and release regression
tests (:mod:`core.regression`); judge–human agreement. Human labels are excluded from the
score groups: reviewed rows are chosen for being high-stakes, borderline or disputed, so
they are not a probability sample.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from llmobs_cli.core.eval import regression as reg
from llmobs_cli.core.eval.judges.cache import JudgmentCache, cache_key, endpoint_id
from llmobs_cli.core.eval.judges.client import (
    DEFAULT_BASE_URL,
    ClientSettings,
    JudgeRunner,
    Outcome,
    Progress,
    RunResult,
    Task,
    make_client,
)
from llmobs_cli.core.eval.judges.consistency import agreement, input_messages
from llmobs_cli.core.eval.judges.human import cohen_kappa, confusion
from llmobs_cli.core.eval.judges.prompts import BUILTIN, Criterion, builtin_criterion, render
from llmobs_cli.core.eval.judges.reference import score_frame
from llmobs_cli.core.eval.plan import STRATUM, Plan, make_plan
from llmobs_cli.core.record.weights import hajek_mean_ci
from llmobs_cli.core.record.windows import Window, resolve_now, resolve_window
from llmobs_cli.errors import UsageError

REFERENCE = "reference"
SELF_CONSISTENCY = "self_consistency"
HUMAN = "human"
#: tokens of a criterion template and of a judge answer, for estimates before any call
TEMPLATE_TOKENS = 350
ANSWER_TOKENS = 120

JUDGMENT_SCHEMA: dict[str, pl.DataType] = {
    "trace_id": pl.String(),
    "span_id": pl.String(),
    "route": pl.String(),
    "timestamp": pl.Datetime("us", "UTC"),
    "model": pl.String(),
    "release": pl.String(),
    "window": pl.String(),
    "stratum": pl.String(),
    "evaluator": pl.String(),
    "criterion": pl.String(),
    "score": pl.Float64(),
    "raw_score": pl.Float64(),
    "sample_rate": pl.Float64(),
    "eval_rate": pl.Float64(),
    "weight": pl.Float64(),
    "judge_model": pl.String(),
    "explanation": pl.String(),
    "judge_cost_usd": pl.Float64(),
    "judge_input_tokens": pl.Int64(),
    "judge_output_tokens": pl.Int64(),
    "judge_latency_ms": pl.Float64(),
    "attempts": pl.Int64(),
    "cached": pl.Boolean(),
    "prompt_version": pl.String(),
    "prompt_hash": pl.String(),
    "flagged": pl.Boolean(),
    "high_stakes": pl.Boolean(),
    "error": pl.String(),
    "input_text": pl.String(),
    "response_text": pl.String(),
}
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
)


# --- options and results ----------------------------------------------------------------


@dataclass
class EvalOptions:
    by: list[str] = field(default_factory=lambda: ["route"])
    budget: int = 200
    route_budgets: dict[str, int] = field(default_factory=dict)
    high_stakes: set[str] = field(default_factory=set)
    allocation: Literal["equal", "neyman"] = "equal"
    evaluators: list[str] = field(
        default_factory=lambda: ["relevance", "faithfulness", "completeness", REFERENCE]
    )
    criteria: dict[str, Criterion] = field(default_factory=dict)  # custom + overrides
    reference_method: str = "token_f1"
    numeric_tolerance: float = 0.01
    self_consistency: bool = False
    sc_samples: int = 3
    sc_temperature: float = 0.7
    sc_model: str | None = None
    sc_base_url: str | None = None
    sc_threshold: float = 0.5
    judge_model: str = "gpt-4o-mini"
    client: ClientSettings = field(default_factory=ClientSettings)
    current: str | None = None
    baseline: str | None = None
    since: str | None = None
    until: str | None = None
    now: str | None = None
    min_drop: float = 0.05
    alpha: float = 0.05
    bucket: str | None = None
    borderline: tuple[float, float] = (0.4, 0.6)
    dry_run: bool = False
    keep_text: bool = True


@dataclass
class JudgeStats:
    calls: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    cost_usd: float = 0.0
    model: str = ""
    mode: str = "json_schema"

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cached": self.cached,
            "failed": self.failed,
            "skipped": self.skipped,
            "cost_usd": round(self.cost_usd, 6),
            "model": self.model,
            "response_format": self.mode,
        }


@dataclass
class EvalSummary:
    by: list[str]
    groups: list[dict[str, Any]]
    baseline_groups: list[dict[str, Any]] = field(default_factory=list)
    overall: list[dict[str, Any]] = field(default_factory=list)
    tests: list[reg.Comparison] = field(default_factory=list)
    buckets: list[dict[str, Any]] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)
    judge: JudgeStats = field(default_factory=JudgeStats)
    windows: dict[str, Any] = field(default_factory=dict)
    plan: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[reg.Comparison]:
        return [t for t in self.tests if t.regression]

    def as_dict(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "by": self.by,
            "groups": self.groups,
            "baseline_groups": self.baseline_groups,
            "overall": self.overall,
            "regressions": [t.as_dict() for t in self.regressions],
            "tests": [t.as_dict() for t in self.tests],
            "buckets": self.buckets,
            "agreement": self.agreement,
            "judge": self.judge.as_dict(),
            "plan": self.plan,
            "notes": self.notes,
        }


@dataclass
class EvalRun:
    frame: pl.DataFrame  # one row per judgment (JUDGMENT_SCHEMA)
    summary: EvalSummary
    plans: list[Plan]
    fatal: str | None = None  # the judge endpoint failed for good (exit 3)
    stopped: str | None = None  # stopped early by --max-cost
    dry_run: bool = False
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    price_known: bool = True


# --- criteria ----------------------------------------------------------------------------


def resolve_criteria(
    evaluators: Sequence[str], custom: dict[str, Criterion]
) -> dict[str, Criterion]:
    """The LLM criteria among ``evaluators`` (custom ones override the shipped ones)."""
    out: dict[str, Criterion] = {}
    for name in evaluators:
        if name in (REFERENCE, SELF_CONSISTENCY, HUMAN):
            continue
        if name in custom:
            out[name] = custom[name]
        elif name in BUILTIN:
            out[name] = builtin_criterion(name)
        else:
            known = ", ".join([*BUILTIN, REFERENCE, SELF_CONSISTENCY, *custom])
            raise UsageError(
                f"eval.evaluators: unknown evaluator '{name}' (known: {known}; add your own "
                "under eval.criteria)"
            )
    return out


# --- windows -----------------------------------------------------------------------------


def resolve_windows(opts: EvalOptions, latest: datetime | None) -> tuple[Window, Window | None]:
    now = resolve_now(opts.now, latest)
    cur_text = opts.current
    if cur_text is None and opts.baseline is not None:
        cur_text = "last_week"
    current = resolve_window(cur_text, now, option="--current")
    baseline = None
    if opts.baseline is not None:
        baseline = resolve_window(opts.baseline, now, end=current.start, option="--baseline")
        if baseline.start is None and baseline.end is None:
            raise UsageError("--baseline: give a window (last_month, START..END or 30d)")
    return current, baseline


def _in_window(w: Window) -> pl.Expr:
    e = pl.lit(True)
    if w.start is not None:
        e = e & (pl.col("timestamp") >= w.start)
    if w.end is not None:
        e = e & (pl.col("timestamp") < w.end)
    return e


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


@dataclass
class _Pending:
    row: int  # index into the selection frame
    evaluator: str
    criterion: Criterion | None
    task_index: int
    sample: int = 0


def plan_windows(frame: pl.DataFrame, opts: EvalOptions) -> tuple[list[Plan], dict[str, Any]]:
    latest = frame["timestamp"].max() if frame.height else None
    current, baseline = resolve_windows(opts, latest)  # type: ignore[arg-type]
    windows = {"current": current.as_dict()}
    plans = [
        make_plan(
            frame.filter(_in_window(current)),
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
                frame.filter(_in_window(baseline)),
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
) -> EvalRun:
    """Load traces and evaluate them (see the module docstring)."""
    from llmobs_cli.core.ingest.readers import load
    from llmobs_cli.core.record.fields import base_column

    cols = set(TRACE_COLUMNS) | {base_column(f) for f in opts.by}
    now_hint = None
    loaded = load(paths, columns=cols, on_error=on_error, fmt=fmt, options=read_options)
    frame = loaded.frame
    if opts.since or opts.until:
        from llmobs_cli.core.record.windows import resolve_bound

        latest = frame["timestamp"].max() if frame.height else None
        now_hint = resolve_now(opts.now, latest)  # type: ignore[arg-type]
        lo = resolve_bound(opts.since, now_hint, "--since")
        hi = resolve_bound(opts.until, now_hint, "--until")
        if lo is not None:
            frame = frame.filter(pl.col("timestamp") >= lo)
        if hi is not None:
            frame = frame.filter(pl.col("timestamp") < hi)
    run = evaluate_frame(
        frame, opts, cache_dir=cache_dir, progress=progress, client_factory=client_factory
    )
    run.skipped = loaded.skipped
    run.skipped_reasons = dict(loaded.skipped_reasons)
    return run


def evaluate_frame(
    frame: pl.DataFrame,
    opts: EvalOptions,
    *,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
    client_factory: Callable[[ClientSettings], Any] = make_client,
) -> EvalRun:
    """Evaluate canonical rows already in memory (the testable core of :func:`run_eval`)."""
    criteria = resolve_criteria(opts.evaluators, opts.criteria)
    use_ref = REFERENCE in opts.evaluators
    use_sc = opts.self_consistency or SELF_CONSISTENCY in opts.evaluators
    plans, windows = plan_windows(frame, opts)
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
    pend: list[_Pending] = []
    if sel.height:
        has_docs = sel["_has_docs"].to_list()
        has_ref = sel["_has_ref"].to_list()
        for name, crit in criteria.items():
            for i in range(sel.height):
                if (crit.applies_to == "retrieved" and not has_docs[i]) or (
                    crit.applies_to == "reference" and not has_ref[i]
                ):
                    continue
                pend.append(_Pending(i, name, crit, -1))
        if use_sc:
            for i in range(sel.height):
                for k in range(opts.sc_samples):
                    pend.append(_Pending(i, SELF_CONSISTENCY, None, -1, k))

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
                params={"temperature": 0.0},
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
                    temperature=0.0,
                    est_input_tokens=_tokens(n_in),
                    est_output_tokens=ANSWER_TOKENS,
                )
            )
        else:
            if p.row not in sc_inputs:
                sc_inputs[p.row] = input_messages(rec["system"], rec["messages"], rec["prompt"])
            msgs_sc = sc_inputs[p.row]
            model = opts.sc_model or rec["model"] or opts.judge_model
            if not msgs_sc:
                msgs_sc = [{"role": "user", "content": ""}]
            key = cache_key(
                model=model,
                endpoint=endpoint_id(opts.sc_base_url) if opts.sc_base_url else endpoint,
                messages=msgs_sc,
                schema=None,
                params={"temperature": opts.sc_temperature},
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
                    temperature=opts.sc_temperature,
                    est_input_tokens=_tokens(n_in),
                    est_output_tokens=_tokens(len(rec["response"] or "")) + 16,
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
                    [tasks[i] for i in idx_j], progress
                )
                settings2 = ClientSettings(**{**opts.client.__dict__, "base_url": opts.sc_base_url})
                if r1.fatal is None:
                    left = (
                        None
                        if settings2.max_cost_usd is None
                        else max(0.0, settings2.max_cost_usd - r1.cost_usd)
                    )
                    settings2.max_cost_usd = left
                    r2 = JudgeRunner(sc_client, settings2, cache).run(
                        [tasks[i] for i in idx_g], progress
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
                )
            else:
                result = JudgeRunner(client, opts.client, cache).run(tasks, progress)
    finally:
        cache.close()
    stats.calls, stats.cached, stats.failed = result.calls, result.cached, result.failed
    stats.skipped, stats.cost_usd, stats.mode = result.skipped, result.cost_usd, result.mode

    frame_out = _judgment_frame(sel, pend, result.outcomes, opts, hs, use_ref)
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
    if result.stopped:
        summary.notes.append(result.stopped)
    return EvalRun(
        frame=frame_out,
        summary=summary,
        plans=plans,
        fatal=fatal,
        stopped=result.stopped,
        price_known=price_known,
    )


def empty_judgments() -> pl.DataFrame:
    return pl.DataFrame(schema=JUDGMENT_SCHEMA)


def _base_rows(sel: pl.DataFrame, opts: EvalOptions, hs: set[str]) -> pl.DataFrame:
    from llmobs_cli.core.record.fields import field_expr

    extra = [f for f in opts.by if f not in JUDGMENT_SCHEMA]
    return sel.select(
        "trace_id",
        "span_id",
        "route",
        "timestamp",
        "model",
        "release",
        "window",
        pl.col(STRATUM).alias("stratum"),
        "sample_rate",
        "eval_rate",
        "weight",
        pl.col("route").is_in(sorted(hs)).alias("high_stakes"),
        (pl.col("input_text") if opts.keep_text else pl.lit(None, pl.String)).alias("input_text"),
        (pl.col("response") if opts.keep_text else pl.lit(None, pl.String)).alias("response_text"),
        *[field_expr(f).cast(pl.String).alias(f) for f in extra],
    )


def _judgment_frame(
    sel: pl.DataFrame,
    pend: list[_Pending],
    outcomes: list[Outcome],
    opts: EvalOptions,
    hs: set[str],
    use_ref: bool,
) -> pl.DataFrame:
    if not sel.height:
        return empty_judgments()
    base = _base_rows(sel, opts, hs)
    parts: list[pl.DataFrame] = []
    llm = [p for p in pend if p.criterion is not None]
    if llm:
        outs = [outcomes[p.task_index] for p in llm]
        keep = [i for i, o in enumerate(outs) if not o.skipped]
        llm = [llm[i] for i in keep]
        outs = [outs[i] for i in keep]
    if llm:
        judged = pl.DataFrame(
            {
                "_row": [p.row for p in llm],
                "evaluator": [p.evaluator for p in llm],
                "criterion": [p.evaluator for p in llm],
                "score": [o.score if o.ok else None for o in outs],
                "raw_score": [o.raw_score if o.ok else None for o in outs],
                "judge_model": [opts.judge_model] * len(llm),
                "explanation": [o.explanation for o in outs],
                "judge_cost_usd": [o.cost_usd for o in outs],
                "judge_input_tokens": [o.input_tokens for o in outs],
                "judge_output_tokens": [o.output_tokens for o in outs],
                "judge_latency_ms": [o.latency_ms for o in outs],
                "attempts": [o.attempts for o in outs],
                "cached": [o.cached for o in outs],
                "prompt_version": [p.criterion.version for p in llm],  # type: ignore[union-attr]
                "prompt_hash": [p.criterion.prompt_hash for p in llm],  # type: ignore[union-attr]
                "error": [None if o.ok else o.error for o in outs],
            },
            schema_overrides={
                "score": pl.Float64,
                "raw_score": pl.Float64,
                "judge_latency_ms": pl.Float64,
                "explanation": pl.String,
                "error": pl.String,
                "judge_cost_usd": pl.Float64,
            },
        )
        lo, hi = opts.borderline
        judged = judged.with_columns(
            pl.col("score").is_between(lo, hi).fill_null(False).alias("flagged")
        )
        parts.append(judged)
    sc = [p for p in pend if p.criterion is None]
    if sc:
        by_row: dict[int, list[Outcome]] = {}
        for p in sc:
            by_row.setdefault(p.row, []).append(outcomes[p.task_index])
        rows, scores, errors, costs, it, ot, cached, att, lat, expl = ([] for _ in range(10))
        responses = sel["response"].to_list()
        for r, outs_r in by_row.items():
            if all(o.skipped for o in outs_r):
                continue
            answers = [o.content for o in outs_r if o.ok and o.content is not None]
            bad = [o.error for o in outs_r if not o.ok and o.error]
            agree = agreement(answers) if not bad and len(answers) == len(outs_r) else None
            rows.append(r)
            scores.append(agree)
            errors.append(None if agree is not None else (bad[0] if bad else "not all samples"))
            costs.append(sum(o.cost_usd for o in outs_r))
            it.append(sum(o.input_tokens for o in outs_r))
            ot.append(sum(o.output_tokens for o in outs_r))
            cached.append(all(o.cached for o in outs_r))
            att.append(sum(o.attempts for o in outs_r))
            lat.append(max((o.latency_ms or 0.0) for o in outs_r))
            logged = agreement([responses[r], *answers]) if answers and responses[r] else None
            expl.append(
                None
                if agree is None
                else f"{len(answers)} samples, mean pairwise similarity {agree:.2f}"
                + ("" if logged is None else f"; with the logged answer {logged:.2f}")
            )
        if rows:
            scf = pl.DataFrame(
                {
                    "_row": rows,
                    "evaluator": [SELF_CONSISTENCY] * len(rows),
                    "criterion": [SELF_CONSISTENCY] * len(rows),
                    "score": scores,
                    "raw_score": scores,
                    "judge_model": [opts.sc_model or "(logged model)"] * len(rows),
                    "explanation": expl,
                    "judge_cost_usd": costs,
                    "judge_input_tokens": it,
                    "judge_output_tokens": ot,
                    "judge_latency_ms": lat,
                    "attempts": att,
                    "cached": cached,
                    "prompt_version": ["1"] * len(rows),
                    "prompt_hash": [f"samples={opts.sc_samples},t={opts.sc_temperature:g}"]
                    * len(rows),
                    "error": errors,
                },
                schema_overrides={
                    "score": pl.Float64,
                    "raw_score": pl.Float64,
                    "error": pl.String,
                    "explanation": pl.String,
                    "judge_latency_ms": pl.Float64,
                    "judge_cost_usd": pl.Float64,
                },
            ).with_columns(
                (pl.col("score") < 1 - opts.sc_threshold).fill_null(False).alias("flagged")
            )
            parts.append(scf)
    if use_ref:
        refs = sel.with_row_index("_row").filter(pl.col("_has_ref"))
        if refs.height:
            s = score_frame(refs, opts.reference_method, opts.numeric_tolerance)
            parts.append(
                pl.DataFrame({"_row": refs["_row"].cast(pl.Int64), "score": s}).with_columns(
                    pl.lit(REFERENCE).alias("evaluator"),
                    pl.lit(REFERENCE).alias("criterion"),
                    pl.col("score").alias("raw_score"),
                    pl.lit(f"reference:{opts.reference_method}").alias("judge_model"),
                    pl.lit(None, pl.String).alias("explanation"),
                    pl.lit(0.0).alias("judge_cost_usd"),
                    pl.lit(0, pl.Int64).alias("judge_input_tokens"),
                    pl.lit(0, pl.Int64).alias("judge_output_tokens"),
                    pl.lit(None, pl.Float64).alias("judge_latency_ms"),
                    pl.lit(0, pl.Int64).alias("attempts"),
                    pl.lit(False).alias("cached"),
                    pl.lit("1").alias("prompt_version"),
                    pl.lit(f"{opts.reference_method}:{opts.numeric_tolerance:g}").alias(
                        "prompt_hash"
                    ),
                    pl.when(pl.col("score").is_null())
                    .then(pl.lit("no comparable reference"))
                    .otherwise(None)
                    .cast(pl.String)
                    .alias("error"),
                    pl.lit(False).alias("flagged"),
                )
            )
    if not parts:
        return empty_judgments()
    cols = [c for c in JUDGMENT_SCHEMA if c not in base.columns]
    facts = pl.concat(
        [
            p.with_columns(pl.col("_row").cast(pl.Int64))
            .select("_row", *cols)
            .cast({c: JUDGMENT_SCHEMA[c] for c in cols})
            for p in parts
        ],
        how="vertical",
    )
    out = facts.join(
        base.with_row_index("_row").with_columns(pl.col("_row").cast(pl.Int64)),
        on="_row",
        how="left",
    )
    order = [*JUDGMENT_SCHEMA, *[c for c in base.columns if c not in JUDGMENT_SCHEMA]]
    return out.select(order).sort("window", "evaluator", "stratum", "trace_id", "span_id")


def _dry_summary(
    plans: list[Plan],
    sel: pl.DataFrame,
    pend: list[_Pending],
    opts: EvalOptions,
    use_ref: bool,
    windows: dict[str, Any],
) -> EvalSummary:
    """Per stratum: judgments, estimated judge tokens and cost (no call is made)."""
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
        ).to_dicts()
    else:
        lens = []
    per: dict[tuple[str, str], list[float]] = {}
    for p in pend:
        row = lens[p.row]
        acc = per.setdefault((row["window"], row[STRATUM]), [0, 0, 0])
        acc[0] += 1 if p.sample == 0 else 0
        if p.criterion is not None:
            extra = row["d"] if p.criterion.applies_to == "retrieved" else 0
            acc[1] += TEMPLATE_TOKENS + _tokens(row["n"] + extra)
            acc[2] += ANSWER_TOKENS
        else:
            acc[1] += _tokens(row["n"])
            acc[2] += _tokens(row["r"]) + 16
    if use_ref and sel.height:
        refc = sel.filter(pl.col("_has_ref")).group_by("window", STRATUM).len()
        for r in refc.iter_rows(named=True):
            per.setdefault((r["window"], r[STRATUM]), [0, 0, 0])[0] += r["len"]
    pin = opts.client.input_price_per_million
    pout = opts.client.output_price_per_million
    rows = []
    for p in plans:
        for s in p.strata:
            j, ti, to = per.get((p.window, s.stratum), [0, 0, 0])
            s.judgments = int(j)
            s.est_input_tokens = int(ti)
            s.est_output_tokens = int(to)
            s.est_cost_usd = (ti * pin + to * pout) / 1e6
            rows.append(s.as_dict() | {"window": p.window})
    total = sum(r["est_cost_usd"] for r in rows)
    summary = EvalSummary(by=opts.by, groups=[], windows=windows, plan=rows)
    summary.judge = JudgeStats(model=opts.judge_model, cost_usd=0.0)
    summary.notes.append(f"dry run: no judge call made; estimated judge cost ${total:.4f}")
    return summary


# --- summaries ----------------------------------------------------------------------------


def _key_cols(frame: pl.DataFrame, by: Sequence[str]) -> list[str]:
    missing = [f for f in by if f not in frame.columns]
    if missing:
        raise UsageError(
            f"--by: the evals file has no column '{missing[0]}' (judge with --by "
            f"{','.join(by)} to group by it)"
        )
    return list(by)


def _nan(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _group_stats(part: pl.DataFrame) -> dict[str, Any]:
    """Stats of one group × evaluator (a few hundred rows: numpy)."""
    n_all = part.height
    ok = part.filter(pl.col("error").is_null() & pl.col("score").is_not_null())
    y = ok["score"].to_numpy().astype(float)
    w = ok["weight"].to_numpy().astype(float)
    strata = ok["stratum"].to_numpy() if "stratum" in ok.columns else None
    mean, lo, hi, se = hajek_mean_ci(y, w, strata) if y.size else (math.nan,) * 4
    ne = float(w.sum() ** 2 / (w**2).sum()) if y.size else 0.0
    return {
        "judged": int(ok.height),
        "errors": int(n_all - ok.height),
        "error_rate": (n_all - ok.height) / n_all if n_all else None,
        "calls": float(w.sum()) if y.size else 0.0,
        "n_eff": ne,
        "score": _nan(mean),
        "ci_low": _nan(lo),
        "ci_high": _nan(hi),
        "se": _nan(se),
        "flagged": int(part["flagged"].fill_null(False).sum()) if "flagged" in part.columns else 0,
    }


def _groups(frame: pl.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    out = []
    if not frame.height:
        return out
    for gkey, part in frame.sort([*keys, "evaluator"], nulls_last=True).group_by(
        [*keys, "evaluator"], maintain_order=True
    ):
        key = dict(zip(keys, gkey[: len(keys)], strict=True))
        out.append({"key": key, "evaluator": gkey[-1], **_group_stats(part)})
    return out


def _overall(cur: pl.DataFrame, base: pl.DataFrame | None) -> list[dict[str, Any]]:
    """Per evaluator, standardised to the current window's stratum mix (Σw shares)."""
    out = []
    for ev in sorted(cur["evaluator"].unique().to_list()):
        c = cur.filter(pl.col("evaluator") == ev)
        mix = c.group_by("stratum").agg(pl.col("weight").sum().alias("w"))
        shares = dict(
            zip(mix["stratum"].to_list(), (mix["w"] / mix["w"].sum()).to_list(), strict=True)
        )
        row: dict[str, Any] = {"evaluator": ev}
        for name, part in (
            ("current", c),
            ("baseline", None if base is None else base.filter(pl.col("evaluator") == ev)),
        ):
            if part is None:
                continue
            est = _standardised(part, shares)
            row[name] = est
        if (
            "baseline" in row
            and row["current"]["score"] is not None
            and row["baseline"]["score"] is not None
        ):
            d, se, _z, p = reg.drop_test(
                row["current"]["score"],
                row["current"]["se"],
                row["baseline"]["score"],
                row["baseline"]["se"],
            )
            row["delta"], row["se"], row["p_value"] = _nan(d), _nan(se), _nan(p)
        out.append(row)
    return out


def _standardised(part: pl.DataFrame, shares: dict[str, float]) -> dict[str, Any]:
    est, var, cover = 0.0, 0.0, 0.0
    judged = 0
    for stratum, share in shares.items():
        s = part.filter(pl.col("stratum") == stratum)
        st = _group_stats(s) if s.height else None
        if st is None or st["score"] is None:
            continue
        est += share * st["score"]
        var += share**2 * (st["se"] or 0.0) ** 2
        cover += share
        judged += st["judged"]
    if cover == 0:
        return {
            "score": None,
            "se": None,
            "ci_low": None,
            "ci_high": None,
            "judged": 0,
            "coverage": 0.0,
        }
    est /= cover  # strata missing in this window: renormalise over the ones present
    var /= cover**2
    se = math.sqrt(var)
    return {
        "score": est,
        "se": se,
        "ci_low": max(0.0, est - 1.959964 * se),
        "ci_high": min(1.0, est + 1.959964 * se),
        "judged": judged,
        "coverage": cover,
    }


def _window_tests(
    cur: list[dict[str, Any]], base: list[dict[str, Any]], opts_alpha: float, min_drop: float
) -> list[reg.Comparison]:
    index = {(json.dumps(g["key"], sort_keys=True, default=str), g["evaluator"]): g for g in base}
    tests = []
    for g in cur:
        b = index.get((json.dumps(g["key"], sort_keys=True, default=str), g["evaluator"]))
        if b is None or g["score"] is None or b["score"] is None:
            continue
        tests.append(reg.compare(_comparison(g, b), opts_alpha, min_drop=min_drop))
    return tests


def _comparison(g: dict, b: dict, **kind: Any) -> reg.Comparison:
    """The comparison of a current group summary ``g`` with its baseline ``b``."""
    return reg.Comparison(
        key=g["key"],
        evaluator=g["evaluator"],
        current=g["score"],
        baseline=b["score"],
        se_current=g["se"] if g["se"] is not None else math.nan,
        se_baseline=b["se"] if b["se"] is not None else math.nan,
        n_eff_current=g["n_eff"],
        n_eff_baseline=b["n_eff"],
        judged_current=g["judged"],
        judged_baseline=b["judged"],
        **kind,
    )


def _release_tests(
    frame: pl.DataFrame, keys: list[str], alpha: float, min_drop: float
) -> list[reg.Comparison]:
    """Each release against the one before it (by first timestamp), within the other keys."""
    others = [k for k in keys if k != "release"]
    first = frame.group_by("release").agg(pl.col("timestamp").min().alias("t")).sort("t")
    order = [r for r in first["release"].to_list() if r is not None]
    if len(order) < 2:
        return []
    groups = _groups(frame, keys)
    index = {
        (
            json.dumps({k: g["key"][k] for k in others}, default=str),
            g["key"]["release"],
            g["evaluator"],
        ): g
        for g in groups
    }
    tests = []
    for g in groups:
        rel = g["key"]["release"]
        if rel not in order or order.index(rel) == 0:
            continue
        prev = order[order.index(rel) - 1]
        okey = json.dumps({k: g["key"][k] for k in others}, default=str)
        b = index.get((okey, prev, g["evaluator"]))
        if b is None or g["score"] is None or b["score"] is None:
            continue
        c = _comparison(g, b, kind="release", extra={"baseline_release": prev})
        tests.append(reg.compare(c, alpha, min_drop=min_drop))
    return tests


def _buckets(frame: pl.DataFrame, keys: list[str], bucket: str) -> list[dict[str, Any]]:
    every = {"hour": "1h", "day": "1d", "week": "1w"}.get(bucket)
    if every is None:
        raise UsageError(f"--bucket: expected hour, day or week (got '{bucket}')")
    b = frame.with_columns(pl.col("timestamp").dt.truncate(every).alias("_bucket"))
    out = []
    for (ts, *rest), part in b.sort("_bucket").group_by(
        ["_bucket", *keys, "evaluator"], maintain_order=True
    ):
        key = dict(zip(keys, rest[: len(keys)], strict=True))
        out.append(
            {
                "bucket": ts.isoformat() if ts is not None else None,
                "key": key,
                "evaluator": rest[-1],
                **_group_stats(part),
            }
        )
    out.sort(key=lambda d: (d["bucket"] or "", json.dumps(d["key"], default=str), d["evaluator"]))
    return out


def agreement_table(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Judge–human agreement per criterion: κ, confusion matrix, raw agreement."""
    if "evaluator" not in frame.columns:
        return []
    human = frame.filter((pl.col("evaluator") == HUMAN) & pl.col("score").is_not_null())
    if not human.height:
        return []
    judged = frame.filter(
        (pl.col("evaluator") != HUMAN) & pl.col("error").is_null() & pl.col("score").is_not_null()
    )
    pairs = (
        human.select("trace_id", "span_id", "criterion", pl.col("score").alias("h"))
        .join(
            judged.select(
                "trace_id",
                "span_id",
                pl.col("evaluator").alias("criterion"),
                pl.col("score").alias("j"),
            ),
            on=["trace_id", "span_id", "criterion"],
            how="inner",
        )
        .unique(["trace_id", "span_id", "criterion"], keep="last")
    )
    out = []
    for (crit,), part in pairs.sort("criterion").group_by(["criterion"], maintain_order=True):
        jb = (part["j"] >= 0.5).cast(pl.Int8).to_list()
        hb = (part["h"] >= 0.5).cast(pl.Int8).to_list()
        m = confusion(jb, hb)
        kappa = cohen_kappa(jb, hb)
        out.append(
            {
                "evaluator": crit,
                "pairs": part.height,
                "agreement": float(np.trace(m) / m.sum()) if m.sum() else None,
                "kappa": kappa,
                "confusion": {
                    "judge_fail_human_fail": int(m[0, 0]),
                    "judge_fail_human_pass": int(m[0, 1]),
                    "judge_pass_human_fail": int(m[1, 0]),
                    "judge_pass_human_pass": int(m[1, 1]),
                },
                "mean_abs_diff": float((part["j"] - part["h"]).abs().mean()),  # type: ignore[arg-type]
            }
        )
    return out


def judge_stats_from_frame(frame: pl.DataFrame) -> JudgeStats:
    llm = frame.filter(~pl.col("evaluator").is_in([REFERENCE, HUMAN]))
    if not llm.height:
        return JudgeStats()
    models = llm["judge_model"].drop_nulls().unique().to_list()
    return JudgeStats(
        calls=int(llm.filter(~pl.col("cached"))["attempts"].sum() or 0),
        cached=int(llm["cached"].sum() or 0),
        failed=int(llm["error"].is_not_null().sum()),
        cost_usd=float(llm.filter(~pl.col("cached"))["judge_cost_usd"].sum() or 0.0),
        model=",".join(sorted(str(m) for m in models)),
    )


def summarize(
    evals: pl.DataFrame,
    by: Sequence[str] = ("route",),
    bucket: str | None = None,
    *,
    alpha: float = 0.05,
    min_drop: float = 0.05,
    release_tests: bool | None = None,
) -> EvalSummary:
    """Aggregate judgment rows (a fresh run or a saved ``evals.parquet``); no call is made.

    Groups come from the ``current`` window (all rows when the file has no ``window``
    column); with ``baseline`` rows present each group × evaluator is tested for a
    regression; with ``release`` in ``by`` (and no baseline window) each release is
    tested against the previous one.
    """
    frame = evals
    for col, default in (
        ("window", "current"),
        ("flagged", False),
        ("stratum", None),
        ("cached", False),
        ("criterion", None),
        ("judge_model", None),
        ("judge_cost_usd", 0.0),
        ("attempts", 0),
    ):
        if col not in frame.columns:
            dtype = JUDGMENT_SCHEMA[col]
            frame = frame.with_columns(pl.lit(default, dtype).alias(col))
    if frame.height and frame["stratum"].null_count() == frame.height:
        frame = frame.with_columns(pl.col("route").alias("stratum"))
    keys = _key_cols(frame, by) if frame.height else list(by)
    scored = frame.filter(pl.col("evaluator") != HUMAN) if frame.height else frame
    cur = scored.filter(pl.col("window") == "current") if frame.height else scored
    base = scored.filter(pl.col("window") == "baseline") if frame.height else scored
    summary = EvalSummary(by=list(by), groups=_groups(cur, keys))
    if base.height:
        summary.baseline_groups = _groups(base, keys)
        summary.tests = _window_tests(summary.groups, summary.baseline_groups, alpha, min_drop)
    if release_tests is None:
        release_tests = "release" in keys and not base.height
    if release_tests and cur.height:
        summary.tests += _release_tests(cur, keys, alpha, min_drop)
    reg.flag(summary.tests, alpha, min_drop)
    if cur.height:
        summary.overall = _overall(cur, base if base.height else None)
    if bucket and scored.height:
        summary.buckets = _buckets(scored, keys, bucket)
    summary.agreement = agreement_table(frame) if frame.height else []
    summary.judge = judge_stats_from_frame(frame) if frame.height else JudgeStats()
    if frame.height:
        ts = frame["timestamp"]
        summary.windows = {
            w: {"start": None, "end": None} for w in frame["window"].unique().sort().to_list()
        }
        for w in summary.windows:
            t = frame.filter(pl.col("window") == w)["timestamp"]
            summary.windows[w] = {"start": _iso(t.min()), "end": _iso(t.max())}
        del ts
    return summary


def _iso(v: Any) -> str | None:
    return v.isoformat() if v is not None else None


def read_evals(path: str | Path) -> pl.DataFrame:
    """Read a saved evals file (Parquet) with a clear error when it is not one."""
    from llmobs_cli.errors import InputError

    p = Path(path)
    if not p.exists():
        raise InputError([f"{p}: file not found"])
    try:
        frame = pl.read_parquet(p)
    except Exception as exc:
        raise InputError([f"{p}: not a Parquet evals file ({type(exc).__name__})"]) from exc
    missing = [
        c
        for c in ("trace_id", "evaluator", "score", "weight", "route", "timestamp")
        if c not in frame.columns
    ]
    if missing:
        raise InputError([f"{p}: {missing[0]}: missing column (not an llmobs evals file)"])
    return frame
