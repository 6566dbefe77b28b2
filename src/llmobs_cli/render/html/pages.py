"""The public renderers: one complete HTML document per command (``report``, ``eval``,
``drift``) and for the dashboard."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from llmobs_cli.render.html.drift import drift_view
from llmobs_cli.render.html.fmt import _num, _window_text
from llmobs_cli.render.html.ops import (
    _cost_table,
    _latency_table,
    _ops_cards,
    _short,
    _tokens_series,
    _unpriced_table,
    marker_view,
    ops_series,
)
from llmobs_cli.render.html.page import page
from llmobs_cli.render.html.quality import quality_view
from llmobs_cli.render.html.releases import releases_view
from llmobs_cli.render.tables import human_number

# --- public renderers ----------------------------------------------------------------------


def _report_dims(report: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    fields: list[str] = []
    for g in report.get("groups") or []:
        if isinstance(g.get("key"), Mapping):
            fields = list(g["key"].keys())
            break
    label = " × ".join(fields) if fields else "all"
    return [("+".join(fields) or "all", label, report)]


def report_html(
    report: Mapping[str, Any],
    *,
    title: str | None = None,
    markers: Iterable[Mapping[str, Any]] = (),
    bucket: str | None = None,
) -> str:
    """HTML of one ``llmobs report`` JSON document (see module doc)."""
    dims = _report_dims(report)
    ops = ops_series(dims, bucket or str(report.get("bucket") or "bucket"))
    ops["tokens"] = _tokens_series(report, ops["t"])
    ops["tables"] = {
        "latency": _latency_table(report, f"Latency by {dims[0][1]}"),
        "cost": _cost_table(dims, f"Cost by {dims[0][1]}"),
        "unpriced": _unpriced_table(report),
    }
    alerts = [a for a in report.get("alerts") or [] if isinstance(a, Mapping | str)]
    notes = [_alert_text(a) for a in alerts]
    cards = _ops_cards(report.get("overall") or {})
    if alerts:
        cards.insert(0, {"label": "alerts fired", "value": str(len(alerts)), "cls": "bad"})
    view = {
        "kind": "report",
        "title": title or "llmobs report",
        "header": _window_text(report.get("window")),
        "subtitle": "Population estimates: every row weighted by 1/sample_rate.",
        "cards": cards,
        "notes": notes,
        "markers": list(marker_view(markers)),
        "ops": ops if ops["t"] or report.get("groups") else None,
    }
    return page(view)


def _alert_text(a: Any) -> str:
    if isinstance(a, str):
        return f"ALERT: {a}"
    rule = a.get("rule") or a.get("name") or "alert"
    value = a.get("value")
    return f"ALERT: {rule} (value {value})" if value is not None else f"ALERT: {rule}"


def eval_html(
    evals: Mapping[str, Any],
    *,
    title: str | None = None,
    markers: Iterable[Mapping[str, Any]] = (),
) -> str:
    """HTML of one ``llmobs eval`` / ``eval summarize`` JSON document."""
    q = quality_view(evals)
    judged = sum(
        _num(g.get("judged")) or 0 for g in evals.get("groups") or [] if isinstance(g, Mapping)
    )
    cards = [
        {"label": "judgments", "value": human_number(judged)},
        {
            "label": "regressions",
            "value": str(q["regressions"]),
            "cls": "bad" if q["regressions"] else "",
        },
    ]
    view = {
        "kind": "eval",
        "title": title or "llmobs eval",
        "header": _window_text(evals.get("window") or (evals.get("windows") or {}).get("current")),
        "subtitle": "Quality from judged samples, weighted to the population.",
        "cards": cards,
        "markers": list(marker_view(markers)),
        "quality": q,
    }
    return page(view)


def drift_html(drift: Mapping[str, Any], *, title: str | None = None) -> str:
    """HTML of one ``llmobs drift`` JSON document."""
    d = drift_view(drift)
    cards = [
        {"label": "features tested", "value": str(len(drift.get("features") or []))},
        {"label": "drifted", "value": str(len(d["drifted"])), "cls": "bad" if d["drifted"] else ""},
    ]
    view = {
        "kind": "drift",
        "title": title or "llmobs drift",
        "header": "",
        "subtitle": "Two-window drift tests, weighted by 1/sample_rate.",
        "cards": cards,
        "drift": d,
    }
    return page(view)


def dashboard_view(dash: Mapping[str, Any]) -> dict[str, Any]:
    """The page data of the dashboard (exposed for tests and for size checks)."""
    reports: list[Mapping[str, Any]] = [
        r for r in dash.get("reports") or [] if isinstance(r, Mapping)
    ]
    dims = [(str(r["id"]), str(r["label"]), r["report"]) for r in reports]
    bucket = str(dash.get("bucket") or "day")
    ops = ops_series(dims, bucket) if dims else None
    main = dims[0][2] if dims else {}
    overall = main
    if ops is not None:
        ops["tokens"] = _tokens_series(main, ops["t"])
        model_report = next((r for i, _, r in dims if i == "model"), None)
        ops["tables"] = {
            "latency": _latency_table(main, f"Latency by {dims[0][1]} (whole window)"),
            "cost": _cost_table(
                dims, "Totals over the whole window, by the dimension chosen above"
            ),
            "unpriced": _unpriced_table(main if main.get("unpriced_models") else model_report),
        }
    cards = _ops_cards(overall.get("overall") or {}) if overall else []
    rel = dash.get("releases") or {}
    markers = marker_view(rel.get("markers") or [])
    quality = quality_view(dash["quality"]) if dash.get("quality") else None
    drift = drift_view(dash["drift"]) if dash.get("drift") else None
    if quality is not None:
        cards.append(
            {
                "label": "quality regressions",
                "value": str(quality["regressions"]),
                "cls": "bad" if quality["regressions"] else "",
            }
        )
    if drift is not None:
        cards.append(
            {
                "label": "drifted features",
                "value": str(len(drift["drifted"])),
                "cls": "bad" if drift["drifted"] else "",
                "hint": _short(", ".join(drift["drifted"]), 60),
            }
        )
    n_rel = sum(1 for c in rel.get("changes") or [] if c.get("kind") == "release")
    n_mod = sum(1 for c in rel.get("changes") or [] if c.get("kind") == "model")
    cards.append({"label": "releases / model changes", "value": f"{n_rel} / {n_mod}"})
    notes = [str(n) for n in dash.get("notes") or []]
    for r in overall.get("alerts") or []:
        notes.append(_alert_text(r))
    sources = dash.get("sources") or []
    header = _window_text(dash.get("window") or overall.get("window"))
    if sources:
        header += f" · {len(sources)} source(s): " + ", ".join(str(s) for s in sources[:3])
        header += " ..." if len(sources) > 3 else ""
    return {
        "kind": "dashboard",
        "title": str(dash.get("title") or "llmobs dashboard"),
        "header": header,
        "subtitle": "Population estimates: every row weighted by 1/sample_rate "
        "(1/(sample_rate × eval_rate) for judgments).",
        "cards": cards,
        "notes": notes,
        "markers": markers,
        "ops": ops,
        "quality": quality,
        "drift": drift,
        "releases": releases_view(rel),
    }


def dashboard_html(dash: Mapping[str, Any]) -> str:
    """HTML of the dashboard from ``DashboardResult.as_dict()`` (see module doc)."""
    return page(dashboard_view(dash))
