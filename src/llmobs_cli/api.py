"""The Python API: what the CLI does, callable from a notebook or a script.

Every entry point has one shape::

    fn(source, *, config=None, window=None, ...) -> a typed result

* ``source`` — trace files (a path, a glob, a directory or a list of them, as on the
  command line), a Polars ``DataFrame``/``LazyFrame`` of trace rows, or the
  :class:`Traces` that :func:`load` returns. A frame is validated like a file (same
  aliases, same checks, same errors naming the field).
* ``config`` — a :class:`Config` (``Config.load("llmobs.yaml")``) or a path to one;
  ``None`` does what the CLI does: ``./llmobs.yaml`` when present, else the defaults.
* ``window`` — a :class:`Window` (``since``/``until``/``now``, the CLI's
  ``--since``/``--until``/``--now``).
* the other keyword arguments are the command's options, with the CLI's defaults.

Results are dataclasses: ``to_dict()`` is the command's ``--format json`` document,
``to_json()`` its text, ``to_frame()`` a Polars frame where a table makes sense. Errors
are :class:`llmobs_cli.errors.LlmobsError` subclasses naming the parameter at fault.

Each function wraps the same core call its command makes (parse → one core call →
render), so a figure here is the figure the CLI prints.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from llmobs_cli.core.record.config import Config
from llmobs_cli.errors import InputError, ServiceError

if TYPE_CHECKING:
    import polars as pl

    from llmobs_cli.core.dashboard.build import DashboardResult as _CoreDashboard
    from llmobs_cli.core.drift.engine import DriftResult as _CoreDrift
    from llmobs_cli.core.drift.engine import WindowSummary
    from llmobs_cli.core.eval.options import EvalRun, EvalSummary
    from llmobs_cli.core.ingest.storage_sampling import SampleResult as _CoreSample
    from llmobs_cli.core.record.windows import Window as _CoreWindow
    from llmobs_cli.core.report.engine import Report as _CoreReport
    from llmobs_cli.core.synth.generate import DriftSpec, RegressionSpec

__all__ = [
    "Config",
    "DashboardResult",
    "DriftResult",
    "EvalResult",
    "EvalSummaryResult",
    "ReportResult",
    "SampleResult",
    "Source",
    "Traces",
    "Window",
    "dashboard",
    "drift",
    "evaluate",
    "generate",
    "load",
    "report",
    "sample",
    "summarize_evals",
]

PathArg: TypeAlias = "str | PathLike[str]"
Source: TypeAlias = (
    "str | PathLike[str] | Sequence[str | PathLike[str]] | pl.DataFrame | pl.LazyFrame | Traces"
)
OnError = Literal["fail", "skip"]
Progress = Callable[[str], None]

#: How a frame given as ``source`` is named in error messages.
FRAME_NAME = "<frame>"


# --- arguments --------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Which rows to read: ``[since, until)``, as ``--since``/``--until``; ``now`` is what
    relative times count back from (default: the latest timestamp in the data).

    Each bound is a ``datetime`` or the CLI's text: an RFC 3339 time or a duration back
    from ``now`` (``"7d"``, ``"24h"``).
    """

    since: str | datetime | None = None
    until: str | datetime | None = None
    now: str | datetime | None = None

    @staticmethod
    def _text(value: str | datetime | None) -> str | None:
        return value.isoformat() if isinstance(value, datetime) else value

    @property
    def since_text(self) -> str | None:
        return self._text(self.since)

    @property
    def until_text(self) -> str | None:
        return self._text(self.until)

    @property
    def now_text(self) -> str | None:
        return self._text(self.now)


def _config(config: Config | PathArg | None) -> Config:
    if isinstance(config, Config):
        return config
    return Config.load(None if config is None else Path(config))


def _window(window: Window | None) -> Window:
    """The window, its text bounds checked up front so an error names the parameter."""
    from llmobs_cli.core.record.windows import parse_duration, parse_time

    w = window if window is not None else Window()
    for name, text in (("since", w.since_text), ("until", w.until_text), ("now", w.now_text)):
        if text and (name == "now" or parse_duration(text) is None):
            parse_time(text, name)
    return w


