"""Renderers of ``llmobs report``: Rich table, Markdown, CSV, JSON, Parquet, HTML.

Every renderer takes the :class:`~llmobs_cli.core.report.engine.Report` (or its ``as_dict()``);
none computes a statistic. The table shows the weighting: ``sampled`` rows next to the
estimated ``calls`` they stand for, and the effective sample size when weights differ.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from llmobs_cli.core.report.engine import Report
from llmobs_cli.render.tables import (
    Col,
    fitted_tables,
    human_ms,
    human_number,
    human_pct,
    human_usd,
    markdown_table,
)

#: (header, getter, formatter) of the table columns; optional ones only when data has them.
Column = tuple[str, str, Any]


def _get(m: dict[str, Any], path: str) -> Any:
    cur: Any = m
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _usd(x: float | None) -> str:
    """Dollars with three significant digits below $1 ($0.000605, $0.900), cents above."""
    if x is None or x != x:
        return "-"
    if x != 0 and abs(x) < 1:
        digits = min(-math.floor(math.log10(abs(x))) + 2, 10)
        return f"${x:.{digits}f}"
    return human_usd(x)


def _int(x: Any) -> str:
    return "-" if x is None else f"{int(x):,}"


def _columns(rep: Report) -> list[Column]:
    o = rep.overall
    cols: list[Column] = [
        ("sampled", "sampled", _int),
        ("calls\n(est.)", "calls", human_number),
    ]
    if abs((o.get("n_eff") or 0) - (o.get("sampled") or 0)) > 0.5:
        cols.append(("n_eff", "n_eff", lambda x: human_number(round(x)) if x is not None else "-"))
    qs = list(o.get("latency_ms", {}).keys())
    cols += [(f"latency\n{q}", f"latency_ms.{q}", human_ms) for q in qs if q != "mean"]
    if _get(o, "ttft_ms.p50") is not None:
        cols.append(("ttft\np50", "ttft_ms.p50", human_ms))
    cols += [
        ("input\ntokens", "input_tokens", human_number),
        ("output\ntokens", "output_tokens", human_number),
    ]
    if o.get("cache_hit_rate") is not None:
        cols.append(("cache\nhit", "cache_hit_rate", human_pct))
    cols += [
        ("cost", "cost_usd", _usd),
        ("$/call", "cost_per_call_usd", _usd),
    ]
    if o.get("cost_per_session_usd") is not None:
        cols.append(("$/session", "cost_per_session_usd", _usd))
    cols += [
        ("errors", "error_rate", human_pct),
        ("refusals", "refusal_rate", human_pct),
    ]
    if o.get("citation_rate") is not None:
        cols.append(("cited", "citation_rate", human_pct))
    if o.get("unpriced_calls"):
        cols.append(("unpriced", "unpriced_calls", human_number))
    return cols


def _cells(m: dict[str, Any], cols: list[Column]) -> list[str]:
    """Formatted cells; a cost that leaves out unpriced calls is marked with ``*``."""
    out = []
    for _, path, fmt in cols:
        text = fmt(_get(m, path))
        if path == "cost_usd" and m.get("unpriced_calls"):
            text += "*"
        out.append(text)
    return out


def _key_text(key: dict[str, Any]) -> list[str]:
    return ["(none)" if v is None else str(v) for v in key.values()]


#: Column priorities at a given width: 0 = always shown, higher = dropped (or moved to a
#: second table) first. Metrics not listed get 5.
PRIORITY: dict[str, int] = {
    "calls": 1,
    "latency_ms.p99": 1,
    "cost_usd": 1,
    "error_rate": 2,
    "latency_ms.p50": 2,
    "sampled": 3,
    "latency_ms.p95": 3,
    "cost_per_call_usd": 3,
    "refusal_rate": 3,
    "input_tokens": 4,
    "output_tokens": 4,
    "n_eff": 4,
    "unpriced_calls": 4,
    "ttft_ms.p50": 5,
    "cache_hit_rate": 5,
    "cost_per_session_usd": 6,
    "citation_rate": 6,
}

#: What ``--sort`` accepts on the grouped table (the metric paths of the columns).
SORTABLE = (
    "calls",
    "sampled",
    "cost_usd",
    "cost_per_call_usd",
    "latency_ms.p50",
    "latency_ms.p95",
    "latency_ms.p99",
    "input_tokens",
    "output_tokens",
    "error_rate",
    "refusal_rate",
    "cache_hit_rate",
)

#: The short names ``--columns`` and ``--sort`` take for the metric columns.
SHORT = {
    "latency_ms.p50": "p50",
    "latency_ms.p95": "p95",
    "latency_ms.p99": "p99",
    "ttft_ms.p50": "ttft",
    "cost_per_call_usd": "$/call",
    "cost_per_session_usd": "$/session",
    "cost_usd": "cost",
    "error_rate": "errors",
    "refusal_rate": "refusals",
    "cache_hit_rate": "cache",
    "citation_rate": "cited",
    "unpriced_calls": "unpriced",
    "input_tokens": "input",
    "output_tokens": "output",
}


def sort_path(name: str) -> str:
    """``--sort`` value → metric path (``p99`` and ``latency_ms.p99`` both work)."""
    inverse = {v: k for k, v in SHORT.items()}
    path = inverse.get(name, name)
    if path not in SORTABLE and not path.startswith(("latency_ms.", "ttft_ms.")):
        from llmobs_cli.errors import UsageError

        names = ", ".join(SHORT.get(x, x) for x in SORTABLE)
        raise UsageError(f"--sort: unknown metric '{name}' (one of: {names})")
    return path


def other_row(rest: list[dict[str, Any]]) -> dict[str, Any]:
    """The groups beyond ``--top`` folded into one row whose figures stay true.

    Counts, tokens and cost add up; rates are re-weighted by the calls they are rates of
    (errors by calls, refusals by ok calls, cache hits by input tokens), so the shown
    groups plus "(other)" still sum to "all". Percentiles and n_eff cannot be merged from
    group figures, so they are left blank rather than guessed.
    """

    def tot(path: str) -> float | None:
        vals = [_get(g, path) for g in rest]
        known = [v for v in vals if v is not None]
        return float(sum(known)) if known else None

    calls = tot("calls") or 0.0
    errors = sum((g.get("error_rate") or 0.0) * (g.get("calls") or 0.0) for g in rest)
    ok = sum((1 - (g.get("error_rate") or 0.0)) * (g.get("calls") or 0.0) for g in rest)
    refusals = sum(
        (g.get("refusal_rate") or 0.0) * (1 - (g.get("error_rate") or 0.0)) * (g.get("calls") or 0)
        for g in rest
    )
    inp = tot("input_tokens")
    cached = tot("cached_tokens")
    cost = tot("cost_usd")
    out: dict[str, Any] = {
        "key": {},
        "sampled": int(tot("sampled") or 0),
        "calls": calls,
        "input_tokens": inp,
        "output_tokens": tot("output_tokens"),
        "cached_tokens": cached,
        "cache_hit_rate": (cached / inp) if inp and cached is not None else None,
        "cost_usd": cost,
        "cost_per_call_usd": (cost / calls) if cost is not None and calls else None,
        "error_rate": errors / calls if calls else None,
        "refusal_rate": refusals / ok if ok else None,
        "unpriced_calls": tot("unpriced_calls"),
    }
    return out


#: Without ``--top``, a table of more groups than this shows :data:`DEFAULT_TOP` of them
#: (``--by trace_id`` would otherwise print thousands of lines); JSON keeps every group.
MANY_GROUPS = 50
DEFAULT_TOP = 25


def default_top(groups: list[dict[str, Any]], top: int | None) -> int | None:
    return DEFAULT_TOP if top is None and len(groups) > MANY_GROUPS else top


def _ordered(
    groups: list[dict[str, Any]], top: int | None, sort: str | None, ascending: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Groups in ``sort`` order (default: the engine's), the first ``top``, and the rest
    folded into an "(other)" row."""
    top = default_top(groups, top)
    ordered = list(groups)
    if sort:
        path = sort_path(sort)
        known = [g for g in ordered if _get(g, path) is not None]
        unknown = [g for g in ordered if _get(g, path) is None]
        known.sort(key=lambda g: _get(g, path), reverse=not ascending)
        ordered = known + unknown
    if top is None or top >= len(ordered):
        return ordered, None
    return ordered[:top], other_row(ordered[top:])


