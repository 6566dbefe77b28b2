"""The quality view of an ``eval`` summary: scores with 95 % bands over time, overall
figures, regressions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from llmobs_cli.render.html.fmt import (
    _cell,
    _get,
    _num,
    _pvalue,
    _score,
    _signed,
    _table,
    _x,
    exemplar_table,
    key_label,
)
from llmobs_cli.render.tables import human_number, human_pct, human_usd

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
    wins: Mapping[str, Any] = evals["windows"] if isinstance(evals.get("windows"), Mapping) else {}
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
        "regression_examples": exemplar_table(
            "Judged calls pulling a regressed score down",
            [
                (f"{key_label(r.get('key') or {})} {r.get('evaluator') or ''}".strip(), ex)
                for r in regs
                if r.get("regression", True) is not False
                for ex in (r.get("exemplars") or [])
            ],
            "no example calls",
        ),
    }
