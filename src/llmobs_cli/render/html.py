"""Self-contained offline HTML: the dashboard, and the HTML of ``report``, ``eval`` and ``drift``.

Every page is one file with no external resource: the Plotly bundle
(:func:`plotly.offline.get_plotlyjs`), the CSS and the page script are inlined once, and
all figures are built in the browser from one ``<script type="application/json">`` block.

Contract of the public functions (all return the complete HTML document as ``str``):

* :func:`report_html` — a ``llmobs report`` JSON document (contract keys ``window``,
  ``overall``, ``groups``, ``buckets``, ``alerts``): headline cards, latency and cost over
  time per group (when ``buckets`` are present), group tables.
* :func:`eval_html` — an ``llmobs eval``/``eval summarize`` JSON document (``groups``,
  ``regressions``, ``judge``, optional ``buckets``): scores with 95 % bands over time,
  regressions marked and tabled.
* :func:`drift_html` — an ``llmobs drift`` JSON document (``current``, ``baseline``,
  ``features``, ``drifted``, optional per-feature distributions): the alerts table and,
  for each drifted feature, baseline vs current distributions.
* :func:`dashboard_html` — everything above plus releases, from the dict produced by
  :func:`llmobs_cli.core.dashboard.build.build` (``DashboardResult.as_dict()``).

Safety: trace text (routes, models, releases, customers, prompts, categories...) is
untrusted. It is only ever placed in the JSON data block, escaped so that ``</script>``,
``<!--`` and line separators cannot end or confuse the block (:func:`script_json`); the
page script puts it in the DOM with ``textContent`` and gives it to Plotly entity-escaped.
A Content-Security-Policy allows only the page's own inline scripts (by hash), so even a
markup injection could not run a script, load an image or reach the network.
"""

from __future__ import annotations

import base64
import hashlib
import html
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import cache
from importlib import resources
from typing import Any

from llmobs_cli import __version__
from llmobs_cli.render.tables import human_ms, human_number, human_pct, human_usd

#: Keys shown per dimension in time charts; the rest is folded into "(other)" where the
#: metric is additive (cost, calls) and left out elsewhere (a percentile cannot be merged).
MAX_KEYS = 12
OTHER = "(other)"

# metric name in the page → path in a report metrics object (contract section 2).
_METRICS: dict[str, tuple[tuple[str, ...], ...]] = {
    "calls": (("calls",),),
    "sampled": (("sampled",),),
    "cost_usd": (("cost_usd",),),
    "cost_per_call_usd": (("cost_per_call_usd",),),
    "cache_hit_rate": (("cache_hit_rate",),),
    "error_rate": (("error_rate",),),
    "refusal_rate": (("refusal_rate",),),
    "input_tokens": (("input_tokens",),),
    "output_tokens": (("output_tokens",),),
    "cached_tokens": (("cached_tokens",),),
    "unpriced_calls": (("unpriced_calls",), ("unpriced",), ("unpriced", "calls")),
    "latency_p50": (("latency_ms", "p50"),),
    "latency_p95": (("latency_ms", "p95"),),
    "latency_p99": (("latency_ms", "p99"),),
    "ttft_p50": (("ttft_ms", "p50"),),
    "ttft_p95": (("ttft_ms", "p95"),),
    "ttft_p99": (("ttft_ms", "p99"),),
}
_ADDITIVE = ("calls", "sampled", "cost_usd")


# --- JSON for a <script> block ------------------------------------------------------------


def _clean(obj: Any, digits: int = 6) -> Any:
    """JSON-ready copy: NaN/inf → null, datetimes → ISO text, floats to ``digits`` significant."""
    if isinstance(obj, float):
        if math.isnan(obj) or math.isinf(obj):
            return None
        return float(f"{obj:.{digits}g}")
    if isinstance(obj, bool | int | str) or obj is None:
        return obj
    if isinstance(obj, Mapping):
        return {str(k): _clean(v, digits) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v, digits) for v in obj]
    if isinstance(obj, datetime | date):
        return obj.isoformat()
    if hasattr(obj, "item"):  # numpy scalars
        return _clean(obj.item(), digits)
    return str(obj)