def _table(
    title: str,
    by: Sequence[str],
    groups: list[dict[str, Any]],
    overall: dict[str, Any] | None,
    cols: list[Column],
    caption: str | None = None,
    *,
    width: int = 100,
    wide: bool = False,
    only: Sequence[str] | None = None,
    other: dict[str, Any] | None = None,
) -> list[Table]:
    keys = list(by or ["group"])
    spec = [Col(f, priority=0, style="bold", name=f) for f in keys]
    spec += [
        Col(header, justify="right", priority=PRIORITY.get(path, 5), name=SHORT.get(path, path))
        for header, path, _ in cols
    ]
    rows = [[*_key_text(g["key"]), *_cells(g, cols)] for g in groups]
    if other is not None:
        rows.append(["(other)", *[""] * (len(keys) - 1), *_cells(other, cols)])
    section = len(rows)
    if overall is not None:
        rows.append(["all", *[""] * (len(keys) - 1), *_cells(overall, cols)])
    tables = fitted_tables(
        spec,
        rows,
        width,
        title=title,
        caption=caption,
        wide=wide,
        only=only,
        section_before=section if overall is not None else None,
    )
    if overall is not None:
        for t in tables:
            t.rows[-1].style = "bold"
    return tables


def rich_report(
    rep: Report,
    width: int = 100,
    *,
    wide: bool = False,
    only: Sequence[str] | None = None,
    top: int | None = None,
    sort: str | None = None,
    ascending: bool = False,
) -> Group:
    """The terminal view fitted to ``width``: groups (``--sort``, ``--top`` with an
    "(other)" row) and an ``all`` row; buckets. Numbers are never cut: columns that do not
    fit move to a second table or are named in a note."""
    cols = _columns(rep)
    span = _span(rep)
    caption = (
        "calls = estimated population (each row weighted by 1/sample_rate); sampled = rows "
        "in the dump. Percentiles from the weighted CDF."
    )
    if not rep.overall.get("cost_complete", True):
        caption += " * cost leaves out unpriced calls (listed on stderr)."
    groups, other = _ordered(rep.groups, top, sort, ascending)
    if other is not None:
        caption += (
            f" (other) = the {len(rep.groups) - len(groups)} further groups; its counts, "
            "tokens, cost and rates add up to all, percentiles cannot be merged."
        )
        if top is None:
            caption += (
                f" Showing {len(groups)} of {len(rep.groups):,} groups: --top N to change, "
                "--format json for every group."
            )
    parts: list[Any] = _table(
        f"llmobs report by {', '.join(rep.by) or 'nothing'}  ({span})",
        rep.by,
        groups,
        rep.overall,
        cols,
        caption,
        width=width,
        wide=wide,
        only=only,
        other=other,
    )
    if rep.buckets:
        keep = {"sampled", "calls", "latency_ms.p50", "latency_ms.p95", "latency_ms.p99"}
        keep |= {"cost_usd", "cost_per_call_usd", "error_rate", "refusal_rate", "cache_hit_rate"}
        bcols = [c for c in cols if c[1] in keep or c[1] == "unpriced_calls"]
        spec = [Col(rep.bucket or "bucket", priority=0, style="bold")]
        spec += [
            Col(h, justify="right", priority=PRIORITY.get(path, 5), name=SHORT.get(path, path))
            for h, path, _ in bcols
        ]
        rows = []
        for b in rep.buckets:
            start = b["start"][:16].replace("T", " ") if rep.bucket == "hour" else b["start"][:10]
            rows.append([start, *(fmt(_get(b["overall"], path)) for _, path, fmt in bcols)])
        parts += fitted_tables(spec, rows, width, title=f"per {rep.bucket}", wide=wide, only=only)
    if rep.alerts:
        parts.append(Text(f"{len(rep.alerts)} alert(s) fired (see stderr)", style="bold red"))
    return Group(*parts)


