"""Renderers of a :class:`~llmobs_cli.core.drift.DriftResult`: Rich table, Markdown, CSV,
JSON, and the flat frame behind ``-o drift.parquet``.

One line per feature a person understands::

    response_length  median 812 -> 1015 chars (+25%)  KS D=0.09  p<1e-10  DRIFT
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import polars as pl
from rich.console import Group
from rich.text import Text

from llmobs_cli.core.drift import DriftResult
from llmobs_cli.render.tables import Col, fitted_tables, markdown_table

HEADERS = ("feature", "group", "baseline -> current", "effect", "p (BH)", "n_eff b/c", "verdict")


def p_text(p: float | None) -> str:
    if p is None:
        return "-"
    if p < 1e-10:
        return "p<1e-10"
    if p < 1e-3:
        return f"p={p:.0e}"
    return f"p={p:.2g}"


def effect_text(row: dict[str, Any]) -> str:
    e = row.get("effect_size")
    if e is None:
        return "-"
    name = row.get("effect_name")
    if name == "ks_d":
        return f"KS D={e:.2f}"
    if name == "pp":
        return f"|Δ|={e:.1f} pp"
    if name == "js_distance":
        return f"JS={e:.2f}"
    if name == "slope_change":
        return f"|Δslope|={e:.2f}"
    return f"{name}={e:.3g}"


def group_text(group: dict[str, Any] | None) -> str:
    if not group:
        return "all"
    return ",".join(f"{k}={v}" for k, v in group.items())


def _verdict(row: dict[str, Any]) -> str:
    return "DRIFT" if row["drifted"] else str(row["status"])


def line(row: dict[str, Any]) -> str:
    """The one-line verdict of a row (used by the table, the markdown and the tests)."""
    p = row.get("p_adjusted") if row.get("p_adjusted") is not None else row.get("p_value")
    parts = [row["feature"]]
    if row["group"]:
        parts[0] += f" [{group_text(row['group'])}]"
    parts += [summary_text(row), effect_text(row), p_text(p), _verdict(row)]
    return "  ".join(parts)


def _window_text(name: str, w: dict[str, Any]) -> str:
    span = f"{(w['start'] or '…')[:19]} .. {(w['end'] or '…')[:19]}"
    src = f" from {w['source']}" if w.get("source") else ""
    return (
        f"{name}: {span}{src}  {w['sampled']:,} rows sampled, ~{w['calls']:,.0f} calls, "
        f"n_eff {w['n_eff']:,.0f}"
    )


def summary_text(row: dict[str, Any]) -> str:
    """The row's "baseline -> current" text, saying what actually moved.

    A numeric feature can drift while its median stays put (``median 3 -> 3 docs (+0%)``):
    then the shares at each value (for a few distinct values) or the mean is what moved.
    """
    text = row.get("summary") or "-"
    ex = row.get("extras") or {}
    if row.get("kind") != "numeric" or ex.get("median_ratio") != 1.0:
        return text
    unit = f" {row['unit']}" if row.get("unit") else ""
    dist = row.get("distribution") or {}
    base, cur, edges = dist.get("baseline"), dist.get("current"), dist.get("edges")
    if dist.get("type") == "histogram" and base and cur and edges:
        used = [i for i in range(len(base)) if base[i] > 0 or cur[i] > 0]
        if 1 < len(used) <= 5:
            last = len(base) - 1
            labels = [f"{(edges[-1] if i == last else edges[i]):g}" for i in used]
            b = ",".join(f"{base[i]:.0%}" for i in used)
            c = ",".join(f"{cur[i]:.0%}" for i in used)
            return f"shares at {','.join(labels)}{unit}: {b} -> {c}"
    mb, mc = ex.get("mean_baseline"), ex.get("mean_current")
    if mb is not None and mc is not None:
        change = f" ({(mc - mb) / mb:+.0%})" if mb else ""
        return f"mean {mb:.3g} -> {mc:.3g}{unit}{change}"
    return text


def _cells(row: dict[str, Any]) -> list[str]:
    p = row.get("p_adjusted") if row.get("p_adjusted") is not None else row.get("p_value")
    return [
        row["feature"],
        group_text(row["group"]),
        summary_text(row),
        effect_text(row),
        p_text(p),
        f"{row['n_eff_baseline']:,.0f}/{row['n_eff_current']:,.0f}",
        _verdict(row),
    ]


#: Priorities of the drift table's columns (0: always shown; higher: dropped first).
_DRIFT_PRIORITY = (0, 0, 1, 3, 2, 4, 0)


def rich_drift(
    result: DriftResult, width: int = 100, wide: bool = False, traces: list[str] | None = None
) -> Group:
    doc = result.as_dict()
    shown = _shown(doc)
    grouped = any(row["group"] for row in shown)
    cols = [
        Col(h, priority=pr, name=h, wrap=h in ("group", "baseline -> current"), min_width=16)
        for h, pr in zip(HEADERS, _DRIFT_PRIORITY, strict=True)
    ]
    rows: list[list[Any]] = []
    for row in shown:
        cells: list[Any] = _cells(row)
        style = "bold red" if row["drifted"] else ("dim" if row["status"] != "ok" else "")
        cells[-1] = Text(cells[-1], style=style)
        rows.append(cells)
    if not grouped:  # the group column would say "all" on every line
        cols = [c for i, c in enumerate(cols) if i != 1]
        rows = [[c for i, c in enumerate(r) if i != 1] for r in rows]
    tables = fitted_tables(cols, rows, width, wide=wide, plain=True)
    head = [
        Text(_window_text("baseline", doc["baseline"])),
        Text(_window_text("current ", doc["current"])),
        Text(
            f"drift = BH-adjusted p < {doc['alpha']:g} and effect >= its floor and "
            f"n_eff >= {doc['min_n_eff']:g} in both windows",
            style="dim",
        ),
    ]
    tail = [Text(line) for line in slice_lines(doc)]
    tail += [Text(f"note: {n}", style="dim") for n in doc["notes"]]
    tail += [Text(line) for line in exemplar_lines(doc, traces)]
    tail += [Text(f"hint: {h}", style="dim") for h in guidance(doc)]
    verdict = (
        Text(f"DRIFT in: {', '.join(doc['drifted'])}", style="bold red")
        if doc["drifted"]
        else Text("no drift", style="green")
    )
    return Group(*head, *tables, *tail, verdict)


def _shown(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows: every overall and ``--by`` test, and the slice tests that found
    something (drift, or a significant change below the effect floor)."""
    return [
        r
        for r in doc["features"]
        if not r.get("slice") or r["drifted"] or r.get("status") == "small effect"
    ]