def _is_frame(source: object) -> bool:
    import polars as pl

    return isinstance(source, pl.DataFrame | pl.LazyFrame | Traces)


def _path_list(source: Any) -> list[str]:
    if isinstance(source, str | PathLike):
        return [str(source)]
    return [str(p) for p in source]


@contextmanager
def _as_paths(source: Source) -> Iterator[list[str]]:
    """Trace paths for ``source``: as given, or a frame written to a private temporary
    Parquet file (so a frame goes through the same reader, checks and windowing as a
    file). Errors name the frame, not the temporary file."""
    if not _is_frame(source):
        yield _path_list(source)
        return
    import polars as pl

    frame: pl.DataFrame | pl.LazyFrame = source.frame if isinstance(source, Traces) else source  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix="llmobs-") as tmp:
        path = Path(tmp) / "frame.parquet"
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(path)
        else:
            frame.write_parquet(path)
        try:
            yield [str(path)]
        except InputError as exc:
            problems = [p.replace(str(path), FRAME_NAME) for p in exc.problems]
            raise InputError(problems, exc.total) from exc


def _read_format(format: str | None) -> str | None:
    return None if format in (None, "auto") else format


# --- load -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Traces:
    """Canonical, validated trace rows (:func:`load`); usable as any function's source."""

    frame: pl.DataFrame
    sources: list[str]
    formats: dict[str, str]
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return self.frame.height

    def to_frame(self) -> pl.DataFrame:
        return self.frame


def load(
    source: Source,
    *,
    config: Config | PathArg | None = None,
    window: Window | None = None,
    columns: Sequence[str] | None = None,
    on_error: OnError = "fail",
    format: str | None = None,
    route_from: str | None = None,
    keep_duplicates: bool = False,
) -> Traces:
    """Read, normalise and validate traces into the canonical record.

    ``format`` forces an input format (``"otlp"``, ``"langfuse"``, ...; default: detected),
    ``columns`` limits the work to some canonical fields (the frame keeps every column),
    ``on_error="skip"`` drops bad rows and counts them instead of raising
    :class:`~llmobs_cli.errors.InputError`. ``window`` keeps ``[since, until)``. The same
    call read twice (a repeated ``(trace_id, span_id)``) is counted once, with an
    :class:`~llmobs_cli.errors.InputWarning`, unless ``keep_duplicates``.
    """
    import polars as pl

    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.ingest.readers import load as core_load
    from llmobs_cli.core.record.windows import resolve_bound, resolve_now

    _config(config)  # a bad configuration fails here as in every command
    w = _window(window)
    with _as_paths(source) as paths:
        loaded = core_load(
            paths,
            columns=columns,
            on_error=on_error,
            fmt=_read_format(format),
            options=ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates),
        )
        sources = [FRAME_NAME] if _is_frame(source) else list(loaded.sources)
    frame = loaded.frame
    if w.since is not None or w.until is not None:
        latest = frame.select(pl.col("timestamp").max()).item() if frame.height else None
        now = resolve_now(w.now_text, latest)
        lo = resolve_bound(w.since_text, now, "since")
        hi = resolve_bound(w.until_text, now, "until")
        if lo is not None:
            frame = frame.filter(pl.col("timestamp") >= lo)
        if hi is not None:
            frame = frame.filter(pl.col("timestamp") < hi)
    return Traces(
        frame=frame,
        sources=sources,
        formats=dict(loaded.formats),
        skipped=loaded.skipped,
        skipped_reasons=dict(loaded.skipped_reasons),
    )


# --- report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportResult:
    """Cost and latency figures (``llmobs report``): population estimates weighted by
    ``1/sample_rate``; ``groups`` per ``by`` key, ``buckets`` per time step."""

    window: _CoreWindow
    by: list[str]
    bucket: str | None
    overall: dict[str, Any]
    groups: list[dict[str, Any]]
    buckets: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    unpriced_models: list[dict[str, Any]]
    sources: list[str]
    skipped: int
    skipped_reasons: dict[str, int]
    report: _CoreReport = field(repr=False)

    @property
    def fired(self) -> bool:
        """A ``fail_on`` rule or a configured alert fired (the CLI exits 1)."""
        return self.report.fired

    def to_dict(self) -> dict[str, Any]:
        return self.report.as_dict()

    def to_json(self) -> str:
        """The text of ``llmobs report --format json``."""
        from llmobs_cli.render.report import json_report

        return json_report(self.report)

    def to_frame(self) -> pl.DataFrame:
        """One row per overall/group/bucket entry (what ``-o report.parquet`` writes)."""
        return self.report.frame()


