"""Two-window drift: windows, features, tests, multiple-testing control, verdicts.

:func:`run_drift` is the one entry point (the CLI and the dashboard call it). It

1. loads the traces once, reading only the columns the requested features need;
2. resolves the windows (``--current`` default ``last_week``; ``--baseline`` default
   ``last_month`` = the 30 days before the current window; ``START..END``; or a path to
   another dump, whose rows are all baseline);
3. computes every feature over both windows as partials of one streamed pass; the text
   features that need a fit (topics, vocabulary) are fitted on a seeded sample of whole
   sessions (at most ``language_sample`` rows per window, both windows pooled, weights
   kept) and, when that sample is not every row, applied to every row by a second pass
   over the text columns only (:mod:`.textpass`; language up to ``language_rows`` rows
   per window, a hash sample of sessions beyond);
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

import warnings
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import polars as pl

from llmobs_cli.core.drift import textpass
from llmobs_cli.core.drift.context import Merged, _Context, choose_groups
from llmobs_cli.core.drift.features import (
    DEFAULT_FEATURES,
    FITTED,
    STANDARD,
    columns_for,
)
from llmobs_cli.core.drift.partials import (
    SEQ,
    DriftPlan,
    batch_parts,
    feature_of,
    kcol,
    spec_of,
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
from llmobs_cli.core.drift.sample import ClusterSample, compact
from llmobs_cli.core.drift.slices import _gkey, _slice_dims, where_ranking
from llmobs_cli.core.drift.stats import single_thread_blas
from llmobs_cli.core.ingest.readers.formats import ReadOptions
from llmobs_cli.core.ingest.readers.stream import BATCH_ROWS, Stream, default_memory
from llmobs_cli.core.partials import Merger
from llmobs_cli.core.record import names as names_check
from llmobs_cli.core.record import windows as win
from llmobs_cli.core.record.config import Config, DriftConfig
from llmobs_cli.core.record.fields import base_column, parse_fields
from llmobs_cli.core.record.schema import SCHEMA
from llmobs_cli.core.record.weights import W
from llmobs_cli.core.report.engine import _latest
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
    memory: int | None = None,
    sample_rows: int | None = None,
    engine: Any = None,
    state: str | Path | None = None,
) -> DriftResult:
    """Compare the ``current`` window with the ``baseline`` (a window or a dump path).

    ``data`` is a canonical frame (the dashboard's single load) or trace paths, read batch
    by batch (memory bounded by ``memory`` bytes and ``sample_rows``, never by the number
    of rows). Raises :class:`UsageError`/:class:`InputError` for bad options or input, and
    :class:`~llmobs_cli.core.record.windows.EmptyWindowError` when a window holds no call.
    ``sources`` names the files a given frame came from (for messages). ``engine`` (an
    :class:`~llmobs_cli.core.engines.EngineSettings`) runs the batches on Spark or Ray
    (:mod:`.distributed`): the same partials and samples, so the same figures.
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
    sources = list(sources)
    absent = {c for c in cols if c not in data.columns} if isinstance(data, pl.DataFrame) else set()
    frame = _complete(data, cols) if isinstance(data, pl.DataFrame) else None
    paths: list[str | Path] = [] if frame is not None else list(cast(Sequence[str | Path], data))
    budget = default_memory() if memory is None else memory

    head: list[pl.DataFrame] = []
    skipped, reasons = 0, cast(dict[str, int], {})
    fitted = [n for n in names if n in FITTED]
    text = tuple(dict.fromkeys("response" if n.startswith("response_") else "user" for n in fitted))
    schema = frame.schema if frame is not None else SCHEMA
    feature_defs = tuple(
        f for n in names if (f := feature_of(n, schema.get(base_column(n)))) is not None
    )
    st: Any = None
    if state is not None:
        from llmobs_cli.core.drift import state as state_mod

        distributed = engine is not None and getattr(engine, "name", "local") != "local"
        if frame is not None or baseline_is_path or distributed:
            raise UsageError(
                "state: --state keeps trace files' partials on the local engine, with a "
                "baseline window (not a baseline file)",
                param="state",
            )
        day_plan = DriftPlan(
            features=feature_defs,
            by=tuple(by_fields),
            slices=tuple(slice_dims),
            current=(None, None),
            baseline=None,
            patterns=tuple(refusal_patterns) if refusal_patterns is not None else None,
            price_table=price_table,
            text=text,
            embedding="topic" in fitted,
            sample_rows=1 << 62,
            text_rows=1 << 62,
            by_day=True,
        )
        st = state_mod.DriftState.open(Path(state), state_mod.plan_key(day_plan))
        if st.rebuilt:
            notes.append(f"--state {state}: rebuilt from every row ({st.rebuilt})")
        from llmobs_cli.core.ingest.readers import expand_paths

        todo, same = st.inputs(expand_paths(paths))
        say(f"--state: {len(todo)} file(s) to read, {same} unchanged")
        cap, text_cap = sample_rows or cfg.sample_rows, cfg.language_sample
        pm = Merger()
        for path, lo in todo:
            src = Stream(
                [path],
                columns=cols,
                on_error=on_error,  # type: ignore[arg-type]
                fmt=fmt,
                since=lo,
                options=opts,
                memory=budget,
            )
            for i, batch in enumerate(src):
                if not head:
                    head.append(batch.head(200))
                parts = batch_parts(
                    batch,
                    day_plan,
                    seq=i,
                    fixed_window=CUR,
                    limits={-1: st.tau},
                    text_limits={CUR: st.tau_text},
                )
                pm.add(parts.partials)
                st.add(
                    [],
                    None,
                    [compact(parts.sample)],
                    [] if parts.text is None else [compact(parts.text)],
                )
                st.thin(cap, text_cap)
            skipped += src.skipped
            for k, v in src.skipped_reasons.items():
                reasons[k] = reasons.get(k, 0) + v
            sources.extend(s for s in src.sources if s not in sources)
        st.add([p for p, _ in todo], pm.result(), [], [])
        if st.latest is None:
            raise UsageError(
                f"--state {state}: nothing read yet (no call in {', '.join(map(str, paths))})"
            )
        ref = win.resolve_now(now_text, None) if now_text else st.latest
        # The last instant of that UTC day: windows (which end just after "now") end at
        # the following midnight.
        now_dt = state_mod.next_midnight(ref) - timedelta(microseconds=1)
    # "now": given, else the data's latest timestamp (one pass over the timestamps).
    elif now_text:
        now_dt = win.resolve_now(now_text, None)
    elif frame is not None:
        now_dt = win.resolve_now(None, frame["timestamp"].max() if frame.height else None)  # type: ignore[arg-type]
    else:
        say(f"finding the latest timestamp in {len(paths)} path(s)")
        now_dt = win.resolve_now(None, _latest(paths, on_error, fmt, opts, budget))
    cur_w = win.resolve_window(current, now_dt, option="current")
    if baseline_is_path:
        base_bounds = None
        since = cur_w.start
    else:
        if cur_w.start is None:
            raise UsageError(
                "baseline: a named baseline needs a current window with a start "
                "(give current as last_week, START..END or a duration)",
                param="baseline",
            )
        base_w = win.resolve_window(baseline, now_dt, end=cur_w.start, option="baseline")
        base_bounds = (base_w.start, base_w.end)
        since = base_w.start
    until = cur_w.end
    if st is not None:
        if not state_mod.whole_days(cur_w.start, cur_w.end, base_w.start, base_w.end):
            raise UsageError(
                "state: with --state the windows are whole UTC days (give durations in days, "
                "named windows or dates)",
                param="state",
            )
        st.retain(base_w.start.date())  # type: ignore[union-attr]
        st.save()

    plan = DriftPlan(
        features=feature_defs,
        by=tuple(by_fields),
        slices=tuple(slice_dims),
        current=(cur_w.start, cur_w.end),
        baseline=base_bounds,
        patterns=tuple(refusal_patterns) if refusal_patterns is not None else None,
        price_table=price_table,
        text=text,
        embedding="topic" in fitted,
        sample_rows=sample_rows or cfg.sample_rows,
        text_rows=cfg.language_sample,
    )

    merger = Merger()
    sample = ClusterSample(plan.sample_rows)
    texts = ClusterSample(cfg.language_sample, per_window=True)
    calib: list[pl.DataFrame] = []
    evals_ids = _eval_ids(evals) if evals is not None else None
    seq = 0

    def consume(batches: Iterable[pl.DataFrame], fixed: int | None) -> None:
        nonlocal seq
        for batch in batches:
            if not head:
                head.append(batch.head(200))
            parts = batch_parts(
                batch,
                plan,
                seq=seq,
                fixed_window=fixed,
                limits=sample.threshold,
                text_limits=texts.threshold,
            )
            seq += 1
            merger.add(parts.partials)
            sample.add(parts.sample, parts.sample_cut)
            if parts.text is not None:
                texts.add(parts.text, parts.text_cut)
            if evals_ids is not None:
                calib.append(compact(_top1(batch, plan, fixed, seq - 1, evals_ids)))

    def tell(p: Any) -> None:
        share = f" ({100 * p.bytes / p.total_bytes:.0f} %)" if p.total_bytes else ""
        say(f"{p.rows:,} rows, {p.bytes / 1e6:,.0f} of {p.total_bytes / 1e6:,.0f} MB read{share}")

    def stream(
        src: Sequence[str | Path],
        lo: datetime | None,
        hi: datetime | None,
        columns: list[str] | None = None,
    ) -> Stream:
        return Stream(
            src,
            columns=cols if columns is None else columns,
            on_error=on_error,  # type: ignore[arg-type]
            fmt=fmt,
            since=lo,
            until=hi,
            options=opts,
            memory=budget,
            on_progress=tell,
        )

    distributed = engine is not None and getattr(engine, "name", "local") != "local"
    if st is not None:
        merged_st, sample, texts = st.windows(
            plan,
            (cur_w.start, cur_w.end),
            (base_w.start, base_w.end),
        )
        if merged_st is not None:
            merger.add(merged_st)
        if evals_ids is not None:
            calib += _calibration_pass(
                [(list(paths), None, since, until)], plan, opts, budget, evals_ids
            )
    elif distributed and frame is not None:
        raise UsageError("engine: a distributed engine reads trace files, not a frame")
    elif distributed:
        from llmobs_cli.core.drift.distributed import on_engine

        merged_on, sample, texts, info = on_engine(
            engine,
            paths,
            str(baseline) if baseline_is_path else None,
            cols,
            plan,
            since,
            until,
            on_error=on_error,
            keep_duplicates=keep_duplicates,
            say=say,
        )
        if merged_on is not None:
            merger.add(merged_on)
        skipped += info["skipped"]
        reasons.update(info["reasons"])
        sources.extend(s for s in info["sources"] if s not in sources)
        if evals_ids is not None:  # the judged traces' scores: a light local pass
            jobs: list[tuple[list[Any], int | None, datetime | None, datetime | None]] = [
                (list(paths), None, since, until)
            ]
            if baseline_is_path:
                jobs.append(([baseline], BASE, None, None))
            calib += _calibration_pass(jobs, plan, opts, budget, evals_ids)
    elif frame is not None:
        consume(frame.iter_slices(BATCH_ROWS), None)
    else:
        main = stream(paths, since, until)
        consume(main, None)
        skipped += main.skipped
        reasons.update(main.skipped_reasons)
        sources.extend(s for s in main.sources if s not in sources)
    base_src = str(baseline) if baseline_is_path else None
    if baseline_is_path and not distributed:
        other = stream([baseline], None, None)
        consume(other, BASE)
        skipped += other.skipped
        for k, v in other.skipped_reasons.items():
            reasons[k] = reasons.get(k, 0) + v
        sources.extend(s for s in other.sources if s not in sources)
    say("finalizing")
    merged_frame = merger.result()
    merged = Merged(merged_frame if merged_frame is not None else _empty(plan), plan)
    summaries = _window_sums(merged)
    if baseline_is_path:
        lo, hi = summaries[BASE]["first"], summaries[BASE]["last"]
        base_w = win.Window(lo, win.after(hi) if hi else None, "file")
    result = DriftResult(
        current=_summary(summaries[CUR], cur_w, None),
        baseline=_summary(summaries[BASE], base_w, base_src),
        features=[],
        notes=notes,
        alpha=cfg.alpha,
        min_n_eff=cfg.min_n_eff,
        skipped_rows=skipped,
        skipped_reasons=reasons,
    )

    # A window with no call is exit 2 (never "no drift"), saying what the data covers.
    def _span() -> win.Span:
        if frame is not None:
            return win.span_of(frame)
        from llmobs_cli.core.ingest.span import data_span

        return data_span(paths, fmt=fmt, options=opts)

    nb, nc = summaries[BASE]["n"], summaries[CUR]["n"]
    if baseline_is_path and nb == 0:
        raise win.EmptyWindowError(f"--baseline {baseline}: holds no calls at all")
    win.require_rows(nc, f"--current {current}", cur_w, _span, sources)
    win.require_rows(nb, f"--baseline {baseline}", base_w, _span, sources)
    presence = _presence(merged, plan)
    rows_seen = pl.concat(head, how="diagonal_relaxed") if head else pl.DataFrame()
    present = _present_frame(merged, plan, presence, custom_names)
    names_check.require_fields(
        present, custom_names, sources, "--features", sample=lambda: rows_seen
    )
    names_check.require_fields(present, by_fields, sources, "by", sample=lambda: rows_seen)
    if slices not in (None, "auto"):  # typed by the user (the default adapts to the data)
        names_check.require_fields(present, slice_dims, sources, "slices", sample=lambda: rows_seen)
    say(f"baseline {nb} rows, current {nc} rows")

    by_groups, slice_groups = choose_groups(merged, by_fields, slice_dims)
    groups = by_groups + slice_groups
    slice_keys = {_gkey(g) for g in slice_groups}
    rows_frame = sample.result()
    exact = sample.complete
    if not exact:
        notes.append(
            f"tests from merged partials of all {nb + nc:,} rows; clustering effects "
            f"from a sample of whole sessions ({rows_frame.height:,} rows)"  # type: ignore[union-attr]
        )
    ctx = _Context(
        rows_frame if rows_frame is not None else pl.DataFrame(),
        cfg,
        notes,
        groups,
        say,
        merged=None if exact else merged,
        slice_keys=slice_keys,
        presence=presence,
        cost_note=_cost_note(merged),
        absent=absent,
    )
    tctx = None
    if fitted:
        tframe = texts.result()
        tctx = _Context(tframe if tframe is not None else pl.DataFrame(), cfg, notes, groups, say)
        if not texts.complete and tctx.both.height:
            if st is not None:
                notes.append(
                    f"{', '.join(fitted)}: fitted and tested on the text sample "
                    f"({tctx.both.height:,} rows of whole sessions; with --state the text "
                    "features are not applied to every row: the fits change with the windows)"
                )
            elif distributed:
                from llmobs_cli.core.drift.distributed import text_on_engine

                limits = _text_limits(fitted, {BASE: nb, CUR: nc}, cfg)
                models = tctx.text_models(fitted, limits)
                if models.features:
                    tmerged = text_on_engine(
                        engine,
                        paths,
                        str(baseline) if baseline_is_path else None,
                        textpass.pass_columns(cols, plan),
                        plan,
                        models,
                        since,
                        until,
                        on_error=on_error,
                        keep_duplicates=keep_duplicates,
                        say=say,
                    )
                    tctx.merged = Merged(tmerged if tmerged is not None else _empty(plan), plan)
                    notes.extend(
                        textpass.describe(tctx.merged, models, {BASE: nb, CUR: nc}, tctx.both)
                    )
            else:
                limits = _text_limits(fitted, {BASE: nb, CUR: nc}, cfg)
                models = tctx.text_models(fitted, limits)
                if models.features:
                    say("applying the text features to every row")
                    tmerger = Merger()
                    memos: dict[str, textpass.Memo] = {}
                    tseq = 0

                    def apply(batches: Iterable[pl.DataFrame], fixed: int | None) -> None:
                        nonlocal tseq
                        for batch in batches:
                            tmerger.add(
                                textpass.text_parts(
                                    batch,
                                    plan,
                                    models,
                                    seq=tseq,
                                    fixed_window=fixed,
                                    memos=memos,
                                )
                            )
                            tseq += 1

                    tcols = textpass.pass_columns(cols, plan)
                    # The first pass already reported skipped rows and duplicates.
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        if frame is not None:
                            apply(frame.iter_slices(BATCH_ROWS), None)
                        else:
                            apply(stream(paths, since, until, tcols), None)
                        if baseline_is_path:
                            apply(stream([baseline], None, None, tcols), BASE)
                    tmerged = tmerger.result()
                    tctx.merged = Merged(tmerged if tmerged is not None else _empty(plan), plan)
                    notes.extend(
                        textpass.describe(tctx.merged, models, {BASE: nb, CUR: nc}, tctx.both)
                    )
    with single_thread_blas():
        rows: list[dict[str, Any]] = []
        for name in names:
            if name in FITTED:
                assert tctx is not None
                rows.extend(tctx.feature_rows(STANDARD[name]))
            else:
                f = next(x for x in plan.features if x.name == name)
                rows.extend(ctx.feature_rows(spec_of(name, f.kind)))
        if evals is not None:
            top1 = pl.concat(calib, how="vertical_relaxed") if calib else None
            rows.extend(ctx.calibration_rows(evals, top1))
    for r in rows:
        r["slice"] = r["group"] is not None and _gkey(r["group"]) in slice_keys
    _decide(rows, cfg)
    result.features = rows
    result.distributions = {**ctx.distributions, **(tctx.distributions if tctx else {})}
    result.slices = [d for d in slice_dims if any(d in g for g in slice_groups)]
    result.where = where_ranking(rows)
    return result


def _text_limits(
    fitted: list[str], rows: dict[int, int], cfg: DriftConfig
) -> dict[str, dict[int, int]]:
    """Per text feature, the hash thresholds of the windows past its row cap."""
    lang = textpass.hash_limits(rows, cfg.language_rows)
    other = textpass.hash_limits(rows, cfg.text_rows)
    return {n: lang if n == "language" else other for n in fitted}


def _complete(frame: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    """A caller's frame with every column the run reads (absent ones null)."""
    missing = [c for c in cols if c not in frame.columns and c in SCHEMA]
    if not missing:
        return frame
    return frame.with_columns(pl.lit(None, SCHEMA[c]).alias(c) for c in missing)


def _empty(plan: DriftPlan) -> pl.DataFrame:
    from llmobs_cli.core.drift.partials import conform

    return conform(pl.DataFrame({"k:part": ["rows"]}).head(0), plan)


def _epoch(us: float | None) -> datetime | None:
    if us is None or us != us:
        return None
    return datetime.fromtimestamp(0, tz=UTC) + timedelta(microseconds=int(us))


def _window_sums(merged: Merged) -> dict[int, dict[str, Any]]:
    rows = merged.part("rows")
    out = {}
    for side in (BASE, CUR):
        r = rows.filter((pl.col("k:level") == 0) & (pl.col("k:win") == side))
        w, w2 = float(r["sum:w"].sum()), float(r["sum:w2"].sum())
        out[side] = {
            "n": int(r["sum:n"].sum()),
            "w": w,
            "n_eff": w * w / w2 if w2 > 0 else 0.0,
            "first": _epoch(r["min:x"].min()) if r.height else None,  # type: ignore[arg-type]
            "last": _epoch(r["max:x"].max()) if r.height else None,  # type: ignore[arg-type]
        }
    return out


def _summary(sums: dict[str, Any], window: win.Window, source: str | None) -> WindowSummary:
    return WindowSummary(
        start=window.start,
        end=window.end,
        sampled=sums["n"],
        calls=sums["w"],
        n_eff=sums["n_eff"],
        name=window.name,
        source=source,
    )


def _presence(merged: Merged, plan: DriftPlan) -> dict[str, tuple[int, int]]:
    """Per feature: rows with a value, and (``auto`` features) with a numeric value."""
    out = {}
    for f in plan.features:
        df = merged.part("pres", f.name)
        nonnull = int(df["sum:n"].sum()) if df.height else 0
        numeric = int(df["sum:w"].sum()) if df.height and f.kind == "auto" else nonnull
        out[f.name] = (nonnull, numeric)
    return out


def _present_frame(
    merged: Merged, plan: DriftPlan, presence: dict[str, tuple[int, int]], custom: list[str]
) -> pl.DataFrame:
    """One row naming, per asked field, a value when some row of the windows has one."""
    values: dict[str, Any] = {n: [1 if presence.get(n, (0, 0))[0] else None] for n in custom}
    rows = merged.part("rows")
    for f in plan.group_fields:
        col = kcol(f)
        has = rows.height > 0 and rows.filter(pl.col(col).is_not_null()).height > 0
        values[f] = [1 if has else None]
    values["_n"] = [1]
    return pl.DataFrame(values, schema={k: pl.Int64 for k in values})


def _cost_note(merged: Merged) -> str | None:
    df = merged.part("pres", "cost_usd")
    if not df.height:
        return None
    missing, unpriced = int(df["sum:w"].sum()), int(df["sum:w2"].sum())
    tokens = bool(df["max:x"].max())
    if missing == 0:
        return "cost_usd: the records' own cost_usd"
    if not tokens:
        return "cost_usd: the records' own cost_usd only (no token counts)"
    return (
        f"cost_usd: the records' own cost_usd where present, else priced from the price "
        f"table ({missing} row(s) priced; {unpriced} row(s) unpriced and left out)"
    )


def _eval_ids(evals: str | Path | pl.DataFrame) -> pl.Series:
    from llmobs_cli.core.drift.context import _read_evals

    return _read_evals(evals)["trace_id"].drop_nulls().unique()


def _calibration_pass(
    jobs: list[tuple[list[Any], int | None, datetime | None, datetime | None]],
    plan: DriftPlan,
    opts: ReadOptions,
    budget: int,
    ids: pl.Series,
) -> list[pl.DataFrame]:
    """The judged traces' top-1 retrieval scores from a light local pass (four columns)."""
    out = []
    for src, fixed, lo, hi in jobs:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            light = Stream(
                src,
                columns=["timestamp", "sample_rate", "trace_id", "retrieved"],
                on_error="skip",
                since=lo,
                until=hi,
                options=opts,
                memory=budget,
            )
            for i, batch in enumerate(light):
                out.append(compact(_top1(batch, plan, fixed, i, ids)))
    return out


def _top1(
    batch: pl.DataFrame, plan: DriftPlan, fixed: int | None, seq: int, ids: pl.Series
) -> pl.DataFrame:
    """(trace_id, window, weight, top-1 retrieval score) of the batch's judged traces."""
    from llmobs_cli.core.drift.partials import _window

    return (
        batch.lazy()
        .with_columns(
            _window(plan, fixed).alias(WIN),
            (1.0 / pl.col("sample_rate").fill_null(1.0)).cast(pl.Float64).alias(W),
            (pl.int_range(pl.len(), dtype=pl.Int64) + (seq << 32)).alias(SEQ),
        )
        .filter(pl.col(WIN).is_not_null() & pl.col("trace_id").is_in(ids.implode()))
        .select(
            "trace_id",
            WIN,
            W,
            SEQ,
            pl.col("retrieved")
            .list.eval(pl.element().struct.field("score"))
            .list.first()
            .cast(pl.Float64)
            .alias("top1"),
        )
        .collect()
    )


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
