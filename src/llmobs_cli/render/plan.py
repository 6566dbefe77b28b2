"""Renderers of a :class:`~llmobs_cli.core.eval.rates.RatePlan`: Rich tables, Markdown,
CSV (one row per route of the chosen allocation) and JSON (``RatePlan.as_dict``).

The per-route table reads left to right as the question a team asks: how much traffic,
at what rate, how many judgments, what that detects and when, what it costs, and whether
the target is met. The alternative allocations follow in one small table.
"""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text

from llmobs_cli.core.eval.rates import RatePlan, RoutePlan
from llmobs_cli.render.tables import human_number, human_usd, markdown_table

HEADERS = (
    "route",
    "calls/d",
    "rate",
    "store",
    "judged/d",
    "MDE",
    "detect",
    "$/day",
    "$/mo",
    "ok",
)
ALT_HEADERS = (
    "allocation",
    "judged/d",
    "$/day",
    "$/month",
    "feasible",
    "worst MDE",
    "overall MDE",
)
#: The scalar keys of a route, in CSV column order.
CSV_KEYS = (
    "route",
    "high_stakes",
    "calls_per_day",
    "plan_calls_per_day",
    "eval_rate",
    "storage_rate",
    "stored_rate",
    "storage_ok",
    "judgments_per_day",
    "judgments_per_window",
    "eval_budget",
    "target_drop",
    "baseline_score",
    "score_sd",
    "variance_source",
    "design_effect",
    "mde",
    "time_to_detect_h",
    "judge_input_tokens",
    "judge_output_tokens",
    "cost_per_judgment_usd",
    "cost_per_day_usd",
    "cost_per_month_usd",
    "feasible",
    "status",
    "note",
)


_TABLE: dict[str, Any] = {
    "box": box.SIMPLE_HEAD,
    "padding": (0, 1),
    "collapse_padding": True,
    "pad_edge": False,
}