def _engine(cfg: Config, name: str | None) -> Any:
    from llmobs_cli.core.engines import EngineSettings
    from llmobs_cli.core.engines.run import check_engine
    from llmobs_cli.environment import variable

    ec = cfg.engine
    chosen = name or ec.name
    check_engine(chosen)

    return EngineSettings(
        chosen,
        ec.spark_master,
        ec.spark_remote or variable("SPARK_REMOTE"),
        ec.ray_address or variable("RAY_ADDRESS"),
        variable("JAVA_HOME"),
    )


def report(
    source: Source,
    *,
    config: Config | PathArg | None = None,
    window: Window | None = None,
    by: str | Sequence[str] | None = None,
    bucket: Literal["hour", "day", "week"] | None = None,
    fail_on: Sequence[str] = (),
    prices: Sequence[PathArg] = (),
    on_error: OnError = "fail",
    format: str | None = None,
    route_from: str | None = None,
    progress: Progress | None = None,
    engine: str | None = None,
) -> ReportResult:
    """``llmobs report``: cost and latency by ``by`` (default ``report.by``, route).

    ``engine`` (``local``, ``spark`` or ``ray``; default ``engine.name`` of the config)
    says where the aggregation runs; cluster addresses come from ``engine:`` in the
    configuration (docs/engines.md).

    ``fail_on`` takes the CLI's ``--fail-on`` rules (``"latency_ms.p99 > 2000"``); a rule
    that holds shows in ``alerts`` and ``fired`` (no exception). ``prices`` are price
    files (``prices.yaml`` shape) that override the table.
    """
    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.report.engine import run_report
    from llmobs_cli.core.report.options import ReportOptions

    cfg = _config(config)
    w = _window(window)
    opts = ReportOptions.from_config(
        cfg, by=by, bucket=bucket, fail_on=fail_on, prices=[Path(p) for p in prices]
    )
    with _as_paths(source) as paths:
        loaded = run_report(
            paths,
            **opts.run_kwargs(),
            since=w.since_text,
            until=w.until_text,
            now=w.now_text,
            on_error=on_error,
            fmt=_read_format(format),
            options=ReadOptions(route_from=route_from),
            progress=progress,
            engine=_engine(cfg, engine),
        )
        rep = loaded.report
        if rep.alerts:  # the worst calls of each failing group, as the CLI names them
            from llmobs_cli.core.explore.exemplars import attach_report

            attach_report(
                rep.alerts,
                paths,
                window=(rep.window.start, rep.window.end),
                fmt=_read_format(format),
                options=ReadOptions(route_from=route_from),
                prices=opts.prices,
            )
    return ReportResult(
        window=rep.window,
        by=list(rep.by),
        bucket=rep.bucket,
        overall=rep.overall,
        groups=rep.groups,
        buckets=rep.buckets,
        alerts=rep.alerts,
        unpriced_models=rep.unpriced_models,
        sources=[FRAME_NAME] if _is_frame(source) else list(loaded.sources),
        skipped=loaded.skipped,
        skipped_reasons=dict(loaded.skipped_reasons),
        report=rep,
    )


