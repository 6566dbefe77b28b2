"""The releases view: per release, the report metrics and quality next to the previous
release."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmobs_cli.render.html.fmt import (
    _cell,
    _get,
    _num,
    _pvalue,
    _score_ci,
    _signed,
    _signed_pct,
    _table,
    _when,
)
from llmobs_cli.render.tables import human_ms, human_number, human_pct, human_usd

# --- releases view --------------------------------------------------------------------------


def releases_view(rel: Mapping[str, Any]) -> dict[str, Any]:
    changes = rel.get("changes") or []
    change_rows = [
        [
            _when(c.get("at")),
            str(c.get("kind")),
            str(c.get("route")),
            str(c.get("before") or "(none)"),
            str(c.get("after")),
        ]
        for c in changes
    ]
    cmp_rows = []
    q_rows = []
    for c in rel.get("comparisons") or []:
        b, a = c.get("before_stats") or {}, c.get("after_stats") or {}
        what = f"{c.get('kind')} {c.get('before') or '(none)'} → {c.get('after')}"

        def pair(
            path: tuple[str, ...], fmt: Any, b: Mapping[str, Any] = b, a: Mapping[str, Any] = a
        ) -> str:
            vb, va = _num(_get(b, path)), _num(_get(a, path))
            return f"{fmt(vb)} → {fmt(va)}{_signed_pct(vb, va)}"

        cmp_rows.append(
            [
                str(c.get("route")),
                what,
                _when(c.get("at")),
                f"{human_number(_num(b.get('calls')))} → {human_number(_num(a.get('calls')))}",
                pair(("latency_ms", "p50"), human_ms),
                pair(("latency_ms", "p95"), human_ms),
                pair(("latency_ms", "p99"), human_ms),
                pair(("cost_per_call_usd",), human_usd),
                pair(("error_rate",), human_pct),
            ]
        )
        for q in c.get("quality") or []:
            qb, qa = q.get("before") or {}, q.get("after") or {}
            delta = _num(q.get("delta"))
            p = _num(q.get("p_value"))
            worse = delta is not None and delta < 0 and p is not None and p < 0.05
            better = delta is not None and delta > 0 and p is not None and p < 0.05
            q_rows.append(
                [
                    str(c.get("route")),
                    what,
                    str(q.get("evaluator")),
                    _score_ci(qb),
                    _score_ci(qa),
                    _cell(_signed(delta), "bad" if worse else ("good" if better else None)),
                    _pvalue(p),
                ]
            )
    days = _num(rel.get("window_days")) or 7
    return {
        "note": "Every first appearance of a release or a model on a route; each is drawn as a "
        "vertical line on every time chart.",
        "changes_table": _table(
            "Changes",
            ["first seen (UTC)", "kind", "route", "before", "after"],
            change_rows,
            wrap=[False, False, True, True, True],
            empty="No release or model change in the data.",
        ),
        "compare_table": _table(
            "Before / after (operations)",
            ["route", "change", "at", "calls", "P50", "P95", "P99", "$/call", "errors"],
            cmp_rows,
            wrap=[],
        )
        if cmp_rows
        else None,
        "compare_notes": [
            f"Before: the route's rows with the previous value in the {days:g} days before the "
            f"change; after: rows with the new value in the {days:g} days from it. Weighted by "
            "1/sample_rate."
        ],
        "quality_table": _table(
            "Before / after (quality, 95% CI; Δ in bold red when significantly worse, p < 0.05)",
            ["route", "change", "evaluator", "before", "after", "Δ", "p"],
            q_rows,
            num=[False, False, False, False, False, True, True],
            wrap=[],
        )
        if q_rows
        else None,
    }