def slice_lines(doc: dict[str, Any]) -> list[str]:
    """How many slices were tested, and where each drifted feature's change comes from."""
    slices = [r for r in doc["features"] if r.get("slice")]
    if not slices:
        return []
    groups = {json.dumps(r["group"], sort_keys=True) for r in slices}
    fired = [r for r in slices if r["drifted"]]
    out = [
        f"slices: {len(groups)} value(s) of {', '.join(doc.get('slices') or [])} tested with "
        f"the overall tests in one BH family; {len(fired)} slice test(s) drifted"
        + ("" if fired else " (quiet slices are in --format json)")
    ]
    for w in doc.get("where") or []:
        key = ", ".join(f"{k}={v}" for k, v in w["slice"].items())
        share = (
            f", {w['share_of_change'] * 100:.0f}% of the overall change"
            if w.get("share_of_change") is not None
            else ""
        )
        out.append(
            f"  where: {w['feature']} {key}: mean {w['mean_baseline']:,.4g} -> "
            f"{w['mean_current']:,.4g} (within {w['within']:+,.3g}, mix {w['mix']:+,.3g}"
            f"{share}){' DRIFT' if w['drifted'] else ''}"
        )
    return out


def exemplar_lines(doc: dict[str, Any], traces: list[str] | None = None) -> list[str]:
    """Per drifted feature, the example calls from the side that grew."""
    from llmobs_cli.render.tables import exemplar_text, show_line

    overall = {r["feature"] for r in doc["features"] if r["group"] is None and r["drifted"]}
    # A feature that drifted overall shows its overall examples; a slice's examples are
    # shown only where the overall test did not fire (the slice is where it shows).
    rows = [
        r
        for r in doc["features"]
        if r.get("exemplars") and not (r.get("slice") and r["feature"] in overall)
    ]
    if not rows:
        return []
    out = ["examples from the current window (trace id prefixes):"]
    for r in rows:
        label = r["feature"] + (f" [{group_text(r['group'])}]" if r["group"] else "")
        out.append(f"  {label}: {exemplar_text(r['exemplars'])}")
    out.append(f"  open one: {show_line(str(rows[0]['exemplars'][0]['trace_id']), traces)}")
    return out


def guidance(doc: dict[str, Any]) -> list[str]:
    """What would make underpowered tests answerable: the n_eff needed, and the window
    length that would likely give it at the current rate."""
    need = float(doc.get("min_n_eff") or 0)
    short = [
        r
        for r in doc["features"]
        if r["status"] == "not enough data" and r["group"] is None and need
    ]
    if not short:
        return []
    worst = min(min(r["n_eff_baseline"], r["n_eff_current"]) for r in short)
    names = sorted({r["feature"] for r in short})
    out = [
        f"{len(names)} feature(s) are not enough data (n_eff down to {worst:,.0f}; "
        f"{need:,.0f} needed in each window): {', '.join(names[:6])}"
        + (" ..." if len(names) > 6 else "")
    ]
    cur = doc.get("current") or {}
    start, end = cur.get("start"), cur.get("end")
    low = min(r["n_eff_current"] for r in short)
    if start and end and low > 0:
        from datetime import datetime

        days = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds() / 86400
        if days > 0 and low < need:
            want = days * need / low
            out.append(
                f"a current window of about {want:.0f} days (--current {max(round(want), 1)}d) "
                f"would give n_eff >= {need:,.0f} at today's rate; or lower the storage "
                "sampling of the thin routes"
            )
    return out