# --- eval -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSummaryResult:
    """Weighted judge scores with 95 % intervals per group × evaluator, regression tests,
    judge–human agreement (``llmobs eval`` / ``llmobs eval summarize``)."""

    by: list[str]
    groups: list[dict[str, Any]]
    baseline_groups: list[dict[str, Any]]
    overall: list[dict[str, Any]]
    buckets: list[dict[str, Any]]
    agreement: list[dict[str, Any]]
    notes: list[str]
    summary: EvalSummary = field(repr=False)

    @classmethod
    def _of(cls, s: EvalSummary) -> EvalSummaryResult:
        return cls(
            by=list(s.by),
            groups=s.groups,
            baseline_groups=s.baseline_groups,
            overall=s.overall,
            buckets=s.buckets,
            agreement=s.agreement,
            notes=s.notes,
            summary=s,
        )

    @property
    def regressions(self) -> list[dict[str, Any]]:
        """The regression tests that fired (the CLI exits 1)."""
        return [t.as_dict() for t in self.summary.regressions]

    @property
    def fired(self) -> bool:
        return bool(self.summary.regressions)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.to_json())
        return doc

    def to_json(self) -> str:
        """The text of ``llmobs eval [summarize] --format json``."""
        from llmobs_cli.render.evaluate import to_json

        return to_json(self.summary.as_dict())

    def to_frame(self) -> pl.DataFrame:
        """One row per group × evaluator: key fields, score, interval, n_eff, errors."""
        import polars as pl

        rows = [{**{k: g["key"].get(k) for k in self.by}, **_flat(g)} for g in self.groups]
        return pl.DataFrame(rows, infer_schema_length=None)


def _flat(g: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in g.items() if k != "key"}


@dataclass(frozen=True)
class EvalResult:
    """A judged run (``llmobs eval``): the summary and one row per judgment."""

    summary: EvalSummaryResult
    judgments: pl.DataFrame
    plan: list[dict[str, Any]]
    dry_run: bool
    stopped: str | None
    skipped: int
    skipped_reasons: dict[str, int]
    run: EvalRun = field(repr=False)

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return self.summary.regressions

    @property
    def fired(self) -> bool:
        return self.summary.fired

    def to_dict(self) -> dict[str, Any]:
        return self.summary.to_dict()

    def to_json(self) -> str:
        """The text of ``llmobs eval --format json`` (the plan, for a dry run)."""
        if self.dry_run:
            from llmobs_cli.render.evaluate import plan

            return plan(self.run, "json")
        return self.summary.to_json()

    def to_frame(self) -> pl.DataFrame:
        """One row per judgment (what ``-o evals.parquet`` writes)."""
        return self.judgments


