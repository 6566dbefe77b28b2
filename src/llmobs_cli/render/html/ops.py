"""The operations view of a ``report`` document: headline cards, time series per group
(the top :data:`MAX_KEYS` keys, additive metrics of the rest folded into ``(other)``),
latency and cost tables; and the release/model markers drawn on every time chart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmobs_cli.render.html.fmt import _METRICS, _cell, _metric, _num, _table, _when, _x, key_label
from llmobs_cli.render.tables import human_ms, human_number, human_pct, human_usd

#: Keys shown per dimension in time charts; the rest is folded into "(other)" where the
#: metric is additive (cost, calls) and left out elsewhere (a percentile cannot be merged).
MAX_KEYS = 12
OTHER = "(other)"

_ADDITIVE = ("calls", "sampled", "cost_usd")


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
