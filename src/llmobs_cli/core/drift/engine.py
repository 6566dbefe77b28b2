"""Two-window drift: windows, features, tests, multiple-testing control, verdicts.

:func:`run_drift` is the one entry point (the CLI and the dashboard call it). It

1. loads the traces once, reading only the columns the requested features need;
2. resolves the windows (``--current`` default ``last_week``; ``--baseline`` default
   ``last_month`` = the 30 days before the current window; ``START..END``; or a path to
   another dump, whose rows are all baseline);
3. computes every feature over both windows in one Polars pass (text features that need
   a fit — language, topics, vocabulary — on a seeded subsample of at most
   ``language_sample`` rows per window: a simple random sample of rows keeps every row's
   weight, so weighted shares stay unbiased and their variance is computed on the rows
   actually used);
4. runs each feature's registered test overall and per ``--by`` group;
5. adjusts all p-values together (Benjamini–Hochberg) and flags drift only when
   ``p_adjusted < alpha`` **and** the effect size reaches its floor **and** both windows
   have ``n_eff ≥ min_n_eff`` (otherwise the row says "not enough data").

Default effect floors (:data:`DEFAULT_EFFECT`; justified in docs/drift.md, overridable per
feature in ``drift.thresholds``): KS D ≥ 0.10 for numbers, ≥ 2 percentage points for
rates, Jensen–Shannon distance ≥ 0.10 for categories and topics, ≥ 0.05 for the
response vocabulary, |Δslope| ≥ 0.20 for score calibration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl

from llmobs_cli.core.drift.context import _Context
from llmobs_cli.core.drift.features import (
    DEFAULT_FEATURES,
    STANDARD,
    columns_for,
    custom_spec,
)
from llmobs_cli.core.drift.result import (
    BASE,
    BASE_COLUMNS,
    COLUMNS,
    CUR,
    DEFAULT_EFFECT,
    WIN,
    DriftResult,
    WindowSummary,
)
from llmobs_cli.core.drift.rows import _decide, _histogram
from llmobs_cli.core.drift.slices import _gkey, _slice_dims, where_ranking
from llmobs_cli.core.drift.stats import single_thread_blas
from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.ingest.readers.formats import ReadOptions
from llmobs_cli.core.record import names as names_check
from llmobs_cli.core.record import windows as win
from llmobs_cli.core.record.config import Config, DriftConfig
from llmobs_cli.core.record.fields import base_column, parse_fields
from llmobs_cli.core.record.weights import W, n_eff
from llmobs_cli.errors import UsageError

# Re-exported: the drift package, the API and tests import these from here.
__all__ = [
    "COLUMNS",
    "DEFAULT_EFFECT",
    "DriftResult",
    "WindowSummary",
    "_histogram",
    "run_drift",
    "where_ranking",
]


def _is_path(text: str | None) -> bool:
    if not text:
        return False
    if text.strip() in win.NAMED or ".." in text:
        return False
    if win.is_duration(text):
        return False
    return (
        Path(text).exists()
        or any(ch in text for ch in "*?[")
        or "/" in text
        or (Path(text).suffix.lower() in (".parquet", ".jsonl", ".ndjson", ".gz", ".zst", ".json"))
    )


def _summary(frame: pl.DataFrame, window: win.Window, source: str | None) -> WindowSummary:
    w = frame[W].to_numpy() if frame.height else np.zeros(0)
    return WindowSummary(
        start=window.start,
        end=window.end,
        sampled=frame.height,
        calls=float(w.sum()),
        n_eff=n_eff(w) if w.size else 0.0,
        name=window.name,
        source=source,
    )


def _as_utc(value: str | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


# --------------------------------------------------------------------------------------
# The entry point
# --------------------------------------------------------------------------------------


def run_drift(
    data: pl.DataFrame | Sequence[str | Path],
    *,
    current: str | None = "last_week",
    baseline: str | None = "last_month",
    now: str | datetime | None = None,
    config: DriftConfig | Config | None = None,
    features: Sequence[str] | str | None = None,
    by: Sequence[str] | str | None = None,
    evals: str | Path | pl.DataFrame | None = None,
    refusal_patterns: list[str] | None = None,
    price_table: Any = None,
    on_error: str = "fail",
    fmt: str | None = None,
    route_from: str | None = None,
    keep_duplicates: bool = False,
    progress: Callable[[str], None] | None = None,
    sources: Sequence[str] = (),
    slices: Sequence[str] | str | None = "auto",
) -> DriftResult:
    """Compare the ``current`` window with the ``baseline`` (a window or a dump path).

    ``data`` is a canonical frame (the dashboard's single load) or trace paths. Raises
    :class:`UsageError`/:class:`InputError` for bad options or input, and
    :class:`~llmobs_cli.core.record.windows.EmptyWindowError` when a window holds no call.
    ``sources`` names the files a given frame came from (for messages).
    """
    full_cfg = config if isinstance(config, Config) else None
    cfg = config.drift if isinstance(config, Config) else (config or DriftConfig())
    if refusal_patterns is None and full_cfg is not None:
        from llmobs_cli.core.report.refusals import patterns_from_config

        refusal_patterns = patterns_from_config(full_cfg.refusals, full_cfg.source or "llmobs.yaml")
    say = progress or (lambda _m: None)
    notes: list[str] = []

    names = _feature_names(features, cfg)
    by_fields = parse_fields(by if isinstance(by, str) else ",".join(by or []), "by")
    current = current or "last_week"
    baseline = baseline or "last_month"
    now_text = _as_utc(now)

    # Which columns: standard features' own, custom fields' base columns.
    std = [STANDARD[n] for n in names if n in STANDARD]
    custom_names = [n for n in names if n not in STANDARD]
    cols = [*BASE_COLUMNS, *columns_for(std), *(base_column(n) for n in custom_names)]
    cols += [base_column(f) for f in by_fields]
    slice_dims = _slice_dims(slices, cfg)
    cols += [base_column(f) for f in slice_dims]
    if evals is not None:
        cols += ["trace_id", "retrieved"]
    cols = list(dict.fromkeys(cols))

    baseline_is_path = _is_path(baseline)
    opts = ReadOptions(route_from=route_from, keep_duplicates=keep_duplicates)
    skipped, reasons = 0, cast(dict[str, int], {})
    sources = list(sources)

    def _load(
        paths: Sequence[str | Path], since: datetime | None, until: datetime | None
    ) -> pl.DataFrame:
        nonlocal skipped
        res = load(
            paths,
            columns=cols,
            on_error=on_error,  # type: ignore[arg-type]
            fmt=fmt,
            since=since,
            until=until,
            options=opts,
        )
        skipped += res.skipped
        sources.extend(s for s in res.sources if s not in sources)
        for k, v in res.skipped_reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        return res.frame

    # Push the time range down to the reader when "now" is known without the data.
    since = until = None
    if isinstance(data, pl.DataFrame):
        frame = data
    else:
        if now_text:
            n0 = win.resolve_now(now_text, None)
            cw = win.resolve_window(current, n0, option="current")
            until = cw.end
            if not baseline_is_path and cw.start is not None:
                bw = win.resolve_window(baseline, n0, end=cw.start, option="baseline")
                since = bw.start
            else:
                since = cw.start
        say(f"reading {len(list(data))} path(s)")
        frame = _load(list(data), since, until)
    latest = frame["timestamp"].max() if frame.height else None
    now_dt = win.resolve_now(now_text, latest)  # type: ignore[arg-type]
    cur_w = win.resolve_window(current, now_dt, option="current")
    w_expr = (1.0 / pl.col("sample_rate").fill_null(1.0)).alias(W)

    def _in(fr: pl.DataFrame, w: win.Window) -> pl.DataFrame:
        cond = pl.lit(True)
        if w.start is not None:
            cond = cond & (pl.col("timestamp") >= w.start)
        if w.end is not None:
            cond = cond & (pl.col("timestamp") < w.end)
        return fr.filter(cond)

    cur_frame = _in(frame, cur_w)
    if baseline_is_path:
        base_src = str(baseline)
        base_all = _load([baseline], None, None)
        lo = base_all["timestamp"].min() if base_all.height else None
        hi = base_all["timestamp"].max() if base_all.height else None
        base_w = win.Window(lo, win.after(hi) if hi else None, "file")  # type: ignore[arg-type]
        base_frame = base_all
    else:
        base_src = None
        end = cur_w.start
        if end is None:
            raise UsageError(
                "baseline: a named baseline needs a current window with a start "
                "(give current as last_week, START..END or a duration)",
                param="baseline",
            )
        base_w = win.resolve_window(baseline, now_dt, end=end, option="baseline")
        base_frame = _in(frame, base_w)

    base_frame = base_frame.with_columns(w_expr, pl.lit(BASE, pl.Int8).alias(WIN))
    cur_frame = cur_frame.with_columns(w_expr, pl.lit(CUR, pl.Int8).alias(WIN))
    result = DriftResult(
        current=_summary(cur_frame, cur_w, None),
        baseline=_summary(base_frame, base_w, base_src),
        features=[],
        notes=notes,
        alpha=cfg.alpha,
        min_n_eff=cfg.min_n_eff,
        skipped_rows=skipped,
        skipped_reasons=reasons,
    )

    # A window with no call is exit 2 (never "no drift"), saying what the data covers.
    def _span() -> win.Span:
        if since is None and until is None:
            return win.span_of(frame)
        from llmobs_cli.core.ingest.span import data_span

        return data_span(list(data), fmt=fmt, options=opts)  # type: ignore[arg-type]

    if baseline_is_path and base_frame.height == 0:
        raise win.EmptyWindowError(f"--baseline {baseline}: holds no calls at all")
    win.require_rows(cur_frame.height, f"--current {current}", cur_w, _span, sources)
    win.require_rows(base_frame.height, f"--baseline {baseline}", base_w, _span, sources)
    # A precomputed embedding (a list column a caller's frame may carry) feeds topics.
    extra = ["embedding"] if "embedding" in base_frame.columns else []
    keep = [c for c in dict.fromkeys([*cols, *extra, W, WIN]) if c in base_frame.columns]
    both = pl.concat([base_frame.select(keep), cur_frame.select(keep)], how="vertical_relaxed")
    names_check.require_fields(both, custom_names, sources, "--features")
    names_check.require_fields(both, by_fields, sources, "by")
    if slices not in (None, "auto"):  # typed by the user (the default adapts to the data)
        names_check.require_fields(both, slice_dims, sources, "slices")
    say(f"baseline {base_frame.height} rows, current {cur_frame.height} rows")

    ctx = _Context(both, cfg, notes, by_fields, refusal_patterns, say, slice_dims)
    with single_thread_blas():
        rows: list[dict[str, Any]] = []
        for name in names:
            spec = STANDARD.get(name) or custom_spec(name, _dtype(both, base_column(name)))
            rows.extend(ctx.feature_rows(spec, price_table))
        if evals is not None:
            rows.extend(ctx.calibration_rows(evals))
    for r in rows:
        r["slice"] = r["group"] is not None and _gkey(r["group"]) in ctx.slice_keys
    _decide(rows, cfg)
    result.features = rows
    result.distributions = ctx.distributions
    result.slices = [d for d in slice_dims if any(len(k) == 1 and d in k for k in ctx.slice_dicts)]
    result.where = where_ranking(rows)
    return result


def _dtype(frame: pl.DataFrame, col: str) -> pl.DataType | None:
    return frame.schema.get(col)


def _feature_names(features: Sequence[str] | str | None, cfg: DriftConfig) -> list[str]:
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
    names = list(features) if features else list(cfg.features or DEFAULT_FEATURES)
    for n in names:
        if n not in STANDARD:
            try:
                parse_fields(n, "--features")
            except UsageError as exc:
                raise names_check.unknown(
                    "--features",
                    "feature",
                    n,
                    list(STANDARD),
                    extra="or a record field or metadata.KEY",
                    limit=len(STANDARD),
                ) from exc
    return list(dict.fromkeys(names))
