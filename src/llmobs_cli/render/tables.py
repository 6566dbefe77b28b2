"""Small shared renderers: key/value tables (Rich and Markdown), number formatting."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.table import Table


def key_value_table(title: str, rows: Sequence[tuple[str, str]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for k, v in rows:
        table.add_row(k, v)
    return table


def md_escape(text: object) -> str:
    """Text safe inside a Markdown table cell."""
    return (
        str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")
    )


def render_markdown_kv(title: str, rows: Sequence[tuple[str, str]]) -> str:
    lines = [f"### {md_escape(title)}", "", "| | |", "|---|---|"]
    lines += [f"| {md_escape(k)} | {md_escape(v)} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = ["| " + " | ".join(md_escape(h) for h in headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    out += ["| " + " | ".join(md_escape(c) for c in r) + " |" for r in rows]
    return "\n".join(out) + "\n"


def human_number(x: float | int | None, digits: int = 3) -> str:
    """1234567 → 1.23M; None/NaN → '-'."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    ax = abs(x)
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if ax >= div:
            return f"{x / div:.{digits}g}{unit}"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x)}"
    return f"{x:.{digits}g}"


def human_ms(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x >= 1000:
        return f"{x / 1000:.2f}s"
    return f"{x:.0f}ms"


def human_usd(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if abs(x) >= 100:
        return f"${x:,.0f}"
    if abs(x) >= 1:
        return f"${x:,.2f}"
    return f"${x:.4g}"


def human_pct(x: float | None, digits: int = 1) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x * 100:.{digits}f}%"