def _span(rep: Report) -> str:
    w = rep.window
    a = w.start.strftime("%Y-%m-%d %H:%M") if w.start else "…"
    b = w.end.strftime("%Y-%m-%d %H:%M") if w.end else "…"
    return f"{a} → {b} UTC"


def markdown_report(
    rep: Report, *, top: int | None = None, sort: str | None = None, ascending: bool = False
) -> str:
    cols = _columns(rep)
    headers = [*(rep.by or ["group"]), *(h.replace("\n", " ") for h, _, _ in cols)]
    groups, other = _ordered(rep.groups, top, sort, ascending)
    rows = [[*_key_text(g["key"]), *_cells(g, cols)] for g in groups]
    if other is not None:
        rows.append(["(other)", *[""] * (max(len(rep.by), 1) - 1), *_cells(other, cols)])
    rows.append(
        [
            "**all**",
            *[""] * (max(len(rep.by), 1) - 1),
            *_cells(rep.overall, cols),
        ]
    )
    out = [
        f"### llmobs report by {', '.join(rep.by) or 'nothing'}",
        "",
        f"Window: {_span(rep)}. `calls` is the estimated population (rows weighted by "
        "1/sample_rate); `sampled` the rows in the dump.",
        "",
        markdown_table(headers, rows),
    ]
    if rep.buckets:
        bh = [
            rep.bucket or "bucket",
            "sampled",
            "calls (est.)",
            "latency p50",
            "latency p99",
            "cost",
            "errors",
        ]
        brows = [
            [
                b["start"],
                _int(b["overall"].get("sampled")),
                human_number(b["overall"].get("calls")),
                human_ms(_get(b["overall"], "latency_ms.p50")),
                human_ms(_get(b["overall"], "latency_ms.p99")),
                _usd(b["overall"].get("cost_usd")),
                human_pct(b["overall"].get("error_rate")),
            ]
            for b in rep.buckets
        ]
        out += [f"#### per {rep.bucket}", "", markdown_table(bh, brows)]
    if rep.alerts:
        out += [
            "#### alerts",
            "",
            markdown_table(
                ["rule", "group", "value", "threshold"],
                [
                    [a["rule"], _key_label(a.get("key")), _num(a["value"]), _num(a["threshold"])]
                    for a in rep.alerts
                ],
            ),
        ]
    if rep.unpriced_models:
        out += [
            "#### unpriced models",
            "",
            markdown_table(
                ["model", "sampled", "calls (est.)"],
                [
                    [u["model"], _int(u["sampled"]), human_number(u["calls"])]
                    for u in rep.unpriced_models
                ],
            ),
        ]
    return "\n".join(out)


