"""Renderers of ``llmobs show``: a Rich span tree with timing bars, the full text of every
call, judgments and the session; Markdown; JSON."""

from __future__ import annotations

import json
import math
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from llmobs_cli.core.explore.trace import SpanNode, TraceView
from llmobs_cli.render.tables import Col, fitted_tables, human_ms, markdown_table, md_escape

BAR = 24


def _usd(x: float | None) -> str:
    """Dollars with three significant digits below a cent ($0.0000750), cents above."""
    if x is None:
        return "-"
    if x == 0:
        return "$0"
    if abs(x) < 0.01:
        digits = min(-math.floor(math.log10(abs(x))) + 2, 12)
        return f"${x:.{digits}f}"
    return f"${x:,.2f}"


def _tok(m: dict[str, Any]) -> str:
    if not m["calls"]:
        return ""
    return f"{m['input_tokens']:,}→{m['output_tokens']:,}"


def _cost(m: dict[str, Any]) -> str:
    if not m["calls"]:
        return ""
    text = _usd(m["cost_usd"])
    return text + "*" if m.get("unpriced") else text


def _prefixed(view: TraceView) -> list[tuple[str, SpanNode]]:
    """Spans in tree order with box-drawing prefixes (├─, └─, │)."""
    out: list[tuple[str, SpanNode]] = []

    def walk(node: SpanNode, lead: str, last: bool, root: bool) -> None:
        out.append(((lead + ("└─ " if last else "├─ ")) if not root else "", node))
        nxt = lead + ("   " if last else "│  ") if not root else ""
        for i, ch in enumerate(node.children):
            walk(ch, nxt, i == len(node.children) - 1, False)

    for r in view.roots:
        walk(r, "", True, True)
    return out


def _bar(view: TraceView, node: SpanNode) -> str:
    start, end = view.start, view.end
    if start is None or end is None or node.start is None:
        return ""
    total = (end - start).total_seconds()
    if total <= 0:
        return "█" * BAR
    a = (node.start - start).total_seconds() / total
    lat = (node.latency_ms or 0.0) / 1000.0
    b = min(a + lat / total, 1.0)
    lo = min(int(a * BAR), BAR - 1)
    hi = max(round(b * BAR), lo + 1)
    return " " * lo + "█" * (hi - lo) + " " * (BAR - hi)


def header_line(view: TraceView) -> str:
    t = view.totals()
    start = view.start.strftime("%Y-%m-%d %H:%M:%S UTC") if view.start else "-"
    lat = (view.end - view.start).total_seconds() * 1000 if view.start and view.end else None
    sess = view.session_id() or "-"
    unpriced = f" ({t['unpriced']} unpriced)" if t["unpriced"] else ""
    return (
        f"trace {view.trace_id}  session {sess}  {start}  {human_ms(lat)}  "
        f"{t['calls']} call(s) in {t['spans']} span(s)  "
        f"tokens {t['input_tokens']:,}→{t['output_tokens']:,}  cost {_usd(t['cost_usd'])}{unpriced}"
    )


def span_table(view: TraceView, width: int = 100, wide: bool = False) -> list[Table]:
    """The span tree fitted to ``width`` (numbers whole; long span names shortened)."""
    cols = [
        Col("span", priority=0, flex=True, min_width=16),
        Col("kind", priority=4),
        Col("latency", justify="right", priority=1),
        Col("timeline", priority=5, style="cyan"),
        Col("tokens", justify="right", priority=2),
        Col("cost", justify="right", priority=2),
        Col("subtree\ntokens", justify="right", priority=3),
        Col("subtree\ncost", justify="right", priority=3),
    ]
    rows = []
    for prefix, node in _prefixed(view):
        own, sub = node.own(), node.rolled_up()
        label = node.name
        if node.call is not None and node.call.get("model") and node.call["model"] not in label:
            label += f" [{node.call['model']}]"
        rows.append(
            [
                prefix + label,
                node.kind,
                human_ms(node.latency_ms),
                _bar(view, node),
                _tok(own),
                _cost(own),
                _tok(sub) if node.children else "",
                _cost(sub) if node.children else "",
            ]
        )
    caption = "* a call with no cost_usd and no price" if view.totals()["unpriced"] else None
    return fitted_tables(cols, rows, width, title="spans", caption=caption, wide=wide)


def _call_panel(n: int, node: SpanNode) -> Panel:
    c = node.call or {}
    parts: list[RenderableType] = []
    facts = [
        f"span {node.span_id}",
        f"route {c.get('route') or '-'}",
        f"model {c.get('model') or '-'}",
        f"latency {human_ms(c.get('latency_ms'))}",
        f"status {c.get('status') or '-'}",
    ]
    if c.get("finish_reason"):
        facts.append(f"finish {c['finish_reason']}")
    if c.get("sample_rate") not in (None, 1.0):
        facts.append(f"sample_rate {c['sample_rate']:g}")
    parts.append(Text("  ".join(facts), style="dim"))
    if c.get("system"):
        parts.append(_labelled("system", c["system"]))
    for m in c.get("messages") or []:
        if m.get("role") == "system" and m.get("content") == c.get("system"):
            continue  # the system field says it already
        parts.append(_labelled(str(m.get("role") or "?"), m.get("content") or ""))
    if c.get("prompt") and not any(
        (m.get("content") or "") == c["prompt"] for m in c.get("messages") or []
    ):
        parts.append(_labelled("prompt", c["prompt"]))
    for i, d in enumerate(c.get("retrieved") or [], start=1):
        score = d.get("score")
        head = f"doc {i} {d.get('id') or ''}".strip()
        if score is not None:
            head += f" (score {score:.3f})"
        parts.append(_labelled(head, d.get("content") or ""))
    if c.get("response") is not None:
        parts.append(_labelled("response", c["response"]))
    if c.get("error"):
        parts.append(_labelled("error", c["error"], style="red"))
    return Panel(Group(*parts), title=f"call {n}: {node.name}", title_align="left")


