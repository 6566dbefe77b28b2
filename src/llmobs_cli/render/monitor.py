"""Render a monitor's night: a table of the watched quantities and one line per alarm."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table

from llmobs_cli.core.monitor.run import MonitorResult


def _num(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{v:.3f}"


def _evidence(v: float) -> str:
    return f"{v:.3g}" if v < 1e6 else "> 1e6"


def _status(q: Any) -> str:
    if q.fired_now:
        return "ALARM (fired tonight)"
    if q.alarmed:
        return f"alarm since {q.alarm_night}"
    return "ok"


def rows(res: MonitorResult, top: int = 12) -> list[list[str]]:
    out = []
    for q in res.quantities[:top]:
        out.append(
            [
                q.label,
                str(q.nights),
                _num(q.last),
                _num(q.baseline),
                f"[{_num(q.lo)}, {_num(q.hi)}]" if q.hi < 1.0 or q.lo > 0 else _num(q.lo),
                _evidence(q.evalue),
                f"{q.threshold:.0f}",
                _status(q),
            ]
        )
    return out


HEAD = ["quantity", "nights", "tonight", "baseline", "reference", "evidence", "alarm at", "status"]


def rich_monitor(res: MonitorResult) -> Table:
    t = Table(
        title=(
            f"Monitor ({res.kind}): night {res.nights}, any false alarm over all nights "
            f"≤ {res.alpha:g}" + (" — baseline frozen tonight" if res.started else "")
        ),
        title_justify="left",
    )
    for h in HEAD:
        t.add_column(h, justify="left" if h in ("quantity", "status") else "right")
    for r in rows(res):
        t.add_row(*r)
    return t


def markdown_monitor(res: MonitorResult) -> str:
    from llmobs_cli.render.tables import markdown_table

    head = (
        f"#### Monitor ({res.kind}): night {res.nights}, "
        f"any false alarm over all nights ≤ {res.alpha:g}\n\n"
    )
    return head + markdown_table(HEAD, rows(res))


def lines(res: MonitorResult) -> list[str]:
    """One stderr line per alarm that fired tonight (and a reminder of standing ones)."""
    out = [
        f"llmobs monitor: ALARM {q.label}: tonight {_num(q.last)} vs baseline "
        f"{_num(q.baseline)} (evidence {_evidence(q.evalue)} ≥ {q.threshold:.0f})"
        for q in res.new_alarms
    ]
    if res.standing:
        out.append(
            "llmobs monitor: standing alarm(s): "
            + ", ".join(f"{q.label} since {q.alarm_night}" for q in res.standing)
            + " (--rebaseline re-arms)"
        )
    return out