_JSON_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def script_json(obj: Any) -> str:
    """``obj`` as JSON that is safe verbatim inside ``<script type="application/json">``.

    ``<``, ``>`` and ``&`` become ``\\u003c``/``\\u003e``/``\\u0026`` (so neither
    ``</script>`` nor ``<!--`` can appear), and U+2028/U+2029 are escaped too; ``JSON.parse``
    gives back the exact text.
    """
    text = json.dumps(_clean(obj), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return "".join(_JSON_ESCAPES.get(ch, ch) for ch in text) if _needs_escape(text) else text


def _needs_escape(text: str) -> bool:
    return any(ch in text for ch in _JSON_ESCAPES)


# --- the page -------------------------------------------------------------------------------


@cache
def _asset(name: str) -> str:
    return resources.files("llmobs_cli.render").joinpath("html_assets", name).read_text("utf-8")


@cache
def _plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
    # The bundle is inlined verbatim: make sure it cannot close its own <script> element.
    if "</script" in js.lower():  # pragma: no cover - not the case for any Plotly release
        js = js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    return js


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def page(view: Mapping[str, Any]) -> str:
    """The whole HTML document for a page ``view`` (built by the ``*_html`` functions)."""
    title = str(view.get("title") or "llmobs")
    plotly_js = _plotly_js()
    app_js = _asset("dashboard.js")
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src '{_sha256(plotly_js)}' '{_sha256(app_js)}'",
            # Plotly writes its own <style> and inline style attributes at run time.
            "style-src 'unsafe-inline'",
            "img-src data: blob:",
            "font-src data:",
            "connect-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
            f'<meta http-equiv="Content-Security-Policy" content="{html.escape(csp)}">\n',
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
            f'<meta name="generator" content="llmobs {html.escape(__version__)}">\n',
            f"<title>{html.escape(title)}</title>\n",
            f"<style>\n{_asset('dashboard.css')}</style>\n</head>\n<body>\n",
            f"<header><h1>{html.escape(title)}</h1>",
            '<div class="meta" id="subtitle"></div></header>\n',
            '<nav id="nav"></nav>\n<main id="app">',
            "<noscript><p>This dashboard draws its charts with JavaScript; "
            "please enable it for this file.</p></noscript></main>\n",
            f"<footer>Generated by llmobs {html.escape(__version__)}. "
            "Offline file: no network access, all data embedded.</footer>\n",
            f'<script type="application/json" id="llmobs-data">{script_json(view)}</script>\n',
            f"<script>{plotly_js}</script>\n",
            f"<script>{app_js}</script>\n",
            "</body>\n</html>\n",
        ]
    )


# --- helpers --------------------------------------------------------------------------------


def _get(d: Mapping[str, Any] | None, *paths: tuple[str, ...]) -> Any:
    for path in paths:
        cur: Any = d
        for p in path:
            if not isinstance(cur, Mapping) or p not in cur:
                cur = None
                break
            cur = cur[p]
        if cur is not None and not isinstance(cur, Mapping):
            return cur
    return None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) or math.isinf(v) else v


def _x(ts: Any) -> str | None:
    """A time for Plotly: ``YYYY-MM-DD HH:MM:SS`` in UTC (Plotly has no time zones)."""
    if ts is None:
        return None
    if isinstance(ts, datetime):
        dt = ts
    else:
        try:
            dt = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
        except ValueError:
            return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(UTC).replace(tzinfo=None)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def _when(ts: Any) -> str:
    x = _x(ts)
    if x is None:
        return "-"
    return x[:-3] if not x.endswith("00:00:00") else x[:10]


def key_label(key: Any) -> str:
    """A group key ``{"route": "chat", "model": "x"}`` → ``chat · x`` (null → ``(none)``)."""
    if isinstance(key, Mapping):
        if not key:
            return "all"
        return " · ".join("(none)" if v is None else str(v) for v in key.values())
    return "(none)" if key is None else str(key)


def _metric(m: Mapping[str, Any] | None, name: str) -> float | None:
    return _num(_get(m, *_METRICS[name]))


