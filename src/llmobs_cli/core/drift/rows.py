"""One test's row of the result: building it, filling in a test's outcome, the verdict of
every row together (Benjamini–Hochberg, effect floors, n_eff), and the words and
histograms that describe it."""

from __future__ import annotations

from typing import Any

import numpy as np

from llmobs_cli.core.drift.features import (
    FeatureSpec,
)
from llmobs_cli.core.drift.result import DEFAULT_EFFECT
from llmobs_cli.core.drift.stats import TestResult
from llmobs_cli.core.record.config import DriftConfig
from llmobs_cli.core.record.jsonable import clean
from llmobs_cli.core.record.weights import benjamini_hochberg, n_eff


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


def _row_sums(
    spec: FeatureSpec,
    group: dict[str, Any] | None,
    test: str,
    base: dict[str, float],
    cur: dict[str, float],
) -> dict[str, Any]:
    """:func:`_row` from merged sums (``n``, ``w`` = Σw, ``w2`` = Σw²) of each window."""
    row = _row(spec, group, test, 0, 0, np.zeros(0), np.zeros(0))
    row["sampled_baseline"], row["sampled_current"] = int(base["n"]), int(cur["n"])
    row["calls_baseline"], row["calls_current"] = float(base["w"]), float(cur["w"])
    row["n_eff_baseline"] = base["w"] ** 2 / base["w2"] if base["w2"] > 0 else 0.0
    row["n_eff_current"] = cur["w"] ** 2 / cur["w2"] if cur["w2"] > 0 else 0.0
    return row


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
