"""From a command's result to monitored quantities and nightly estimates.

* **eval**: one quantity per group × evaluator of the baseline window's summary (score,
  standard error, n_eff), watched one-sided for a drop larger than ``min_drop``; each
  night's estimate is the current window's group score.
* **drift**: the columnar features of the run (numbers, rates, categories; the fitted text
  features — language, topics, vocabulary — are not monitored), read again for the two
  windows with only their columns. A number is watched through the share of calls above
  the baseline's weighted median; a rate through its share; a category through the share
  of each category that held at least :data:`MIN_SHARE` of the baseline (at most
  :data:`MAX_CATEGORIES` per feature), both directions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from llmobs_cli.core.monitor import run
from llmobs_cli.core.monitor.quantities import (
    Estimate,
    Quantity,
    above,
    reference,
    reference_z,
    weighted_mean,
    weighted_median,
)
from llmobs_cli.core.monitor.state import load_state, save_state
from llmobs_cli.errors import UsageError

#: Effect floors: changes smaller than these are not worth an alarm.
SHARE_FLOOR = 0.02
MEDIAN_FLOOR = 0.03
MIN_SHARE = 0.02
MAX_CATEGORIES = 8
MIN_BASELINE_N_EFF = 30.0


def _key(key: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in key.items()) or "all"


# --- eval ----------------------------------------------------------------------------------


def quality_quantities(
    baseline_groups: Sequence[dict[str, Any]], alpha: float, min_drop: float
) -> list[Quantity]:
    usable = [
        g
        for g in baseline_groups
        if g.get("score") is not None
        and g.get("se") is not None
        and (g.get("n_eff") or 0) >= MIN_BASELINE_N_EFF
    ]
    z = reference_z(alpha, len(usable))
    out = []
    for g in usable:
        est = Estimate(g["score"], g["se"], g["n_eff"])
        lo, _hi = reference(est, z, min_drop)
        qid = f"{_key(g['key'])}/{g['evaluator']}"
        out.append(
            Quantity(
                qid, f"{g['evaluator']} ({_key(g['key'])})", "quality", ("down",), est.x, lo, 1.0
            )
        )
    return out


def quality_estimates(groups: Sequence[dict[str, Any]]) -> dict[str, Estimate]:
    return {
        f"{_key(g['key'])}/{g['evaluator']}": Estimate(g["score"], g["se"], g["n_eff"])
        for g in groups
        if g.get("score") is not None and g.get("se") is not None
    }


def monitor_eval(
    state_dir: str | Path,
    summary: Any,
    *,
    alpha: float,
    min_drop: float,
    rebaseline: bool = False,
) -> run.MonitorResult:
    """Fold one eval run (its current window is the night) into the monitor's state."""
    state = None if rebaseline else load_state(state_dir, "eval")
    started = False
    if state is None:
        if not summary.baseline_groups:
            raise UsageError(
                "monitor: the first monitored eval run (and a rebaseline) needs a baseline "
                "window to freeze"
            )
        quantities = quality_quantities(summary.baseline_groups, alpha, min_drop)
        if not quantities:
            raise UsageError(
                f"monitor: no group of the baseline window has {MIN_BASELINE_N_EFF:.0f} "
                "effective judgments; judge more of the baseline before monitoring"
            )
        state = run.start("eval", alpha, summary.windows.get("baseline") or {}, quantities)
        started = True
    night = str((summary.windows.get("current") or {}).get("end"))
    result = run.fold(state, night, quality_estimates(summary.groups))
    result.started = started
    save_state(state_dir, "eval", state)
    return result


def has_state(state_dir: str | Path, kind: str) -> bool:
    return load_state(state_dir, kind) is not None


# --- drift ---------------------------------------------------------------------------------


def _feature_columns(frame: pl.DataFrame, specs: Sequence[Any], patterns: Any) -> pl.DataFrame:
    from llmobs_cli.core.record.weights import W, weight_expr

    exprs = [weight_expr().alias(W)]
    for s in specs:
        exprs.append(s.expr(patterns).alias(s.name))
    return frame.select(exprs)


def monitorable(specs: Sequence[Any]) -> list[Any]:
    return [s for s in specs if s.expr is not None and s.kind in ("numeric", "rate", "categorical")]