def evaluate(
    source: Source,
    *,
    config: Config | PathArg | None = None,
    window: Window | None = None,
    by: str | Sequence[str] | None = None,
    budget: int | None = None,
    max_cost: float | None = None,
    dry_run: bool = False,
    current: str | None = None,
    baseline: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    judge_model: str | None = None,
    concurrency: int | None = None,
    evaluators: str | Sequence[str] | None = None,
    self_consistency: bool | None = None,
    allocation: Literal["equal", "neyman"] | None = None,
    min_drop: float | None = None,
    bucket: Literal["hour", "day", "week"] | None = None,
    cache_dir: PathArg | None = None,
    output: PathArg | None = None,
    on_error: OnError = "fail",
    format: str | None = None,
    route_from: str | None = None,
    progress: Callable[[int, int, int, float, int], None] | None = None,
) -> EvalResult:
    """``llmobs eval``: judge a stratified, weighted sample of calls and score it.

    Options default to ``llmobs.yaml``'s ``judge``/``eval`` sections. The judge is any
    OpenAI-compatible endpoint: ``base_url`` (else ``judge.base_url``, else
    ``$OPENAI_BASE_URL``); ``api_key`` (else the ``openai`` client's ``$OPENAI_API_KEY``; an
    explicit local endpoint needs none). Judgments are cached in ``cache_dir`` (default
    ``$LLMOBS_CACHE_DIR`` or the user cache directory), so a rerun resumes; ``output``
    writes them to a ``.parquet`` file. ``dry_run`` plans and estimates the cost without
    calling anyone. When the endpoint fails for good, :class:`ServiceError` is raised
    with the partial result on its ``result`` attribute.
    """
    from llmobs_cli.core import atomic
    from llmobs_cli.core.eval.options import EvalOptions
    from llmobs_cli.core.eval.run import run_eval
    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.record.fields import parse_fields
    from llmobs_cli.environment import default_cache_dir, openai_base_url
    from llmobs_cli.errors import UsageError

    cfg = _config(config)
    w = _window(window)
    fields = None
    if by is not None:
        fields = parse_fields(by if isinstance(by, str) else ",".join(by), "by") or ["route"]
    opts = EvalOptions.from_config(
        cfg,
        by=fields,
        budget=budget,
        max_cost=max_cost,
        dry_run=dry_run,
        current=current,
        baseline=baseline,
        base_url=base_url,
        judge_model=judge_model,
        concurrency=concurrency,
        evaluators=evaluators,
        self_consistency=self_consistency,
        allocation=allocation,
        min_drop=min_drop,
        bucket=bucket,
        since=w.since_text,
        until=w.until_text,
        now=w.now_text,
        fallback_base_url=openai_base_url(),
    )
    if api_key is not None:
        opts.client.api_key = api_key
    _check_judge_reachable(opts)
    if output is not None and Path(output).suffix.lower() != ".parquet":
        raise UsageError(
            f"output: expected a .parquet path for judgments (got '{output}')", param="output"
        )
    with _as_paths(source) as paths:
        run = run_eval(
            paths,
            opts,
            cache_dir=Path(cache_dir) if cache_dir is not None else default_cache_dir(),
            progress=progress,
            on_error=on_error,
            fmt=_read_format(format),
            read_options=ReadOptions(route_from=route_from, keep_origin=True),
        )
    from llmobs_cli.core.explore.exemplars import attach_eval

    attach_eval(run.summary, run.frame)  # the judged calls pulling each regression down
    if output is not None and not run.dry_run:
        atomic.write_parquet(Path(output), run.frame)
    result = EvalResult(
        summary=EvalSummaryResult._of(run.summary),
        judgments=run.frame,
        plan=run.summary.plan,
        dry_run=run.dry_run,
        stopped=run.stopped,
        skipped=run.skipped,
        skipped_reasons=dict(run.skipped_reasons),
        run=run,
    )
    if run.fatal:
        exc = ServiceError(f"judge endpoint: {run.fatal} (cached judgments are reused on rerun)")
        exc.result = result  # type: ignore[attr-defined]
        raise exc
    return result


def _check_judge_reachable(opts: Any) -> None:
    """No endpoint and no key: a :class:`UsageError` before any work, as the CLI does (a dry
    run makes no call and needs neither)."""
    from llmobs_cli.core.eval.judgments import SELF_CONSISTENCY
    from llmobs_cli.core.eval.options import resolve_criteria
    from llmobs_cli.environment import openai_api_key_set
    from llmobs_cli.errors import UsageError

    needs_judge = bool(resolve_criteria(opts.evaluators, opts.criteria)) or (
        opts.self_consistency or SELF_CONSISTENCY in opts.evaluators
    )
    if opts.dry_run or not needs_judge or opts.client.base_url or opts.client.api_key:
        return
    if openai_api_key_set():
        return
    raise UsageError(
        "base_url: the judge has no endpoint and no key: pass base_url (or set "
        "judge.base_url in llmobs.yaml) or api_key (or set OPENAI_API_KEY); nothing was judged",
        param="base_url",
    )