def rate_text(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 0.9995:
        return "100%"
    pct = x * 100
    return f"{pct:.2g}%" if pct < 10 else f"{pct:.0f}%"


def usd(x: float | None) -> str:
    """Dollars with two significant digits below $10 (a plan is an estimate)."""
    if x is None or not math.isfinite(x):
        return "-"
    if x >= 10:
        return human_usd(x)
    return f"${x:.2g}" if x >= 0.01 else f"${x:.1g}" if x > 0 else "$0"


def hours_text(h: float | None) -> str:
    if h is None or not math.isfinite(h):
        return "never"
    if h < 1:
        return f"{h * 60:.0f}m"
    if h < 72:
        return f"{h:.1f}h" if h < 10 else f"{h:.0f}h"
    return f"{h / 24:.1f}d"


def _verdict(r: RoutePlan) -> str:
    word = "yes" if r.feasible else {"over_budget": "cap"}.get(r.status, "small")
    if r.high_stakes:
        word += " HS"
    return word


def route_row(r: RoutePlan) -> list[str]:
    return [
        r.route,
        human_number(round(r.calls_per_day, 1)),
        rate_text(r.eval_rate),
        rate_text(r.storage_rate) + ("" if r.storage_ok else "!"),
        human_number(round(r.judgments_per_day, 1)),
        f"{r.mde:.3f}" if math.isfinite(r.mde) else "-",
        hours_text(r.time_to_detect_h),
        usd(r.cost_per_day_usd),
        usd(r.cost_per_month_usd),
        _verdict(r),
    ]


def alt_rows(plan: RatePlan) -> list[list[str]]:
    rows = []
    for name, alloc in plan.allocations.items():
        if alloc is None:
            rows.append([name, "-", "-", "-", "-", "-", "-"])
            continue
        t = alloc.totals()
        mark = "*" if alloc is plan.chosen else ""
        rows.append(
            [
                name + mark,
                human_number(round(t["judgments_per_day"], 1)),
                usd(t.get("cost_per_day_usd")),
                usd(t.get("cost_per_month_usd")),
                f"{t['feasible_routes']}/{t['routes']}",
                f"{t['max_mde']:.3f}" if t.get("max_mde") is not None else "-",
                f"{t['overall_mde']:.3f}" if t.get("overall_mde") is not None else "-",
            ]
        )
    return rows


def _title(plan: RatePlan) -> str:
    t = plan.target
    drop = f"{t['detect'] * 100:g}% relative" if t["relative"] else f"{t['detect']:g}"
    return (
        f"llmobs plan: detect a {drop} drop within {hours_text(t['within_h'])} "
        f"(power {t['power']:g}, alpha {t['alpha']:g} over {t['tests']} tests), "
        f"judge {t['judge_model']}"
    )


def _route_notes(plan: RatePlan) -> list[str]:
    return [f"{r.route}: {r.note}" for r in plan.routes if r.note]


def render_table(plan: RatePlan) -> Group:
    table = Table(title=_title(plan), title_justify="left", **_TABLE)
    # The terminal table leaves out $/month (in the allocations table, JSON, CSV and
    # Markdown) so that it fits 80 columns.
    keep = [i for i, h in enumerate(HEADERS) if h != "$/mo"]
    for i in keep:
        h = HEADERS[i]
        table.add_column(h, justify="left" if h in ("route", "ok") else "right", no_wrap=True)
    for r in plan.routes:
        style = None if r.feasible else "yellow"
        row = route_row(r)
        table.add_row(*[row[i] for i in keep], style=style)
    t = plan.chosen.totals()
    table.add_section()
    table.add_row(
        "total",
        human_number(round(t["calls_per_day"], 1)),
        "",
        "",
        human_number(round(t["judgments_per_day"], 1)),
        "",
        "",
        usd(t.get("cost_per_day_usd")),
        f"{t['feasible_routes']}/{t['routes']}",
        style="bold",
    )
    legend = Text(
        "rate: share of the calls judged; store: the storage rate that needs (! = the dump "
        "is stored below it); ok: yes, small (too little traffic), cap (over the cost cap); "
        "HS: high stakes"
    )
    alt = Table(title="allocations (* = the plan above)", title_justify="left", **_TABLE)
    for h in ALT_HEADERS:
        alt.add_column(h, justify="left" if h == "allocation" else "right", no_wrap=True)
    for row in alt_rows(plan):
        alt.add_row(*row)
    parts: list[Any] = [table, legend]
    notes = _route_notes(plan)
    if notes:
        parts.append(Text("\n".join(notes)))
    parts.append(alt)
    if plan.recommended_min_drop is not None:
        parts.append(
            Text(
                f"eval: --current {hours_text(plan.target['within_h'])} --baseline "
                f"{hours_text(plan.target['within_h'])}, routes.R.eval_budget as planned, "
                f"eval.min_drop <= {plan.recommended_min_drop:g}"
            )
        )
    return Group(*parts)


def render_markdown(plan: RatePlan) -> str:
    out = [f"### {_title(plan)}", ""]
    rows = [route_row(r) for r in plan.routes]
    out.append(markdown_table(HEADERS, rows))
    notes = _route_notes(plan)
    if notes:
        out += ["", *[f"- {n}" for n in notes]]
    out += [
        "",
        "#### Allocations (* = the plan above)",
        "",
        markdown_table(ALT_HEADERS, alt_rows(plan)),
    ]
    if plan.notes:
        out += ["", *[f"> {n}" for n in plan.notes]]
    return "\n".join(out)


def render_csv(plan: RatePlan) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("allocation", *CSV_KEYS))
    for name, alloc in plan.allocations.items():
        if alloc is None:
            continue
        for r in alloc.routes:
            d = r.as_dict()
            w.writerow((name, *["" if d.get(k) is None else d.get(k) for k in CSV_KEYS]))
    return buf.getvalue()


def render_json(plan: RatePlan) -> str:
    return json.dumps(plan.as_dict(), indent=2, default=str)