def _labelled(label: str, text: str, style: str = "bold") -> Text:
    out = Text()
    out.append(f"{label}: ", style=style)
    out.append(str(text))
    return out


def judgment_table(view: TraceView) -> Table | None:
    j = view.judgments
    if j is None:
        return None
    t = Table(title="judgments (worst first)", title_justify="left")
    t.add_column("span", no_wrap=True)
    t.add_column("evaluator", no_wrap=True)
    t.add_column("score", justify="right", no_wrap=True)
    t.add_column("reasoning", overflow="fold")
    for r in j.iter_rows(named=True):
        t.add_row(
            str(r.get("span_id") or "-"),
            str(r.get("evaluator") or "-"),
            "-" if r.get("score") is None else f"{r['score']:.2f}",
            str(r.get("explanation") or ""),
        )
    if not j.height:
        t.caption = "no judgment of this trace in the evals file"
    return t


def session_table(view: TraceView) -> Table | None:
    s = view.session
    if s is None:
        return None
    t = Table(title=f"session {view.session_id()} ({s.height} call(s))", title_justify="left")
    t.add_column("#", justify="right", no_wrap=True)
    t.add_column("time", no_wrap=True)
    t.add_column("trace", no_wrap=True, max_width=18, overflow="crop")
    t.add_column("user", overflow="fold", ratio=1)
    t.add_column("assistant", overflow="fold", ratio=1)
    for i, r in enumerate(s.iter_rows(named=True), start=1):
        here = r["trace_id"] == view.trace_id
        t.add_row(
            str(i),
            r["timestamp"].strftime("%m-%d %H:%M:%S") if r.get("timestamp") else "-",
            r["trace_id"],
            r.get("prompt") or "",
            r.get("response") or "",
            style="bold" if here else None,
        )
    return t


def rich_trace(view: TraceView, width: int = 100, wide: bool = False) -> Group:
    parts: list[RenderableType] = [Text(header_line(view), style="bold")]
    parts += span_table(view, width, wide)
    calls = [n for _, n in _prefixed(view) if n.call is not None]
    parts += [_call_panel(i, n) for i, n in enumerate(calls, start=1)]
    for extra in (judgment_table(view), session_table(view)):
        if extra is not None:
            parts.append(extra)
    return Group(*parts)


def json_trace(view: TraceView) -> str:
    return json.dumps(view.as_dict(), indent=2, allow_nan=False, ensure_ascii=False)


def markdown_trace(view: TraceView) -> str:
    out = [f"### trace `{view.trace_id}`", "", md_escape(header_line(view)), ""]
    rows = []
    for prefix, node in _prefixed(view):
        own, sub = node.own(), node.rolled_up()
        rows.append(
            [
                prefix + node.name,
                node.kind,
                human_ms(node.latency_ms),
                _tok(own),
                _cost(own),
                _tok(sub) if node.children else "",
                _cost(sub) if node.children else "",
            ]
        )
    out.append(
        markdown_table(
            ["span", "kind", "latency", "tokens", "cost", "subtree tokens", "subtree cost"], rows
        )
    )
    calls = [n for _, n in _prefixed(view) if n.call is not None]
    for i, node in enumerate(calls, start=1):
        c = node.call or {}
        out += ["", f"#### call {i}: {md_escape(node.name)} (`{node.span_id}`)", ""]
        if c.get("system"):
            out += [f"**system:** {md_escape(c['system'])}", ""]
        for m in c.get("messages") or []:
            out += [
                f"**{md_escape(m.get('role') or '?')}:** {md_escape(m.get('content') or '')}",
                "",
            ]
        if c.get("prompt"):
            out += [f"**prompt:** {md_escape(c['prompt'])}", ""]
        for d in c.get("retrieved") or []:
            score = "" if d.get("score") is None else f" (score {d['score']:.3f})"
            out += [
                f"- `{md_escape(d.get('id') or '')}`{score}: {md_escape(d.get('content') or '')}"
            ]
        if c.get("response") is not None:
            out += ["", f"**response:** {md_escape(c['response'])}"]
        if c.get("error"):
            out += ["", f"**error:** {md_escape(c['error'])}"]
    if view.judgments is not None and view.judgments.height:
        out += ["", "#### judgments", ""]
        out.append(
            markdown_table(
                ["span", "evaluator", "score", "reasoning"],
                [
                    [
                        r.get("span_id") or "",
                        r.get("evaluator") or "",
                        f"{r['score']:.2f}",
                        r.get("explanation") or "",
                    ]
                    for r in view.judgments.iter_rows(named=True)
                ],
            )
        )
    if view.session is not None:
        out += ["", f"#### session {md_escape(view.session_id() or '')}", ""]
        out.append(
            markdown_table(
                ["#", "time", "trace", "user", "assistant"],
                [
                    [
                        i,
                        r["timestamp"].isoformat() if r.get("timestamp") else "",
                        r["trace_id"],
                        r.get("prompt") or "",
                        r.get("response") or "",
                    ]
                    for i, r in enumerate(view.session.iter_rows(named=True), start=1)
                ],
            )
        )
    return "\n".join(out) + "\n"