def summarize_evals(
    evals: PathArg | Sequence[PathArg] | pl.DataFrame,
    *,
    config: Config | PathArg | None = None,
    window: Window | None = None,
    by: str | Sequence[str] | None = None,
    bucket: Literal["hour", "day", "week"] | None = None,
    min_drop: float | None = None,
) -> EvalSummaryResult:
    """``llmobs eval summarize``: re-aggregate saved judgments (no judge call).

    ``evals`` is one or more ``evals.parquet`` files or a judgments frame
    (:attr:`EvalResult.judgments`). ``window`` keeps judgments of calls in
    ``[since, until)``.
    """
    import polars as pl

    from llmobs_cli.core.eval.judgments import read_evals
    from llmobs_cli.core.eval.summary import summarize_with_config
    from llmobs_cli.core.record.fields import parse_fields
    from llmobs_cli.core.record.windows import resolve_bound, resolve_now
    from llmobs_cli.errors import UsageError

    cfg = _config(config)
    if isinstance(evals, pl.DataFrame):
        frame = evals
    else:
        files = _path_list(evals)
        if not files:
            raise UsageError("evals: give one or more evals.parquet files", param="evals")
        frame = pl.concat([read_evals(f) for f in files], how="diagonal_relaxed")
    w = _window(window)
    if w.since is not None or w.until is not None:
        latest = frame.select(pl.col("timestamp").max()).item() if frame.height else None
        now = resolve_now(w.now_text, latest)
        lo = resolve_bound(w.since_text, now, "since")
        hi = resolve_bound(w.until_text, now, "until")
        if lo is not None:
            frame = frame.filter(pl.col("timestamp") >= lo)
        if hi is not None:
            frame = frame.filter(pl.col("timestamp") < hi)
    fields = None
    if by is not None:
        fields = parse_fields(by if isinstance(by, str) else ",".join(by), "by") or ["route"]
    from llmobs_cli.core.explore.exemplars import attach_eval

    summary = summarize_with_config(frame, cfg, by=fields, bucket=bucket, min_drop=min_drop)
    attach_eval(summary, frame)  # the judged calls pulling each regression down, as the CLI
    return EvalSummaryResult._of(summary)


# --- drift ------------------------------------------------------------------------------


def _drift_exemplars(
    res: Any, paths: Any, cfg: Any, fmt: str | None, route_from: str | None
) -> None:
    """Calls from the grown side of each drifted feature, as ``llmobs drift`` names them."""
    if not res.fired:
        return
    from llmobs_cli.core.explore.exemplars import attach_drift
    from llmobs_cli.core.ingest.readers import ReadOptions

    attach_drift(res, paths, config=cfg, fmt=fmt, options=ReadOptions(route_from=route_from))


@dataclass(frozen=True)
class DriftResult:
    """Two-window drift tests (``llmobs drift``): one row per feature (and group) with
    the test, its Benjamini–Hochberg-adjusted p-value, effect size and verdict."""

    current: WindowSummary
    baseline: WindowSummary
    features: list[dict[str, Any]]
    drifted: list[str]
    notes: list[str]
    skipped: int
    skipped_reasons: dict[str, int]
    result: _CoreDrift = field(repr=False)

    @property
    def fired(self) -> bool:
        """Some feature drifted (the CLI exits 1)."""
        return self.result.fired

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.to_json())
        return doc

    def to_json(self) -> str:
        """The text of ``llmobs drift --format json``."""
        from llmobs_cli.render.drift import json_drift

        return json_drift(self.result)

    def to_frame(self) -> pl.DataFrame:
        """One row per test (what ``-o drift.parquet`` writes)."""
        from llmobs_cli.render.drift import frame

        return frame(self.result)


def drift(
    source: Source,
    *,
    config: Config | PathArg | None = None,
    window: Window | None = None,
    current: str | None = None,
    baseline: str | PathArg | None = None,
    features: str | Sequence[str] | None = None,
    by: str | Sequence[str] | None = None,
    evals: PathArg | pl.DataFrame | None = None,
    on_error: OnError = "fail",
    format: str | None = None,
    route_from: str | None = None,
    progress: Progress | None = None,
    engine: str | None = None,
) -> DriftResult:
    """``llmobs drift``: did the traffic change between ``current`` (default
    ``last_week``) and ``baseline`` (default ``last_month``, the 30 days before; or a
    path to a baseline dump)?

    ``window.now`` sets "now"; the windows themselves are ``current``/``baseline`` (a
    ``window`` with ``since``/``until`` first keeps only those rows). ``engine``
    (``local``, ``spark`` or ``ray``; default ``engine.name`` of the config) says where
    the batches are computed, as for :func:`report`.
    """
    from llmobs_cli.core.drift import run_drift

    cfg = _config(config)
    w = _window(window)
    data: Any
    base = str(baseline) if isinstance(baseline, PathLike) else baseline
    if w.since is not None or w.until is not None:
        data = load(source, window=w, on_error=on_error, format=format, route_from=route_from)
        with _as_paths(data) as paths:
            res = run_drift(
                paths,
                current=current,
                baseline=base,
                now=w.now_text,
                config=cfg,
                features=features,
                by=by,
                evals=evals if not isinstance(evals, PathLike) else Path(evals),
                progress=progress,
            )
            _drift_exemplars(res, paths, cfg, None, route_from)
    else:
        with _as_paths(source) as paths:
            res = run_drift(
                paths,
                current=current,
                baseline=base,
                now=w.now_text,
                config=cfg,
                features=features,
                by=by,
                evals=evals if not isinstance(evals, PathLike) else Path(evals),
                on_error=on_error,
                fmt=_read_format(format),
                route_from=route_from,
                progress=progress,
                engine=_engine(cfg, engine),
            )
            _drift_exemplars(res, paths, cfg, _read_format(format), route_from)
    return DriftResult(
        current=res.current,
        baseline=res.baseline,
        features=res.features,
        drifted=res.drifted,
        notes=list(res.notes),
        skipped=res.skipped_rows,
        skipped_reasons=dict(res.skipped_reasons),
        result=res,
    )


