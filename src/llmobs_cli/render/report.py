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
from llmobs_cli.render.tables import human_ms, human_number, human_pct, human_usd, markdown_table

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


def _table(
    title: str,
    by: Sequence[str],
    groups: list[dict[str, Any]],
    overall: dict[str, Any] | None,
    cols: list[Column],
    caption: str | None = None,
) -> Table:
    t = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    for i, f in enumerate(by or ["group"]):
        width = max(
            [len(f), 3, *(len(_key_text(g["key"])[i]) for g in groups if len(g["key"]) > i)]
        )
        t.add_column(f, style="bold", no_wrap=True, min_width=min(width, 40))
    for header, _, _ in cols:
        t.add_column(header, justify="right", no_wrap=True)
    for g in groups:
        t.add_row(*_key_text(g["key"]), *_cells(g, cols))
    if overall is not None:
        t.add_section()
        label = ["all"] + [""] * (max(len(by), 1) - 1)
        t.add_row(*label, *_cells(overall, cols), style="bold")
    return t


def rich_report(rep: Report) -> Group:
    """The terminal view: groups (most expensive first) and an ``all`` row; buckets."""
    cols = _columns(rep)
    span = _span(rep)
    caption = (
        "calls = estimated population (each row weighted by 1/sample_rate); sampled = rows "
        "in the dump. Percentiles from the weighted CDF."
    )
    if not rep.overall.get("cost_complete", True):
        caption += " * cost leaves out unpriced calls (listed on stderr)."
    parts: list[Any] = [
        _table(
            f"llmobs report by {', '.join(rep.by) or 'nothing'}  ({span})",
            rep.by,
            rep.groups,
            rep.overall,
            cols,
            caption,
        )
    ]
    if rep.buckets:
        keep = {"sampled", "calls", "latency_ms.p50", "latency_ms.p95", "latency_ms.p99"}
        keep |= {"cost_usd", "cost_per_call_usd", "error_rate", "refusal_rate", "cache_hit_rate"}
        bcols = [c for c in cols if c[1] in keep or c[1] == "unpriced_calls"]
        bt = Table(title=f"per {rep.bucket}", title_justify="left")
        bt.add_column(rep.bucket or "bucket", style="bold", no_wrap=True)
        for header, _, _ in bcols:
            bt.add_column(header, justify="right", no_wrap=True)
        for b in rep.buckets:
            start = b["start"][:16].replace("T", " ") if rep.bucket == "hour" else b["start"][:10]
            bt.add_row(start, *(fmt(_get(b["overall"], path)) for _, path, fmt in bcols))
        parts.append(bt)
    if rep.alerts:
        parts.append(Text(f"{len(rep.alerts)} alert(s) fired (see stderr)", style="bold red"))
    return Group(*parts)


def _span(rep: Report) -> str:
    w = rep.window
    a = w.start.strftime("%Y-%m-%d %H:%M") if w.start else "…"
    b = w.end.strftime("%Y-%m-%d %H:%M") if w.end else "…"
    return f"{a} → {b} UTC"


def markdown_report(rep: Report) -> str:
    cols = _columns(rep)
    headers = [*(rep.by or ["group"]), *(h.replace("\n", " ") for h, _, _ in cols)]
    rows = [[*_key_text(g["key"]), *_cells(g, cols)] for g in rep.groups]
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


def alert_lines(rep: Report) -> list[str]:
    """One stderr line per fired alert: rule, group, value and threshold."""
    out = []
    for a in rep.alerts:
        name = f" [{a['name']}]" if a.get("name") else ""
        out.append(
            f"ALERT{name} {a['rule']}: {_key_label(a.get('key'))} "
            f"{a['metric']} = {_num(a['value'])} "
            f"{a['op']} {_num(a['threshold'])}"
        )
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
