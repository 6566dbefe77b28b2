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

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl

from llmobs_cli.core.drift import language as lang_mod
from llmobs_cli.core.drift import topics as topic_mod
from llmobs_cli.core.drift.features import (
    DEFAULT_FEATURES,
    FITTED,
    STANDARD,
    FeatureSpec,
    _user_text,
    columns_for,
    custom_spec,
)
from llmobs_cli.core.drift.stats import BY_KIND, TESTS, TestResult, rng_for, single_thread_blas
from llmobs_cli.core.drift.stats.wald_shares import from_codes, from_counts
from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.ingest.readers.formats import ReadOptions
from llmobs_cli.core.record import names as names_check
from llmobs_cli.core.record import windows as win
from llmobs_cli.core.record.config import Config, DriftConfig
from llmobs_cli.core.record.fields import base_column, field_expr, parse_fields
from llmobs_cli.core.record.jsonable import clean
from llmobs_cli.core.record.weights import W, benjamini_hochberg, n_eff
from llmobs_cli.errors import InputError, UsageError

#: Effect-size floor per kind (see module docstring and docs/drift.md).
DEFAULT_EFFECT: dict[str, float] = {
    "numeric": 0.10,
    "rate": 2.0,
    "categorical": 0.10,
    "topic": 0.10,
    "vocabulary": 0.05,
    "calibration": 0.20,
}
#: Categories beyond this many (by pooled weight) are folded into "(other)".
MAX_CATEGORIES = 20
#: Tokens whose shares make up ``response_vocabulary``.
VOCAB_TOKENS = 30
OTHER = "(other)"
BASE_COLUMNS = ("timestamp", "sample_rate", "route", "status", "session_id", "trace_id")
#: Every canonical column some default feature may read (the dashboard's projection).
COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys([*BASE_COLUMNS, *columns_for([STANDARD[f] for f in DEFAULT_FEATURES])])
)

WIN = "_win"
BASE, CUR = 0, 1


@dataclass
class WindowSummary:
    """One window: its span, rows seen, estimated calls and Kish n_eff."""

    start: datetime | None
    end: datetime | None
    sampled: int
    calls: float
    n_eff: float
    name: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "sampled": self.sampled,
            "calls": round(self.calls, 3),
            "n_eff": round(self.n_eff, 1),
            "name": self.name,
            "source": self.source,
        }