# --- dashboard --------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardResult:
    """Everything the dashboard shows (``llmobs dashboard``); :meth:`to_html` is the page."""

    title: str
    window: _CoreWindow
    sources: list[str]
    notes: list[str]
    alerts: list[dict[str, Any]]
    regressions: int
    drift_fired: bool
    result: _CoreDashboard = field(repr=False)

    @property
    def fired(self) -> bool:
        """Drift, a quality regression or a report alert is shown (the CLI exits 1)."""
        return self.result.fired

    def to_dict(self) -> dict[str, Any]:
        """The data behind the page (what ``-o dashboard.json`` writes)."""
        return self.result.as_dict()

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str, allow_nan=False)

    def to_html(self) -> str:
        """The self-contained offline HTML page."""
        from llmobs_cli.render.html import dashboard_html

        return dashboard_html(self.to_dict())

    def write(self, path: PathArg) -> Path:
        """Write the page (``.html``) or its data (``.json``) atomically; returns the path."""
        from llmobs_cli.core import atomic
        from llmobs_cli.errors import UsageError

        p = Path(path)
        name = p.name.lower()
        if name.endswith((".html", ".htm")):
            atomic.write_text(p, self.to_html())
        elif name.endswith(".json"):
            atomic.write_json(p, self.to_dict())
        else:
            raise UsageError(
                f"path: unknown extension of '{p}' (use .html, or .json)", param="path"
            )
        return p


def dashboard(
    source: Source,
    *,
    config: Config | PathArg | None = None,
    window: Window | None = None,
    evals: PathArg | None = None,
    drift: bool = True,
    current: str | None = None,
    baseline: str | None = None,
    bucket: Literal["hour", "day", "week"] | None = None,
    title: str | None = None,
    prices: Sequence[PathArg] = (),
    on_error: OnError = "fail",
    format: str | None = None,
    route_from: str | None = None,
    progress: Progress | None = None,
) -> DashboardResult:
    """``llmobs dashboard``: reports by route, model, customer and feature over time,
    release and model changes, drift (``drift=False`` leaves it out) and, with ``evals``
    (an ``evals.parquet``), quality. Defaults from ``llmobs.yaml``'s ``dashboard``."""
    from llmobs_cli.core.dashboard.build import build
    from llmobs_cli.core.dashboard.options import dashboard_options
    from llmobs_cli.core.ingest.readers import ReadOptions

    cfg = _config(config)
    w = _window(window)
    opts = dashboard_options(
        cfg,
        title=title,
        bucket=bucket,
        drift=drift,
        current=current,
        baseline=baseline,
        evals=Path(evals) if evals is not None else None,
        since=w.since_text,
        until=w.until_text,
        now=w.now_text,
        on_error=on_error,
        fmt=_read_format(format),
        read_options=ReadOptions(route_from=route_from),
        prices=[Path(p) for p in prices],
    )
    with _as_paths(source) as paths:
        res = build(paths, opts, config=cfg, progress=progress)
    return DashboardResult(
        title=res.title,
        window=res.window,
        sources=[FRAME_NAME] if _is_frame(source) else list(res.sources),
        notes=list(res.notes),
        alerts=list(res.alerts),
        regressions=res.regressions,
        drift_fired=res.drift_fired,
        result=res,
    )