def _cell(text: str, cls: str | None = None) -> str | dict[str, str]:
    return {"t": text, "c": cls} if cls else text


def _table(
    title: str,
    columns: Sequence[str],
    rows: list[list[Any]],
    *,
    num: Sequence[bool] | None = None,
    wrap: Sequence[bool] | None = None,
    empty: str = "nothing to show",
) -> dict[str, Any]:
    return {
        "title": title,
        "columns": list(columns),
        "rows": rows,
        "num": list(num) if num else [],
        "wrap": list(wrap) if wrap else [],
        "empty": empty,
    }


def _pvalue(p: Any) -> str:
    v = _num(p)
    if v is None:
        return "-"
    if v < 1e-10:
        return "<1e-10"
    return f"{v:.2g}" if v < 0.01 else f"{v:.3f}"


def _score(x: Any) -> str:
    v = _num(x)
    return "-" if v is None else f"{v:.3f}"


def _signed_pct(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == 0:
        return ""
    return f" ({(after - before) / abs(before) * 100:+.0f}%)"


# --- ops (report) view ----------------------------------------------------------------------


def _bucket_rows(report: Mapping[str, Any]) -> Iterable[tuple[str, Any, Mapping[str, Any]]]:
    """``(time, key, metrics)`` of every bucket entry.

    Accepts the report core's shape (``{"start", "end", "overall": M, "groups": [M+key]}``,
    where a report without ``--by`` groups has only ``overall``) and a flat one
    (``{"start", "key", ...M}`` per bucket and group).
    """
    for entry in report.get("buckets") or []:
        if not isinstance(entry, Mapping):
            continue
        t = _x(entry.get("start") or entry.get("bucket") or entry.get("time"))
        if t is None:
            continue
        nested = entry.get("groups")
        if isinstance(nested, list):
            if nested:
                for g in nested:
                    if isinstance(g, Mapping):
                        yield t, g.get("key") or {}, g
            elif isinstance(entry.get("overall"), Mapping):
                yield t, {}, entry["overall"]
        else:
            yield t, entry.get("key") or {}, entry


def _bucket_overall(report: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Per bucket time: the bucket's overall metrics (or token totals summed over groups)."""
    out: dict[str, Mapping[str, Any]] = {}
    summed: dict[str, dict[str, float]] = {}
    for entry in report.get("buckets") or []:
        if not isinstance(entry, Mapping):
            continue
        t = _x(entry.get("start") or entry.get("bucket") or entry.get("time"))
        if t is not None and isinstance(entry.get("overall"), Mapping):
            out[t] = entry["overall"]
    if out:
        return out
    for t, _, m in _bucket_rows(report):
        acc = summed.setdefault(t, {})
        for k in ("input_tokens", "output_tokens", "cached_tokens"):
            acc[k] = acc.get(k, 0.0) + (_num(m.get(k)) or 0.0)
    return dict(summed)


def ops_series(
    dims: Sequence[tuple[str, str, Mapping[str, Any]]], bucket: str = "day"
) -> dict[str, Any]:
    """Columnar time series for the page from report documents, one per dimension.

    ``dims`` holds ``(id, label, report_dict)``; keys are ordered by calls (cost for the
    cost dimensions would be equivalent to within a few places) and capped at
    :data:`MAX_KEYS`, additive metrics of the rest folded into ``(other)``.
    """
    times: set[str] = set()
    per_dim: list[tuple[str, str, dict[str, dict[str, Mapping[str, Any]]], list[str], int]] = []
    for dim_id, label, report in dims:
        cells: dict[str, dict[str, Mapping[str, Any]]] = {}
        for t, key, m in _bucket_rows(report):
            times.add(t)
            cells.setdefault(key_label(key), {})[t] = m
        totals: dict[str, float] = {}
        for g in report.get("groups") or []:
            totals[key_label(g.get("key"))] = _metric(g, "calls") or 0.0
        for k, by_t in cells.items():
            totals.setdefault(k, sum(_metric(m, "calls") or 0.0 for m in by_t.values()))
        order = sorted((k for k in cells if k != OTHER), key=lambda k: (-totals.get(k, 0.0), k))
        folded = int(_num(report.get("folded_into_other")) or 0)
        if OTHER in cells:  # folded upstream (the dashboard core): keep it last
            order.append(OTHER)
        per_dim.append((dim_id, label, cells, order, folded))
    t_axis = sorted(times)
    out_dims = []
    for dim_id, label, cells, order, folded in per_dim:
        if folded:
            shown, rest = order, []
        else:
            shown, rest = order[:MAX_KEYS], order[MAX_KEYS:]
        series: dict[str, list[list[float | None]]] = {}
        for name in _METRICS:
            rows = [[_metric(cells[k].get(t), name) for t in t_axis] for k in shown]
            if rest and name in _ADDITIVE:
                rows.append(
                    [
                        sum(_metric(cells[k].get(t), name) or 0.0 for k in rest) or None
                        for t in t_axis
                    ]
                )
            series[name] = rows
        keys = shown + ([OTHER] if rest else [])
        if folded:
            note = (
                f"{label}: the {len(shown) - 1} most expensive are drawn; the other {folded} "
                f"are one {OTHER} series."
            )
        elif rest:
            note = (
                f"{label}: the {len(shown)} largest of {len(order)} by calls are drawn; "
                f"cost and calls of the other {len(rest)} are summed as {OTHER}."
            )
        else:
            note = ""
        out_dims.append(
            {"id": dim_id, "label": label, "keys": keys, "series": series, "note": note}
        )
    return {"t": t_axis, "dims": out_dims, "bucket": bucket}


def _tokens_series(report: Mapping[str, Any], t_axis: list[str]) -> dict[str, list[Any]]:
    by_t = _bucket_overall(report)
    inp = [_metric(by_t.get(t), "input_tokens") for t in t_axis]
    cached = [_metric(by_t.get(t), "cached_tokens") for t in t_axis]
    out = [_metric(by_t.get(t), "output_tokens") for t in t_axis]
    uncached = [None if i is None else i - (c or 0.0) for i, c in zip(inp, cached, strict=True)]
    return {"uncached_input": uncached, "cached": cached, "output": out}


def _latency_table(report: Mapping[str, Any], title: str) -> dict[str, Any]:
    rows = []
    groups = list(report.get("groups") or [])
    items = [("all", report.get("overall") or {})] + [(key_label(g.get("key")), g) for g in groups]
    for label, m in items:
        rows.append(
            [
                label,
                human_number(_metric(m, "sampled")),
                human_number(_metric(m, "calls")),
                human_ms(_metric(m, "latency_p50")),
                human_ms(_metric(m, "latency_p95")),
                human_ms(_metric(m, "latency_p99")),
                human_ms(_metric(m, "ttft_p50")),
                human_ms(_metric(m, "ttft_p95")),
                human_pct(_metric(m, "error_rate")),
                human_pct(_metric(m, "refusal_rate")),
            ]
        )
    return _table(
        title,
        [
            "group",
            "sampled",
            "calls",
            "P50",
            "P95",
            "P99",
            "TTFT P50",
            "TTFT P95",
            "errors",
            "refusals",
        ],
        rows,
        num=[False] + [True] * 9,
    )


def _cost_table(dims: Sequence[tuple[str, str, Mapping[str, Any]]], title: str) -> dict[str, Any]:
    rows = []
    for _, label, report in dims:
        groups = sorted(report.get("groups") or [], key=lambda g: -(_metric(g, "cost_usd") or 0.0))
        total = _metric(report.get("overall"), "cost_usd")
        if total is None:  # a dimension's document without overall: its groups add up
            total = sum(_metric(g, "cost_usd") or 0.0 for g in groups)
        for g in groups[:MAX_KEYS]:
            cost = _metric(g, "cost_usd")
            unpriced = _metric(g, "unpriced_calls")
            rows.append(
                [
                    label,
                    key_label(g.get("key")),
                    human_number(_metric(g, "calls")),
                    human_usd(cost),
                    human_pct(cost / total) if cost is not None and total > 0 else "-",
                    human_usd(_metric(g, "cost_per_call_usd")),
                    human_number(_metric(g, "input_tokens")),
                    human_number(_metric(g, "output_tokens")),
                    human_pct(_metric(g, "cache_hit_rate")),
                    _cell(human_number(unpriced), "bad") if unpriced else human_number(unpriced),
                ]
            )
        if len(groups) > MAX_KEYS:
            rows.append(
                [label, f"... {len(groups) - MAX_KEYS} more", "", "", "", "", "", "", "", ""]
            )
    return _table(
        title,
        [
            "by",
            "value",
            "calls",
            "cost",
            "share",
            "$/call",
            "input tok",
            "output tok",
            "cache hit",
            "unpriced",
        ],
        rows,
        num=[False, False] + [True] * 8,
        wrap=[False, True],
    )


def _unpriced_table(report: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Unpriced calls by model: the report's ``unpriced_models`` list, else its model groups."""
    if report is None:
        return None
    rows = []
    listed = report.get("unpriced_models")
    if isinstance(listed, list) and listed:
        for u in listed:
            if isinstance(u, Mapping):
                rows.append(
                    [
                        "(none)" if u.get("model") is None else str(u.get("model")),
                        _cell(human_number(_num(u.get("calls"))), "bad"),
                        human_number(_num(u.get("sampled"))),
                    ]
                )
    else:
        for g in report.get("groups") or []:
            n = _metric(g, "unpriced_calls")
            if n:
                rows.append(
                    [
                        key_label(g.get("key")),
                        _cell(human_number(n), "bad"),
                        human_number(_num(g.get("unpriced_sampled"))),
                    ]
                )
    if not rows:
        return None
    return _table(
        "Unpriced calls (no cost_usd in the record and no price for the model: not counted as $0)",
        ["model", "unpriced calls (estimated)", "rows sampled"],
        rows,
        num=[False, True, True],
    )


def _ops_cards(overall: Mapping[str, Any]) -> list[dict[str, Any]]:
    unpriced = _metric(overall, "unpriced_calls")
    return [
        {
            "label": "calls (estimated)",
            "value": human_number(_metric(overall, "calls")),
            "hint": f"{human_number(_metric(overall, 'sampled'))} rows sampled",
        },
        {"label": "total cost", "value": human_usd(_metric(overall, "cost_usd"))},
        {"label": "cost per call", "value": human_usd(_metric(overall, "cost_per_call_usd"))},
        {
            "label": "latency P50 / P95 / P99",
            "value": " / ".join(human_ms(_metric(overall, f"latency_p{q}")) for q in (50, 95, 99)),
        },
        {
            "label": "TTFT P50 / P95",
            "value": " / ".join(human_ms(_metric(overall, f"ttft_p{q}")) for q in (50, 95)),
        },
        {"label": "error rate", "value": human_pct(_metric(overall, "error_rate"))},
        {"label": "refusal rate", "value": human_pct(_metric(overall, "refusal_rate"))},
        {
            "label": "cache hit rate",
            "value": human_pct(_metric(overall, "cache_hit_rate")),
            "hint": "cached ÷ input tokens",
        },
        {
            "label": "unpriced calls",
            "value": human_number(unpriced) if unpriced is not None else "-",
            "cls": "bad" if unpriced else "",
            "hint": "no cost and no price for the model" if unpriced else "",
        },
    ]


def _window_text(window: Mapping[str, Any] | None) -> str:
    if not window:
        return ""
    return f"{_when(window.get('start'))} → {_when(window.get('end'))} UTC"


# --- markers --------------------------------------------------------------------------------


def _short(text: str, n: int = 22) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def marker_view(markers: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Release/model markers (``ReleaseResult.as_dict()["markers"]``) for the charts."""
    out = []
    for m in markers:
        x = _x(m.get("at"))
        if x is None:
            continue
        routes = ", ".join(str(r) for r in m.get("routes") or [])
        kind = str(m.get("kind") or "release")
        after = str(m.get("after"))
        before = "(none)" if m.get("before") is None else str(m.get("before"))
        out.append(
            {
                "kind": kind,
                "x": x,
                "short": _short(after),
                "label": f"{kind} {before} → {after} on {routes or 'all routes'} "
                f"at {_when(m.get('at'))}",
            }
        )
    return out


# --- quality (eval) view --------------------------------------------------------------------


def _eval_rows(evals: Mapping[str, Any]) -> Iterable[tuple[str, str, Mapping[str, Any]]]:
    """``(time, key label, entry)`` of eval bucket entries (flat or nested in groups)."""
    for entry in evals.get("buckets") or evals.get("series") or []:
        if not isinstance(entry, Mapping):
            continue
        t = _x(entry.get("start") or entry.get("bucket") or entry.get("time"))
        if t is None:
            continue
        nested = entry.get("groups")
        if isinstance(nested, list):
            for g in nested:
                if isinstance(g, Mapping):
                    yield t, key_label(g.get("key") or {}), g
        else:
            yield t, key_label(entry.get("key") or {}), entry


def quality_view(evals: Mapping[str, Any]) -> dict[str, Any]:
    """Charts (score with 95 % band per key × evaluator over time) and tables of an eval doc."""
    series: dict[str, dict[str, dict[str, Mapping[str, Any]]]] = {}
    times: set[str] = set()
    for t, key, e in _eval_rows(evals):
        ev = str(e.get("evaluator") or "score")
        series.setdefault(ev, {}).setdefault(key, {})[t] = e
        times.add(t)
    t_axis = sorted(times)
    charts = []
    for ev in sorted(series):
        by_key = series[ev]
        lines = []
        for key in sorted(by_key):
            cells = by_key[key]
            ts = [t for t in t_axis if t in cells]
            lines.append(
                {
                    "key": key,
                    "t": ts,
                    "score": [_num(cells[t].get("score")) for t in ts],
                    "lo": [_num(cells[t].get("ci_low")) for t in ts],
                    "hi": [_num(cells[t].get("ci_high")) for t in ts],
                    "n": [cells[t].get("judged", cells[t].get("n")) for t in ts],
                }
            )
        charts.append({"evaluator": ev, "series": lines})

    # ``tests`` (every test, the eval core's summary) or ``regressions`` (the contract).
    regs = [
        r for r in (evals.get("tests") or evals.get("regressions") or []) if isinstance(r, Mapping)
    ]
    flagged = [r for r in regs if r.get("regression", True) is not False]
    marks = []
    windows: list[list[str]] = []
    # The current window of a window test (the eval core's ``windows``), shaded.
    wins = evals.get("windows") if isinstance(evals.get("windows"), Mapping) else {}
    cur_win = wins.get("current")
    if flagged and "baseline" in wins and isinstance(cur_win, Mapping):
        ws, we = _x(cur_win.get("start")), _x(cur_win.get("end"))
        if ws and we:
            windows.append([ws, we])
    for r in flagged:
        key = key_label(r.get("key") or {})
        ev = str(r.get("evaluator") or "score")
        cur = r.get("current") if isinstance(r.get("current"), Mapping) else {}
        y = _num(_get(r, ("current_score",), ("current", "score"), ("current",), ("score",)))
        x = None
        start, end = _x(_get(cur, ("start",))), _x(_get(cur, ("end",)))
        if start and end and [start, end] not in windows:
            windows.append([start, end])
        cells = series.get(ev, {}).get(key, {})
        span = windows[0] if windows else None
        if span is not None:  # the test's current score, at the middle of its window
            a, b = datetime.fromisoformat(span[0]), datetime.fromisoformat(span[1])
            x = (a + (b - a) / 2).strftime("%Y-%m-%d %H:%M:%S")
        elif cells:
            x = max(cells)
        if y is None and cells:
            y = _num(cells[max(cells)].get("score"))
        if x is not None and y is not None:
            marks.append({"evaluator": ev, "key": key, "x": x, "y": y})
    group_rows = []
    for g in evals.get("groups") or []:
        if not isinstance(g, Mapping):
            continue
        lo, hi = _num(g.get("ci_low")), _num(g.get("ci_high"))
        group_rows.append(
            [
                key_label(g.get("key") or {}),
                str(g.get("evaluator") or "-"),
                human_number(_num(g.get("judged"))),
                human_number(_num(g.get("n_eff"))),
                _score(g.get("score")),
                f"[{_score(lo)}, {_score(hi)}]",
                human_pct(_num(g.get("error_rate"))) if g.get("error_rate") is not None else "-",
            ]
        )
    reg_rows = []
    for r in regs:
        is_reg = r.get("regression", True) is not False
        underpowered = bool(r.get("underpowered"))
        status = "REGRESSION" if is_reg else ("underpowered" if underpowered else "ok")
        reg_rows.append(
            [
                key_label(r.get("key") or {}),
                str(r.get("evaluator") or "-"),
                _score(_get(r, ("baseline_score",), ("baseline", "score"), ("baseline",))),
                _score(_get(r, ("current_score",), ("current", "score"), ("current",))),
                _signed(_num(r.get("delta"))),
                _pvalue(_get(r, ("p_adjusted",), ("q_value",), ("p_value",))),
                _score(r.get("mde")),
                _cell(status, "bad" if is_reg else ("warn" if underpowered else "good")),
            ]
        )
    judge = evals.get("judge") if isinstance(evals.get("judge"), Mapping) else {}
    notes = []
    if judge:
        notes.append(
            f"Judge: {human_number(_num(judge.get('calls')))} calls, "
            f"{human_number(_num(judge.get('cached')))} cached, "
            f"{human_number(_num(judge.get('failed')))} failed, "
            f"cost {human_usd(_num(judge.get('cost_usd')))}."
        )
    notes += [str(n) for n in evals.get("notes") or [] if isinstance(n, str)]
    if not charts:
        notes.append("No time series in the judgments (a single window): see the table.")
    return {
        "note": "Weighted mean judge scores (0–1) per group and evaluator, each judgment weighted "
        "1/(sample_rate × eval_rate), with 95 % confidence bands; hover a point for the "
        "number of judgments.",
        "notes": notes,
        "charts": charts,
        "regression_marks": marks,
        "current_windows": windows,
        "table": _table(
            "Scores per group and evaluator",
            ["group", "evaluator", "judged", "n_eff", "score", "95% CI", "judge errors"],
            group_rows,
            num=[False, False, True, True, True, False, True],
            empty="no judgments",
        )
        if group_rows
        else None,
        "regressions_table": _table(
            "Regression tests (current vs baseline window)",
            ["group", "evaluator", "baseline", "current", "Δ", "p (BH)", "MDE", "status"],
            reg_rows,
            num=[False, False, True, True, True, True, True, False],
        )
        if reg_rows
        else None,
        "regressions": len(flagged),
    }


def _score_ci(side: Mapping[str, Any]) -> str:
    lo, hi = _score(side.get("ci_low")), _score(side.get("ci_high"))
    return f"{_score(side.get('score'))} [{lo}, {hi}] n={side.get('judged', 0)}"


def _signed(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:+.{digits}f}"


# --- drift view -----------------------------------------------------------------------------


def _group_text(group: Any) -> str:
    return "all" if not group else key_label(group)


def _distribution(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """Normalise one feature's baseline/current distribution to labels and two share lists."""
    dist = entry.get("distribution") if isinstance(entry.get("distribution"), Mapping) else entry
    base, cur = dist.get("baseline"), dist.get("current")
    edges: Any = None
    if isinstance(base, Mapping) and isinstance(cur, Mapping) and not dist.get("labels"):
        # {"baseline": {label: share}, "current": {label: share}}
        labels = list(dict.fromkeys([*base.keys(), *cur.keys()]))
        base = [base.get(k, 0.0) for k in labels]
        cur = [cur.get(k, 0.0) for k in labels]
    else:
        labels = dist.get("labels") or dist.get("categories")
        edges = dist.get("edges") or dist.get("bins")
        if labels is not None:
            edges = None
        if labels is None and isinstance(edges, list) and len(edges) >= 2:
            labels = [f"{_edge(a)}–{_edge(b)}" for a, b in itertools.pairwise(edges)]
    if not isinstance(labels, list) or not isinstance(base, list) or not isinstance(cur, list):
        return None
    if not (len(labels) == len(base) == len(cur)) or not labels:
        return None
    b = [_num(v) or 0.0 for v in base]
    c = [_num(v) or 0.0 for v in cur]
    sb, sc = sum(b), sum(c)
    if sb > 1.0001 or sc > 1.0001:  # counts or weights: turn into shares
        b = [v / sb if sb else 0.0 for v in b]
        c = [v / sc if sc else 0.0 for v in c]
    names = [str(x) for x in labels]
    if edges is not None:
        # Bins empty in both windows (a discrete feature on fine bins) carry nothing.
        keep = [i for i in range(len(names)) if b[i] > 0 or c[i] > 0] or list(range(len(names)))
        names, b, c = [names[i] for i in keep], [b[i] for i in keep], [c[i] for i in keep]
    return {"labels": names, "baseline": b, "current": c}


def _edge(x: Any) -> str:
    v = _num(x)
    if v is None:
        return str(x)
    return human_number(v, 3)


def drift_view(drift: Mapping[str, Any]) -> dict[str, Any]:
    feats = [f for f in drift.get("features") or [] if isinstance(f, Mapping)]
    feats.sort(
        key=lambda f: (not f.get("drifted"), f.get("group") is not None, str(f.get("feature")))
    )
    rows = []
    for f in feats:
        status = "DRIFT" if f.get("drifted") else (str(f.get("note") or f.get("status") or "ok"))
        rows.append(
            [
                str(f.get("feature")),
                _group_text(f.get("group")),
                str(f.get("test") or "-"),
                _score(f.get("statistic")),
                _pvalue(_get(f, ("p_adjusted",), ("p_value",))),
                _score(f.get("effect_size")),
                str(f.get("summary") or f.get("description") or ""),
                _cell(
                    status, "bad" if f.get("drifted") else ("warn" if status != "ok" else "good")
                ),
            ]
        )
    dists = []
    extra = drift.get("distributions")
    sources: list[Mapping[str, Any]] = []
    if isinstance(extra, list):
        sources = [d for d in extra if isinstance(d, Mapping)]
    else:
        sources = [f for f in feats if f.get("drifted")]
    for d in sources:
        if d.get("drifted") is False:
            continue
        norm = _distribution(d)
        if norm is None:
            continue
        name = str(d.get("feature"))
        grp = _group_text(d.get("group"))
        norm["title"] = name if grp == "all" else f"{name} ({grp})"
        norm["subtitle"] = str(d.get("summary") or "")
        norm["xlabel"] = str(d.get("unit") or ("bin" if d.get("edges") else ""))
        dists.append(norm)
    cur = drift.get("current") or {}
    base = drift.get("baseline") or {}
    drifted = [str(x) for x in drift.get("drifted") or []]

    def wtext(w: Mapping[str, Any]) -> str:
        return (
            f"{_window_text(w)} ({human_number(_num(w.get('sampled')))} rows, "
            f"{human_number(_num(w.get('calls')))} calls)"
        )

    note = f"Current {wtext(cur)} vs baseline {wtext(base)}. " if cur or base else ""
    note += (
        "A feature drifts when its Benjamini–Hochberg-corrected p-value is below alpha and its "
        "effect size passes its floor; tests are weighted by 1/sample_rate."
    )
    return {
        "note": note,
        "notes": [f"Drifted: {', '.join(drifted)}."] if drifted else ["Nothing drifted."],
        "table": _table(
            "Drift tests",
            ["feature", "group", "test", "statistic", "p (BH)", "effect", "change", "status"],
            rows,
            num=[False, False, False, True, True, True, False, False],
            wrap=[False, True, False, False, False, False, True, False],
            empty="no feature tested",
        ),
        "distributions": dists,
        "drifted": drifted,
        "empty": "No drifted feature: no distribution to compare.",
    }


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