def markdown_drift(result: DriftResult) -> str:
    """A compact CI summary: the verdict first, the drifted tests, the rest folded away."""
    doc = result.as_dict()
    head = [h.replace("->", "→") for h in HEADERS]

    def rows(items: list[dict[str, Any]]) -> list[list[str]]:
        return [[c.replace("->", "→") for c in _cells(r)] for r in items]

    fired = [r for r in doc["features"] if r["drifted"]]
    verdict = (
        f"**DRIFT** in {len(doc['drifted'])} feature(s): {', '.join(doc['drifted'])}"
        if doc["drifted"]
        else "**No drift.**"
    )
    out = [
        "### llmobs drift",
        "",
        verdict,
        "",
        f"- {_window_text('baseline', doc['baseline'])}",
        f"- {_window_text('current', doc['current'])}",
        "",
    ]
    if fired:
        out += [markdown_table(head, rows(fired)).rstrip("\n"), ""]
    where = slice_lines(doc)
    if where:
        out += ["```text", *where, "```", ""]
    if fired:
        examples = exemplar_lines(doc)
        if examples:
            out += ["```text", *examples, "```", ""]
    out += [
        f"<details><summary>all {len(doc['features'])} tests</summary>",
        "",
        markdown_table(head, rows(doc["features"])).rstrip("\n"),
        "</details>",
        "",
    ]
    out += [f"- note: {n}" for n in doc["notes"]]
    return "\n".join(out).rstrip("\n") + "\n"


def frame(result: DriftResult) -> pl.DataFrame:
    """One row per test, nested values as JSON text (for ``-o .parquet`` and CSV)."""
    doc = result.as_dict()
    recs = []
    for r in doc["features"]:
        recs.append(
            {
                "feature": r["feature"],
                "group": json.dumps(r["group"]) if r["group"] else None,
                "kind": r["kind"],
                "test": r["test"],
                "statistic": r["statistic"],
                "p_value": r["p_value"],
                "p_adjusted": r["p_adjusted"],
                "effect_size": r["effect_size"],
                "effect_name": r["effect_name"],
                "threshold": r["threshold"],
                "drifted": r["drifted"],
                "status": r["status"],
                "summary": r["summary"],
                "sampled_baseline": r["sampled_baseline"],
                "sampled_current": r["sampled_current"],
                "calls_baseline": r["calls_baseline"],
                "calls_current": r["calls_current"],
                "n_eff_baseline": r["n_eff_baseline"],
                "n_eff_current": r["n_eff_current"],
                "baseline": json.dumps(r["baseline"]) if r["baseline"] is not None else None,
                "current": json.dumps(r["current"]) if r["current"] is not None else None,
                "baseline_start": doc["baseline"]["start"],
                "baseline_end": doc["baseline"]["end"],
                "current_start": doc["current"]["start"],
                "current_end": doc["current"]["end"],
            }
        )
    schema = {
        "feature": pl.String,
        "group": pl.String,
        "kind": pl.String,
        "test": pl.String,
        "statistic": pl.Float64,
        "p_value": pl.Float64,
        "p_adjusted": pl.Float64,
        "effect_size": pl.Float64,
        "effect_name": pl.String,
        "threshold": pl.Float64,
        "drifted": pl.Boolean,
        "status": pl.String,
        "summary": pl.String,
        "sampled_baseline": pl.Int64,
        "sampled_current": pl.Int64,
        "calls_baseline": pl.Float64,
        "calls_current": pl.Float64,
        "n_eff_baseline": pl.Float64,
        "n_eff_current": pl.Float64,
        "baseline": pl.String,
        "current": pl.String,
        "baseline_start": pl.String,
        "baseline_end": pl.String,
        "current_start": pl.String,
        "current_end": pl.String,
    }
    return pl.DataFrame(recs, schema=schema)


def csv_drift(result: DriftResult) -> str:
    fr = frame(result)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(fr.columns)
    for rec in fr.iter_rows():
        writer.writerow(["" if v is None else v for v in rec])
    return buf.getvalue()


def json_drift(result: DriftResult) -> str:
    return json.dumps(result.as_dict(), indent=2, allow_nan=False, default=str)