# --- sample -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SampleResult:
    """What storage sampling kept, per route; ``frame`` holds the kept rows."""

    rows_in: int
    rows_out: int
    calls_in: float
    calls_out: float
    routes: list[dict[str, object]]
    output: Path | None
    frame: pl.DataFrame
    result: _CoreSample = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        return self.result.as_dict()

    def to_json(self) -> str:
        """The text of ``llmobs sample --format json``."""
        return json.dumps(self.to_dict(), indent=2)

    def to_frame(self) -> pl.DataFrame:
        return self.frame


def sample(
    source: Source,
    *,
    config: Config | PathArg | None = None,
    window: Window | None = None,
    output: PathArg | None = None,
    rates: dict[str, float] | None = None,
    default_rate: float | None = None,
    drop_text: bool | None = None,
    on_error: OnError = "fail",
    format: str | None = None,
    route_from: str | None = None,
) -> SampleResult:
    """``llmobs sample``: keep whole traces by a stable hash of ``trace_id`` at a per-route
    rate (``rates``, high-stakes routes 1.0, ``routes.<name>.keep_rate``,
    ``default_rate``), multiplying each kept row's ``sample_rate`` so weighted figures stay
    true. ``output`` (``.parquet`` or ``.jsonl[.gz|.zst]``) is written atomically; without
    it the kept rows are only returned. ``window`` (``since``/``until``) first keeps only
    those rows.
    """
    import polars as pl

    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.ingest.storage_sampling import build_plan
    from llmobs_cli.core.ingest.storage_sampling import sample as core_sample

    cfg = _config(config)
    w = _window(window)
    plan = build_plan(cfg, dict(rates or {}), default_rate, drop_text)
    src: Source = source
    if w.since is not None or w.until is not None:
        src = load(source, window=w, on_error=on_error, format=format, route_from=route_from)
    with tempfile.TemporaryDirectory(prefix="llmobs-") as tmp:
        out = Path(output) if output is not None else Path(tmp) / "sample.parquet"
        with _as_paths(src) as paths:
            res = core_sample(
                paths,
                out,
                plan,
                on_error=on_error,
                fmt=_read_format(format) if src is source else None,
                options=ReadOptions(route_from=route_from),
            )
        if output is None:
            kept = pl.read_parquet(out)
        else:
            from llmobs_cli.core.ingest.readers import load as core_load

            kept = core_load([out]).frame
    return SampleResult(
        rows_in=res.rows_in,
        rows_out=res.rows_out,
        calls_in=res.calls_in,
        calls_out=res.calls_out,
        routes=res.routes,
        output=Path(output) if output is not None else None,
        frame=kept,
        result=res,
    )


# --- generate ---------------------------------------------------------------------------


def generate(
    rows: int = 10_000,
    *,
    seed: int = 0,
    days: int = 42,
    start: datetime | date | None = None,
    drift: DriftSpec | None = None,
    regression: RegressionSpec | None = None,
    route_rates: dict[str, float] | None = None,
    drift_kinds: Sequence[str] | None = None,
    output: PathArg | None = None,
) -> pl.DataFrame:
    """``llmobs generate``: ``rows`` realistic synthetic trace rows over ``days`` days
    (same seed, same rows), optionally with drift (:class:`DriftSpec`) and a release-tied
    regression (:class:`RegressionSpec`) injected; written to ``output`` when given."""
    from llmobs_cli.core.synth.generate import generate as core_generate

    args: dict[str, Any] = {
        "start": start,
        "days": days,
        "drift": drift,
        "regression": regression,
        "route_rates": route_rates,
        "drift_kinds": drift_kinds,
    }
    frame = core_generate(rows, seed, **args)
    if output is not None:
        # The frame is returned anyway, so it is written whole (the CLI streams instead).
        from llmobs_cli.core.ingest.convert import output_format, write_frame
        from llmobs_cli.core.outputs import check_file_output

        target = Path(output)
        check_file_output(target)
        write_frame(frame, target, output_format(target))
    return frame