def drift_quantities(base: pl.DataFrame, specs: Sequence[Any], alpha: float) -> list[Quantity]:
    """The drift quantities the baseline pins down (see the module docstring)."""
    from llmobs_cli.core.record.weights import W

    w = base[W].to_numpy()
    raw: list[tuple[Quantity, Estimate]] = []
    for s in specs:
        col = base[s.name]
        if s.kind == "numeric":
            v = col.cast(pl.Float64, strict=False).to_numpy()
            if np.isnan(v).all():
                continue
            med = weighted_median(v, w)
            est = weighted_mean(above(v, med), w)
            if est is None:
                continue
            raw.append(
                (
                    Quantity(
                        f"{s.name}>median",
                        f"{s.name} above the baseline median {med:.4g}",
                        "above_median",
                        ("down", "up"),
                        est.x,
                        0,
                        0,
                        {"median": med},
                    ),
                    est,
                )
            )
        elif s.kind == "rate":
            v = col.cast(pl.Float64, strict=False).to_numpy()
            est = weighted_mean(v, w)
            if est is not None:
                raw.append((Quantity(s.name, s.name, "share", ("down", "up"), est.x, 0, 0), est))
        else:
            cats = col.cast(pl.String).fill_null("(none)")
            shares = (
                pl.DataFrame({"c": cats, "w": w})
                .group_by("c")
                .agg(pl.col("w").sum())
                .with_columns(pl.col("w") / pl.col("w").sum())
                .filter(pl.col("w") >= MIN_SHARE)
                .sort("w", descending=True)
                .head(MAX_CATEGORIES)
            )
            for c in shares["c"].to_list():
                est = weighted_mean((cats == c).cast(pl.Float64).to_numpy(), w)
                if est is not None:
                    raw.append(
                        (
                            Quantity(
                                f"{s.name}={c}",
                                f"{s.name} share of {c}",
                                "share",
                                ("down", "up"),
                                est.x,
                                0,
                                0,
                                {"category": c},
                            ),
                            est,
                        )
                    )
    raw = [(q, e) for q, e in raw if e.n_eff >= MIN_BASELINE_N_EFF]
    z = reference_z(alpha, len(raw))
    out = []
    for q, est in raw:
        floor = MEDIAN_FLOOR if q.kind == "above_median" else SHARE_FLOOR
        q.lo, q.hi = reference(est, z, floor)
        out.append(q)
    return out


def drift_estimates(cur: pl.DataFrame, quantities: Sequence[Quantity]) -> dict[str, Estimate]:
    from llmobs_cli.core.record.weights import W

    w = cur[W].to_numpy()
    out: dict[str, Estimate] = {}
    for q in quantities:
        name = q.qid.split(">")[0].split("=")[0]
        if name not in cur.columns:
            continue
        col = cur[name]
        if q.kind == "above_median":
            y = above(col.cast(pl.Float64, strict=False).to_numpy(), q.meta["median"])
        elif "category" in q.meta:
            y = (
                (col.cast(pl.String).fill_null("(none)") == q.meta["category"])
                .cast(pl.Float64)
                .to_numpy()
            )
        else:
            y = col.cast(pl.Float64, strict=False).to_numpy()
        est = weighted_mean(y, w)
        if est is not None:
            out[q.qid] = est
    return out


def monitor_drift(
    state_dir: str | Path,
    paths: Sequence[str | Path],
    result: Any,
    specs: Sequence[Any],
    *,
    alpha: float,
    refusal_patterns: Any = None,
    rebaseline: bool = False,
    read: Any = None,
) -> run.MonitorResult:
    """Fold one drift run (its current window is the night) into the monitor's state.

    ``read(paths, columns, since, until)`` loads canonical rows (the CLI passes the shared
    loader); the baseline is read only when the state is started or rebaselined.
    """
    from llmobs_cli.core.drift.features import columns_for

    specs = monitorable(specs)
    if not specs:
        raise UsageError("monitor: none of the drift features can be monitored nightly")
    cols = sorted({*columns_for(specs), "sample_rate", "timestamp"})
    state = None if rebaseline else load_state(state_dir, "drift")
    started = False
    if state is None:
        b = result.baseline
        src = [b.source] if getattr(b, "source", None) else paths
        base = read(src, cols, None if b.source else b.start, None if b.source else b.end)
        quantities = drift_quantities(_feature_columns(base, specs, refusal_patterns), specs, alpha)
        if not quantities:
            raise UsageError(
                "monitor: the baseline window has too little data to freeze a reference"
            )
        state = run.start("drift", alpha, b.as_dict(), quantities)
        started = True
    c = result.current
    cur = read(paths, cols, c.start, c.end)
    quantities = [Quantity.from_dict(d) for d in state["quantities"]]
    est = drift_estimates(_feature_columns(cur, specs, refusal_patterns), quantities)
    night = c.end.isoformat() if c.end else json.dumps(c.as_dict())
    out = run.fold(state, night, est)
    out.started = started
    save_state(state_dir, "drift", state)
    return out