@dataclass
class DriftResult:
    """Everything ``llmobs drift`` found; :meth:`as_dict` is the contract's JSON."""

    current: WindowSummary
    baseline: WindowSummary
    features: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    distributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    alpha: float = 0.01
    min_n_eff: float = 100.0
    skipped_rows: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    #: slice dimensions tested (each value of each, beside the overall population)
    slices: list[str] = field(default_factory=list)
    #: the slices that explain each drifted numeric feature (see :func:`where_ranking`)
    where: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        """Names of the features that drifted in any test (overall or a group)."""
        return list(dict.fromkeys(r["feature"] for r in self.features if r["drifted"]))

    @property
    def fired(self) -> bool:
        return bool(self.drifted)

    def as_dict(self) -> dict[str, Any]:
        feats = []
        for r in self.features:
            row = dict(r)
            if r["group"] is None and r["feature"] in self.distributions:
                row["distribution"] = self.distributions[r["feature"]]
            feats.append(row)
        return {
            "current": self.current.as_dict(),
            "baseline": self.baseline.as_dict(),
            "features": feats,
            "drifted": self.drifted,
            "alpha": self.alpha,
            "min_n_eff": self.min_n_eff,
            "slices": list(self.slices),
            "where": list(self.where),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------
# Windows and loading
# --------------------------------------------------------------------------------------


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


def _gkey(group: dict[str, Any]) -> str:
    return json.dumps(group, sort_keys=True, default=str)


#: Dimensions sliced by default. Route only: on the generated steady, sample-rate-change and
#: language-shift scenarios route slices stay quiet where they should, while model slices
#: (whose route mix moves with traffic) flagged prompt length in the language-shift
#: scenario; ``--slices route,model`` opts in.
DEFAULT_SLICES: tuple[str, ...] = ("route",)
#: A slice needs this share of either window's calls to be tested on its own.
MIN_SLICE_SHARE = 0.02
#: At most this many slices per dimension (the largest by calls).
MAX_SLICES = 12


def _slice_dims(slices: Sequence[str] | str | None, cfg: DriftConfig) -> list[str]:
    """``auto`` (the default): ``drift.slices`` of the config, else route;
    ``none``: no slices; else the comma-separated field names given."""
    if slices is None or slices == "auto":
        dims = list(cfg.slices) if cfg.slices is not None else list(DEFAULT_SLICES)
        return [d for d in dims if d != "none"]
    if isinstance(slices, str):
        if slices.strip() == "none":
            return []
        slices = [s.strip() for s in slices.split(",") if s.strip()]
    return parse_fields(",".join(slices), "--slices")


def where_ranking(rows: list[dict[str, Any]], top: int = 10) -> list[dict[str, Any]]:
    """Which slices explain each numeric feature's change of mean: a symmetric shift-share
    (Kitagawa) decomposition per slice dimension. With weight shares ``s`` and weighted
    means ``m`` per slice in the baseline (b) and current (c) windows, the overall change
    ``Σ s_c·m_c − Σ s_b·m_b`` splits exactly into ``within = (s_b+s_c)/2·(m_c−m_b)`` (the
    slice itself changed) and ``mix = (s_c−s_b)·(m_b+m_c)/2`` (traffic moved between
    slices). Slices are listed by ``|within|``, with their own test's verdict and effect."""
    out: list[dict[str, Any]] = []
    overall = {
        r["feature"]: r
        for r in rows
        if r["group"] is None and r["kind"] == "numeric" and r.get("baseline")
    }
    by_dim: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get("slice") or r["feature"] not in overall or not r.get("baseline"):
            continue
        (dim,) = r["group"].keys()
        by_dim.setdefault((r["feature"], dim), []).append(r)
    for (feature, dim), part in by_dim.items():
        o = overall[feature]
        total = o["current"]["mean"] - o["baseline"]["mean"]
        sb_all = sum(r["calls_baseline"] for r in part) or 1.0
        sc_all = sum(r["calls_current"] for r in part) or 1.0
        for r in part:
            mb, mc = r["baseline"]["mean"], r["current"]["mean"]
            if mb is None or mc is None:
                continue
            sb, sc = r["calls_baseline"] / sb_all, r["calls_current"] / sc_all
            within = (sb + sc) / 2 * (mc - mb)
            mix = (sc - sb) * (mb + mc) / 2
            out.append(
                {
                    "feature": feature,
                    "dimension": dim,
                    "slice": r["group"],
                    "within": within,
                    "mix": mix,
                    "share_of_change": within / total if total else None,
                    "mean_baseline": mb,
                    "mean_current": mc,
                    "effect_size": r["effect_size"],
                    "p_adjusted": r.get("p_adjusted"),
                    "drifted": r["drifted"],
                    "status": r.get("status"),
                    "summary": r.get("summary"),
                }
            )
    flagged = {r["feature"] for r in rows if r["drifted"]}
    out = [w for w in out if w["feature"] in flagged]
    out.sort(key=lambda w: (not w["drifted"], -abs(w["within"])))
    return out[:top]


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


# --------------------------------------------------------------------------------------
# Per-feature work
# --------------------------------------------------------------------------------------


class _Context:
    def __init__(
        self,
        both: pl.DataFrame,
        cfg: DriftConfig,
        notes: list[str],
        by: list[str],
        patterns: list[str] | None,
        say: Callable[[str], None],
        slices: Sequence[str] = (),
    ) -> None:
        self.both = both
        self.slices = list(slices)
        self.slice_keys: set[str] = set()
        self.slice_dicts: list[dict[str, Any]] = []
        self.cfg = cfg
        self.notes = notes
        self.by = by
        self.patterns = patterns
        self.say = say
        self.win = both[WIN].to_numpy()
        self.w = both[W].to_numpy().astype(np.float64)
        self.cl = self._clusters()
        self.groups = self._groups()
        self.distributions: dict[str, dict[str, Any]] = {}
        self._sub: np.ndarray | None = None
        self._part: pl.DataFrame | None = None

    # -- clusters ----------------------------------------------------------------------
    def _clusters(self) -> np.ndarray | None:
        """Integer cluster id per row: the session, else the trace (rows of one session
        share language, topic and style, so they are not independent draws)."""
        keys = [c for c in ("session_id", "trace_id") if c in self.both.columns]
        if not keys or self.both.height == 0:
            return None
        key = pl.coalesce(
            [pl.col(c).cast(pl.String) for c in keys]
            + [pl.int_range(pl.len()).cast(pl.String).alias("_r")]
        )
        # Hash, then dense ids over the integers: ranking 2M strings costs 10x more.
        ids = self.both.select(key.hash(11).rank("dense").alias("c"))["c"]
        if ids.max() == ids.len():
            return None  # every row its own cluster: the row formulas are exact
        return ids.to_numpy().astype(np.int64) - 1

    def _cl(self, mask: np.ndarray) -> np.ndarray | None:
        return None if self.cl is None else self.cl[mask]

    # -- groups ------------------------------------------------------------------------
    def _groups(self) -> list[tuple[dict[str, Any], np.ndarray]]:
        return self._by_groups() + self._slice_groups()

    def _slice_groups(self) -> list[tuple[dict[str, Any], np.ndarray]]:
        """One group per value of each slice dimension with two or more values (largest
        first, at most MAX_SLICES, each holding MIN_SLICE_SHARE of a window's calls)."""
        out: list[tuple[dict[str, Any], np.ndarray]] = []
        if self.both.height == 0:
            return out
        taken = {_gkey(g) for g, _ in self._by_groups()} if self.by else set()
        for dim in self.slices:
            if base_column(dim) not in self.both.columns:
                continue
            vals = self.both.select(field_expr(dim).cast(pl.String).alias("v"))["v"]
            if vals.drop_nulls().n_unique() < 2:
                continue
            v = vals.fill_null("(none)").to_numpy()
            wb, wc = self.win == BASE, self.win == CUR
            tot_b, tot_c = self.w[wb].sum(), self.w[wc].sum()
            if tot_b <= 0 or tot_c <= 0:
                continue
            cands = []
            for value in np.unique(v):
                mask = v == value
                sb = self.w[mask & wb].sum() / tot_b
                sc = self.w[mask & wc].sum() / tot_c
                if (mask & wb).any() and (mask & wc).any() and max(sb, sc) >= MIN_SLICE_SHARE:
                    cands.append((sb + sc, str(value), mask))
            for _, value, mask in sorted(cands, key=lambda c: -c[0])[:MAX_SLICES]:
                g = {dim: value}
                if _gkey(g) in taken:
                    continue
                self.slice_keys.add(_gkey(g))
                self.slice_dicts.append(g)
                out.append((g, mask))
        return out

    def _by_groups(self) -> list[tuple[dict[str, Any], np.ndarray]]:
        if not self.by or self.both.height == 0:
            return []
        for f in self.by:
            if base_column(f) not in self.both.columns:
                self.notes.append(f"--by {f}: no such column in the data; no group tests")
                return []
        keys = self.both.select(
            [field_expr(f).cast(pl.String).fill_null("(none)").alias(f) for f in self.by]
        )
        codes = keys.select(pl.struct(self.by).rank("dense").alias("g"))["g"].to_numpy() - 1
        first = keys.with_row_index("_i").group_by(self.by).agg(pl.col("_i").first())
        out = []
        for row in first.sort(self.by).iter_rows(named=True):
            g = codes[row["_i"]]
            mask = codes == g
            if (self.win[mask] == BASE).any() and (self.win[mask] == CUR).any():
                out.append(({f: row[f] for f in self.by}, mask))
        return out

    def _scopes(self) -> list[tuple[dict[str, Any] | None, np.ndarray | None]]:
        return [(None, None), *self.groups]

    # -- subsample for fitted text features --------------------------------------------
    def subsample(self) -> np.ndarray:
        """Row indices of a seeded simple random sample of ≤ language_sample rows per
        window (all rows when the window is smaller)."""
        if self._sub is None:
            rng = rng_for(self.cfg.seed, "subsample")
            idx = []
            for side in (BASE, CUR):
                rows = np.flatnonzero(self.win == side)
                if rows.size > self.cfg.language_sample:
                    rows = np.sort(rng.choice(rows, self.cfg.language_sample, replace=False))
                idx.append(rows)
            self._sub = np.concatenate(idx)
        return self._sub

    # -- rows --------------------------------------------------------------------------
    def feature_rows(self, spec: FeatureSpec, price_table: Any) -> list[dict[str, Any]]:
        missing = [c for c in spec.columns if c not in self.both.columns]
        if spec.name in FITTED:
            return self._fitted(spec)
        if spec.name == "cost_usd":
            values = self._cost(price_table)
        else:
            if missing and len(missing) == len(spec.columns):
                self.notes.append(f"{spec.name}: skipped, the data has no {missing[0]} field")
                return []
            assert spec.expr is not None
            values = self.both.select(spec.expr(self.patterns).alias("v"))["v"]
        kind = spec.kind
        if kind == "auto":
            num = values.cast(pl.Float64, strict=False)
            nn = values.drop_nulls().len()
            if nn and num.drop_nulls().len() >= 0.95 * nn:
                values, kind = num, "numeric"
            else:
                kind = "categorical"
            spec = FeatureSpec(spec.name, kind, spec.layer, spec.columns, spec.unit, spec.expr)
        if values.null_count() == values.len():
            what = "log-probs" if spec.columns == ("logprobs",) else "values"
            self.notes.append(f"{spec.name}: skipped, no {what} in either window")
            return []
        if kind == "numeric":
            return self._numeric(spec, values.cast(pl.Float64).to_numpy())
        if kind == "rate":
            v = values.cast(pl.Float64).to_numpy()
            codes = np.where(np.isnan(v), -1, (v > 0).astype(np.int64))
            return self._shares(spec, codes, ["no", "yes"], rate=True)
        codes, labels = self._categories(values.cast(pl.String))
        return self._shares(spec, codes, labels)

    def _cost(self, price_table: Any) -> pl.Series:
        have = "cost_usd" in self.both.columns
        cost = (
            self.both["cost_usd"]
            if have
            else pl.Series("v", [None] * self.both.height, dtype=pl.Float64)
        )
        missing = cost.null_count()
        if missing == 0:
            self.notes.append("cost_usd: the records' own cost_usd")
            return cost
        from llmobs_cli.core.report import pricing

        needed = {"model", "provider", "input_tokens", "output_tokens"}
        if not needed <= set(self.both.columns):
            self.notes.append("cost_usd: the records' own cost_usd only (no token counts)")
            return cost
        frame = self.both
        for c in ("cost_usd", "cached_tokens", "reasoning_tokens", "cache_write_tokens", "status"):
            if c not in frame.columns:
                dt = pl.Float64 if c == "cost_usd" else (pl.String if c == "status" else pl.Int64)
                frame = frame.with_columns(pl.lit(None, dtype=dt).alias(c))
        table = price_table if price_table is not None else pricing.build_price_table()
        # The price join may reorder rows: carry the row number through it.
        priced = (
            pricing.with_cost(frame.with_row_index("_row").lazy(), table)
            .select("_row", pricing.COST)
            .sort("_row")
            .collect()
        )
        out = priced[pricing.COST]
        unpriced = out.null_count()
        self.notes.append(
            f"cost_usd: the records' own cost_usd where present, else priced from the price "
            f"table ({missing} row(s) priced; {unpriced} row(s) unpriced and left out)"
        )
        return out.alias("v")

    def _categories(self, values: pl.Series) -> tuple[np.ndarray, list[str]]:
        """Codes of the top categories by pooled weight; the rest fold into (other)."""
        frame = pl.DataFrame({"v": values, "w": self.w})
        top = (
            frame.drop_nulls("v")
            .group_by("v")
            .agg(pl.col("w").sum())
            .sort(["w", "v"], descending=[True, False])
        )
        labels = top["v"].head(MAX_CATEGORIES).to_list()
        if top.height > MAX_CATEGORIES:
            labels.append(OTHER)
        lookup = pl.DataFrame(
            {"v": labels[:MAX_CATEGORIES], "c": np.arange(min(len(labels), MAX_CATEGORIES))}
        )
        codes = (
            frame.join(lookup, on="v", how="left", maintain_order="left")
            .select(
                pl.when(pl.col("v").is_null())
                .then(-1)
                .otherwise(pl.col("c").fill_null(MAX_CATEGORIES))
                .alias("c")
            )["c"]
            .to_numpy()
            .astype(np.int64)
        )
        return codes, labels

    # -- numeric -----------------------------------------------------------------------
    def _numeric(self, spec: FeatureSpec, v: np.ndarray) -> list[dict[str, Any]]:
        ok = ~np.isnan(v)
        rows = []
        for group, mask in self._scopes():
            m = ok if mask is None else ok & mask
            b = m & (self.win == BASE)
            c = m & (self.win == CUR)
            xb, wb, xc, wc = v[b], self.w[b], v[c], self.w[c]
            row = _row(spec, group, "ks", xb.size, xc.size, wb, wc)
            if xb.size >= 2 and xc.size >= 2:
                res = TESTS[BY_KIND["numeric"]](
                    (xb, wb),
                    (xc, wc),
                    rng=rng_for(self.cfg.seed, spec.name, str(group)),
                    replicates=self.cfg.bootstrap,
                    clusters=None if self.cl is None else (self._cl(b), self._cl(c)),
                )
                _fill(row, res)
                row["baseline"] = {
                    "median": res.extras["median_baseline"],
                    "mean": res.extras["mean_baseline"],
                }
                row["current"] = {
                    "median": res.extras["median_current"],
                    "mean": res.extras["mean_current"],
                }
                row["summary"] = _numeric_summary(spec, res)
                if group is None:
                    self.distributions[spec.name] = _histogram(xb, wb, xc, wc)
            rows.append(row)
        return rows

    # -- shares ------------------------------------------------------------------------
    def _shares(
        self,
        spec: FeatureSpec,
        codes: np.ndarray,
        labels: list[str],
        *,
        rate: bool = False,
        counts: tuple[Any, np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        k = len(labels)
        rows = []
        ok = codes >= 0
        for group, mask in self._scopes():
            m = ok if mask is None else ok & mask
            b = m & (self.win == BASE)
            c = m & (self.win == CUR)
            wb, wc = self.w[b], self.w[c]
            row = _row(spec, group, "wald_chi2", int(b.sum()), int(c.sum()), wb, wc)
            if b.sum() >= 1 and c.sum() >= 1:
                if counts is not None:
                    mat, tot = counts
                    sb = from_counts(mat[b], wb, tot[b], self._cl(b))
                    sc = from_counts(mat[c], wc, tot[c], self._cl(c))
                else:
                    sb = from_codes(codes[b], wb, k, self._cl(b))
                    sc = from_codes(codes[c], wc, k, self._cl(c))
                res = TESTS[BY_KIND[spec.kind if not rate else "rate"]](sb, sc, rate=rate)
                _fill(row, res)
                pb, pc = sb.shares, sc.shares
                row["baseline"] = {lab: float(x) for lab, x in zip(labels, pb, strict=True)}
                row["current"] = {lab: float(x) for lab, x in zip(labels, pc, strict=True)}
                row["summary"] = _share_summary(spec, labels, pb, pc, rate)
                if group is None:
                    self.distributions[spec.name] = {
                        "type": "categories",
                        "categories": labels,
                        "baseline": [float(x) for x in pb],
                        "current": [float(x) for x in pc],
                    }
            rows.append(row)
        return rows

    # -- fitted text features ------------------------------------------------------------
    def _fitted(self, spec: FeatureSpec) -> list[dict[str, Any]]:
        source = "response" if spec.name.startswith("response_") else "user"
        if source == "response" and "response" not in self.both.columns:
            self.notes.append(f"{spec.name}: skipped, the data has no response field")
            return []
        if source == "user" and not ({"prompt", "messages"} & set(self.both.columns)):
            self.notes.append(f"{spec.name}: skipped, the data has no prompt or messages")
            return []
        sub = self.subsample()
        if self._part is None:  # one gather of the subsample for every text feature
            self._part = self.both[sub]
        part = self._part
        if source == "response":
            text = part["response"]
        else:
            text = (
                part.select(_user_text().alias("t"))["t"]
                if "messages" in part.columns and "prompt" in part.columns
                else part["prompt" if "prompt" in part.columns else "messages"]
            )
        if text.null_count() == text.len():
            self.notes.append(f"{spec.name}: skipped, no text in either window")
            return []
        full_codes = np.full(self.both.height, -1, dtype=np.int64)
        if spec.name == "language":
            self.say(f"language: detecting on {text.len()} rows")
            langs = lang_mod.detect(text)
            codes_s, labels = self._categories_sub(langs, sub)
            full_codes[sub] = codes_s
            return self._shares(spec, full_codes, labels)
        if spec.name == "response_vocabulary":
            return self._vocabulary(spec, text, sub)
        self.say(f"{spec.name}: fitting {self.cfg.topics} topics on {text.len()} rows")
        emb = self._embedding(part) if source == "user" else None
        if emb is not None:
            fit = topic_mod.fit_embeddings(emb, self.cfg.topics, self.cfg.seed)
            self.notes.append(f"{spec.name}: clusters of the precomputed embedding column")
        else:
            fit = topic_mod.fit_topics(text, self.cfg.topics, self.cfg.seed)
        full_codes[sub] = fit.labels
        return self._shares(spec, full_codes, fit.names)

    def _categories_sub(self, values: pl.Series, sub: np.ndarray) -> tuple[np.ndarray, list[str]]:
        saved = self.w
        self.w = saved[sub]
        try:
            return self._categories(values)
        finally:
            self.w = saved

    def _embedding(self, part: pl.DataFrame) -> np.ndarray | None:
        if "embedding" in part.columns and isinstance(part.schema["embedding"], pl.List):
            col = part["embedding"]
        elif (
            "metadata" in part.columns
            and part["metadata"].head(2000).str.contains('"embedding"', literal=True).any()
        ):
            col = (
                part["metadata"]
                .str.json_path_match("$.embedding")
                .str.json_decode(pl.List(pl.Float64))
            )
        else:
            return None
        lens = col.list.len().drop_nulls()
        if lens.len() == 0:
            return None
        dim = int(lens.mode().first() or 0)  # type: ignore[arg-type]
        if dim < 2:
            return None
        good = col.list.len() == dim
        arr = np.full((col.len(), dim), np.nan)
        ok = good.fill_null(False).to_numpy()
        if ok.any():
            arr[ok] = np.vstack(col.filter(good.fill_null(False)).to_list())
        return arr

    def _vocabulary(
        self, spec: FeatureSpec, text: pl.Series, sub: np.ndarray
    ) -> list[dict[str, Any]]:
        from scipy import sparse

        toks = (
            pl.DataFrame({"t": text.str.slice(0, 4000)})
            .with_row_index("doc")
            .select(
                "doc", pl.col("t").str.to_lowercase().str.extract_all(r"[^\W\d_]+").alias("tok")
            )
            .explode("tok")
            .drop_nulls("tok")
        )
        if toks.height == 0:
            self.notes.append(f"{spec.name}: skipped, no words in the responses")
            return []
        wsub = self.w[sub]
        per_doc = toks.group_by("doc", "tok").agg(pl.len().alias("n"))
        weights = pl.DataFrame({"doc": np.arange(sub.size, dtype=np.uint32), "w": wsub})
        top = (
            per_doc.join(weights, on="doc")
            .group_by("tok")
            .agg((pl.col("n") * pl.col("w")).sum().alias("s"))
            .sort(["s", "tok"], descending=[True, False])
            .head(VOCAB_TOKENS)["tok"]
            .to_list()
        )
        lookup = pl.DataFrame({"tok": top, "k": np.arange(len(top))})
        hits = per_doc.join(lookup, on="tok")
        totals = np.zeros(sub.size)
        tot = toks.group_by("doc").agg(pl.len().alias("n"))
        totals[tot["doc"].to_numpy()] = tot["n"].to_numpy()
        k = len(top)
        mat = sparse.csr_matrix(
            (
                hits["n"].to_numpy().astype(float),
                (hits["doc"].to_numpy().astype(np.int64), hits["k"].to_numpy().astype(np.int64)),
            ),
            shape=(sub.size, k + 1),
        ).tolil()
        covered = np.asarray(mat[:, :k].sum(axis=1)).ravel()
        mat[:, k] = (totals - covered).reshape(-1, 1)
        mat = mat.tocsr()
        codes = np.full(self.both.height, -1, dtype=np.int64)
        has = totals > 0
        codes[sub[has]] = 0
        full_mat = sparse.csr_matrix((self.both.height, k + 1))
        full_tot = np.zeros(self.both.height)
        # Scatter the subsample's rows into full-height arrays (rows outside are unused).
        perm = sparse.csr_matrix(
            (np.ones(sub.size), (sub, np.arange(sub.size))), shape=(self.both.height, sub.size)
        )
        full_mat = perm @ mat
        full_tot[sub] = totals
        return self._shares(spec, codes, [*top, OTHER], counts=(full_mat, full_tot))

    # -- calibration -------------------------------------------------------------------
    def calibration_rows(self, evals: str | Path | pl.DataFrame) -> list[dict[str, Any]]:
        ev = _read_evals(evals)
        if "trace_id" not in self.both.columns or "retrieved" not in self.both.columns:
            self.notes.append("score calibration: skipped, traces lack trace_id or retrieved")
            return []
        top1 = (
            self.both.select(
                "trace_id",
                WIN,
                W,
                pl.col("retrieved")
                .list.eval(pl.element().struct.field("score"))
                .list.first()
                .cast(pl.Float64)
                .alias("top1"),
            )
            .drop_nulls("top1")
            .unique("trace_id", keep="first", maintain_order=True)
        )
        if top1.height == 0:
            self.notes.append("score calibration: skipped, no retrieval scores in the windows")
            return []
        evaluators = sorted(set(ev["evaluator"].drop_nulls().unique().to_list()))
        wanted = [e for e in evaluators if e in ("relevance", "faithfulness")] or evaluators
        ev = ev.filter(pl.col("score").is_not_null())
        if "error" in ev.columns:
            ev = ev.filter(pl.col("error").is_null())
        wcol = "weight" if "weight" in ev.columns else None
        joined = ev.join(top1, on="trace_id", how="inner")
        rows = []
        for name in wanted:
            part = joined.filter(pl.col("evaluator") == name)
            wcolumn = part[wcol] if wcol else part[W]
            wv = wcolumn.fill_null(part[W]).cast(pl.Float64).to_numpy()
            x, y, wn = (
                part["top1"].to_numpy(),
                part["score"].cast(pl.Float64).to_numpy(),
                part[WIN].to_numpy(),
            )
            spec = FeatureSpec(
                f"retrieval_calibration.{name}",
                "calibration",
                "retrieval",
                ("retrieved",),
                "score/score",
            )
            b, c = wn == BASE, wn == CUR
            row = _row(spec, None, "slope_wald", int(b.sum()), int(c.sum()), wv[b], wv[c])
            if b.sum() >= 3 and c.sum() >= 3:
                res = TESTS[BY_KIND["calibration"]]((x[b], y[b], wv[b]), (x[c], y[c], wv[c]))
                _fill(row, res)
                row["baseline"] = {"slope": res.extras.get("slope_baseline")}
                row["current"] = {"slope": res.extras.get("slope_current")}
                sb, sc = res.extras.get("slope_baseline"), res.extras.get("slope_current")
                if sb is not None and sc is not None:
                    row["summary"] = f"{name} per unit of top-1 score: slope {sb:.2f} -> {sc:.2f}"
            rows.append(row)
        if not wanted:
            self.notes.append("score calibration: skipped, the evals file has no judgments")
        return rows


def _read_evals(evals: str | Path | pl.DataFrame) -> pl.DataFrame:
    if isinstance(evals, pl.DataFrame):
        frame = evals
    else:
        p = Path(evals)
        if not p.exists():
            raise InputError([f"{p}: no such file (--evals expects an llmobs eval -o .parquet)"])
        try:
            frame = pl.read_parquet(p)
        except Exception as exc:  # polars raises several kinds for a bad file
            raise InputError([f"{p}: not a readable Parquet file of judgments ({exc})"]) from exc
    for col in ("trace_id", "evaluator", "score"):
        if col not in frame.columns:
            name = "evals" if isinstance(evals, pl.DataFrame) else str(evals)
            raise InputError(
                [f"{name}: {col}: missing column (an llmobs eval -o file is expected)"]
            )
    return frame


# --------------------------------------------------------------------------------------
# Rows, verdicts, summaries
# --------------------------------------------------------------------------------------


def _row(
    spec: FeatureSpec,
    group: dict[str, Any] | None,
    test: str,
    nb: int,
    nc: int,
    wb: np.ndarray,
    wc: np.ndarray,
) -> dict[str, Any]:
    return {
        "feature": spec.name,
        "group": group,
        "kind": spec.kind,
        "layer": spec.layer,
        "unit": spec.unit,
        "test": test,
        "statistic": None,
        "p_value": None,
        "p_adjusted": None,
        "effect_size": None,
        "effect_name": None,
        "threshold": None,
        "drifted": False,
        "status": "not enough data",
        "sampled_baseline": nb,
        "sampled_current": nc,
        "calls_baseline": float(wb.sum()),
        "calls_current": float(wc.sum()),
        "n_eff_baseline": n_eff(wb) if wb.size else 0.0,
        "n_eff_current": n_eff(wc) if wc.size else 0.0,
        "summary": "",
        "baseline": None,
        "current": None,
        "extras": {},
    }


def _fill(row: dict[str, Any], res: TestResult) -> None:
    row["test"] = res.test
    row["statistic"] = clean(float(res.statistic))
    row["p_value"] = clean(float(res.p_value))
    row["effect_size"] = clean(float(res.effect_size))
    row["effect_name"] = res.effect_name
    row["extras"] = {k: clean(v) for k, v in res.extras.items()}


def _decide(rows: list[dict[str, Any]], cfg: DriftConfig) -> None:
    """BH across every test with enough data, then the three-part verdict."""
    eligible = [
        i
        for i, r in enumerate(rows)
        if r["p_value"] is not None
        and min(r["n_eff_baseline"], r["n_eff_current"]) >= cfg.min_n_eff
    ]
    adj: Any = benjamini_hochberg([rows[i]["p_value"] for i in eligible]) if eligible else []
    for i, p in zip(eligible, adj, strict=True):
        rows[i]["p_adjusted"] = clean(float(p))
    for r in rows:
        th = cfg.thresholds.get(r["feature"])
        floor = (
            th.effect
            if th is not None and th.effect is not None
            else DEFAULT_EFFECT.get(r["kind"], 0.1)
        )
        alpha = th.alpha if th is not None and th.alpha is not None else cfg.alpha
        r["threshold"] = floor
        r["alpha"] = alpha
        if r["p_adjusted"] is None:
            r["status"] = (
                "not enough data"
                if r["p_value"] is not None or r["statistic"] is None
                else "not tested"
            )
            r["drifted"] = False
            continue
        eff = r["effect_size"]
        significant = r["p_adjusted"] < alpha
        big = eff is not None and eff >= floor
        r["drifted"] = bool(significant and big)
        r["status"] = "DRIFT" if r["drifted"] else ("small effect" if significant else "ok")


def _fmt_num(x: float | None, unit: str) -> str:
    if x is None or x != x:
        return "-"
    if unit == "$":
        return f"${x:.4g}"
    if unit == "score" or (abs(x) < 10 and x != int(x)):
        return f"{x:.3g}"
    return f"{x:,.0f}"


def _numeric_summary(spec: FeatureSpec, res: TestResult) -> str:
    b, c = res.extras["median_baseline"], res.extras["median_current"]
    unit = spec.unit
    text = f"median {_fmt_num(b, unit)} -> {_fmt_num(c, unit)}"
    if unit not in ("", "$", "score"):
        text += f" {unit}"
    if unit == "score":
        if b == b and c == c:
            text += f" ({c - b:+.3f})"
    elif b and b == b and c == c:
        text += f" ({(c / b - 1) * 100:+.0f}%)"
    return text


def _share_summary(
    spec: FeatureSpec, labels: list[str], pb: np.ndarray, pc: np.ndarray, rate: bool
) -> str:
    if rate:
        b, c = float(pb[1]), float(pc[1])
        return f"{b:.1%} -> {c:.1%} ({(c - b) * 100:+.1f} pp)"
    diff = pc - pb
    if diff.size == 0:
        return ""
    if spec.kind == "topic":
        i = int(np.argmax(diff))  # the topic that grew most
        return f"grew: '{labels[i]}' {pb[i]:.0%} -> {pc[i]:.0%} ({diff[i] * 100:+.1f} pp)"
    i = int(np.argmax(np.abs(diff)))
    if spec.kind == "vocabulary":
        return f"'{labels[i]}' {pb[i]:.2%} -> {pc[i]:.2%} of words"
    return f"{labels[i]} {pb[i]:.0%} -> {pc[i]:.0%} ({diff[i] * 100:+.1f} pp)"


def _histogram(
    xb: np.ndarray, wb: np.ndarray, xc: np.ndarray, wc: np.ndarray, bins: int = 20
) -> dict[str, Any]:
    """Weighted shares of both windows over common edges (1st–99th pooled percentile)."""
    pooled = np.concatenate([xb, xc])
    step = max(1, pooled.size // 200_000)  # edges from a systematic subsample: cheap, enough
    lo, hi = np.quantile(pooled[::step], [0.01, 0.99])
    if not hi > lo:
        lo, hi = float(pooled.min()), float(pooled.max())
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)

    def shares(x: np.ndarray, w: np.ndarray) -> list[float]:
        # Binary search on the edges + bincount: np.histogram with weights sorts the data.
        idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
        h = np.bincount(idx, w, bins)
        tot = h.sum()
        return [float(v / tot) if tot > 0 else 0.0 for v in h]

    return {
        "type": "histogram",
        "edges": [float(e) for e in edges],
        "baseline": shares(xb, wb),
        "current": shares(xc, wc),
    }