def csv_report(rep: Report) -> str:
    """One row per overall / group / bucket / bucket × group, metrics flattened."""
    rows = rep.rows()
    buf = io.StringIO()
    if not rows:
        return ""
    fields = list(rows[0].keys())
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in fields})
    return buf.getvalue()


def json_report(rep: Report) -> str:
    return json.dumps(rep.as_dict(), indent=2, allow_nan=False)


def _key_label(key: dict[str, Any] | None) -> str:
    if not key:
        return "overall"
    return ",".join(f"{k}={v}" for k, v in key.items())


def _num(x: float | None) -> str:
    if x is None:
        return "null"
    if float(x).is_integer():
        return f"{int(x)}"
    return f"{x:.6g}"


def alert_lines(rep: Report, traces: Sequence[str] | None = None) -> list[str]:
    """One stderr line per fired alert: rule, group, value and threshold; then the
    group's worst calls when they were looked up (``exemplars``)."""
    from llmobs_cli.render.tables import exemplar_text, show_line

    out = []
    for a in rep.alerts:
        name = f" [{a['name']}]" if a.get("name") else ""
        out.append(
            f"ALERT{name} {a['rule']}: {_key_label(a.get('key'))} "
            f"{a['metric']} = {_num(a['value'])} "
            f"{a['op']} {_num(a['threshold'])}"
        )
        ex = a.get("exemplars") or []
        if ex:
            fmt = human_ms if str(a["metric"]).startswith(("latency_ms", "ttft_ms")) else None
            if str(a["metric"]).startswith("cost"):
                fmt = _usd
            out.append(f"  worst calls: {exemplar_text(ex, fmt)}")
            out.append(f"  open one: {show_line(str(ex[0]['trace_id']), traces)}")
    return out


def unpriced_lines(rep: Report) -> list[str]:
    """The loud warning about calls the price table does not cover."""
    if not rep.unpriced_models:
        return []
    o = rep.overall
    top = ", ".join(
        f"{u['model'] if u['model'] is not None else '(no model)'} "
        f"({human_number(u['calls'])} calls, {u['sampled']:,} sampled)"
        for u in rep.unpriced_models[:10]
    )
    more = f" and {len(rep.unpriced_models) - 10} more" if len(rep.unpriced_models) > 10 else ""
    return [
        f"warning: {human_number(o.get('unpriced_calls'))} estimated calls "
        f"({o.get('unpriced_sampled', 0):,} sampled rows) have no cost_usd and no price: "
        f"{top}{more}. Their cost is NOT in cost_usd; add the models "
        "with --prices FILE or prices: in llmobs.yaml."
    ]
