"""Shared renderers: key/value tables (Rich and Markdown), number formatting, and tables
fitted to a width (:func:`fitted_tables`) that never cut a number."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
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


# --- tables that fit ---------------------------------------------------------------------
#
# A table is fitted to a width before Rich sees it: every column gets its natural width
# (numbers are never cut), columns are admitted by priority while they fit, one flexible
# text column may shrink (with an ellipsis) to what is left, and the columns that do not
# fit move to a second table beside the key columns, or are dropped with a note. Rich then
# renders at exactly the planned widths, so nothing inside a number is ever replaced by "…".


@dataclass(frozen=True)
class Col:
    """One column of a fitted table.

    ``priority`` 0 marks key columns (always shown, repeated in a second table); higher
    numbers are dropped first. ``flex`` marks text that may be shortened; numbers never are.
    """

    header: str
    justify: Literal["left", "right"] = "left"
    priority: int = 1
    flex: bool = False
    min_width: int = 12
    style: str | None = None
    name: str | None = None  # the --columns name (default: the header on one line)
    crop: bool = False  # a shortened flexible cell is cut without "…" (ids stay prefixes)
    wrap: bool = False  # may wrap onto more lines at spaces (never inside a word/number)

    @property
    def key(self) -> str:
        return self.name or self.header.replace("\n", " ")


def _table_width(widths: Sequence[int], plain: bool = False) -> int:
    """Rich's default box: a border per column plus one and a space each side of a cell;
    a plain table (no box, no edge padding) has two spaces between columns."""
    if plain:
        return sum(widths) + 2 * max(len(widths) - 1, 0)
    return sum(widths) + 3 * len(widths) + 1


def _natural(col: Col, cells: Sequence[object]) -> int:
    head = max((cell_len(line) for line in col.header.split("\n")), default=0)
    body = max(
        (max((cell_len(x) for x in str(c).split("\n")), default=0) for c in cells), default=0
    )
    return max(head, body, 1)


@dataclass
class Fitted:
    """Which columns each table shows (indices into the columns) and what was left out."""

    tables: list[list[int]]
    widths: list[int]
    dropped: list[str]

    def note(self) -> str | None:
        if not self.dropped:
            return None
        return (
            f"not shown at this width: {', '.join(self.dropped)} "
            "(--wide shows every column, --columns chooses)"
        )


def plan_columns(
    cols: Sequence[Col],
    rows: Sequence[Sequence[object]],
    width: int,
    *,
    wide: bool = False,
    only: Sequence[str] | None = None,
    second_table: bool = True,
    plain: bool = False,
) -> Fitted:
    """Fit ``cols`` into ``width`` characters (see the section comment above)."""
    natural = [_natural(c, [r[i] for r in rows]) for i, c in enumerate(cols)]
    longest_word = [
        max([1, *(cell_len(w) for r in rows for w in str(r[i]).split())]) for i in range(len(cols))
    ]
    widths = list(natural)
    chosen = list(range(len(cols)))
    if only:
        wanted = [n.strip().lower() for n in only]
        chosen = [i for i, c in enumerate(cols) if c.priority == 0 or c.key.lower() in wanted]
    if wide:
        return Fitted([chosen], widths, [])
    keys = [i for i in chosen if cols[i].priority == 0]
    rest = sorted((i for i in chosen if cols[i].priority > 0), key=lambda i: cols[i].priority)

    key_width = [natural[i] for i in chosen if cols[i].priority == 0]

    def min_w(i: int) -> int:
        if cols[i].wrap:
            # Whole lines while the key columns and this one fit side by side; wrapped
            # at spaces (never inside a word or number) only when they cannot.
            if _table_width([*key_width, natural[i]], plain) <= width:
                return natural[i]
            return min(natural[i], max(longest_word[i], cols[i].min_width))
        return min(natural[i], cols[i].min_width) if cols[i].flex else natural[i]

    def admit(base: list[int], pool: list[int]) -> tuple[list[int], list[int]]:
        shown = list(base)
        left: list[int] = []
        for i in pool:
            if _table_width([min_w(j) for j in [*shown, i]], plain) <= width:
                shown.append(i)
            else:
                left.append(i)
        return shown, left

    first, left = admit(keys, rest)
    tables = [sorted(first)]
    dropped: list[int] = []
    if left and second_table:
        second, dropped = admit(keys, left)
        if len(second) > len(keys):
            tables.append(sorted(second))
    else:
        dropped = left
    for shown in tables:
        flex = [i for i in shown if cols[i].flex or cols[i].wrap]
        if flex:
            room = width - _table_width([widths[j] if j not in flex else 0 for j in shown], plain)
            # Every text column starts at its minimum; what is left goes to the rightmost
            # first (the excerpt grows before an id does).
            for i in flex:
                widths[i] = min_w(i)
                room -= widths[i]
            for i in reversed(flex):
                grow = max(min(natural[i] - widths[i], room), 0)
                widths[i] += grow
                room -= grow
    return Fitted(tables, widths, [cols[i].key for i in dropped])


def fitted_tables(
    cols: Sequence[Col],
    rows: Sequence[Sequence[object]],
    width: int,
    *,
    title: str | None = None,
    caption: str | None = None,
    wide: bool = False,
    only: Sequence[str] | None = None,
    second_table: bool = True,
    section_before: int | None = None,
    plain: bool = False,
) -> list[Table]:
    """Rich tables planned by :func:`plan_columns`; the note (if any) joins the caption.

    ``section_before`` draws a rule before that row (the ``all``/``(other)`` totals).
    """
    plan = plan_columns(
        cols, rows, width, wide=wide, only=only, second_table=second_table, plain=plain
    )
    out: list[Table] = []
    for n, shown in enumerate(plan.tables):
        last = n == len(plan.tables) - 1
        cap = caption if last else None
        note = plan.note()
        if last and note:
            cap = f"{cap}\n{note}" if cap else note
        t = Table(
            title=title if n == 0 else None,
            title_justify="left",
            caption=cap,
            caption_justify="left",
            **({"box": None, "pad_edge": False, "header_style": "bold"} if plain else {}),
        )
        for i in shown:
            c = cols[i]
            t.add_column(
                c.header,
                justify=c.justify,
                no_wrap=not c.wrap,
                overflow="fold" if c.wrap else ("crop" if (c.crop or not c.flex) else "ellipsis"),
                width=plan.widths[i],
                style=c.style,
            )
        for r, row in enumerate(rows):
            if section_before is not None and r == section_before:
                t.add_section()
            t.add_row(*(row[i] for i in shown))  # type: ignore[misc]
        out.append(t)
    return out


def output_width(console_width: int, is_terminal: bool, env: Mapping[str, str]) -> int:
    """The width to fit tables to: ``COLUMNS`` when set, the terminal's, else 100."""
    raw = env.get("COLUMNS", "")
    if raw.strip().isdigit() and int(raw) > 20:
        return int(raw)
    return console_width if is_terminal else 100


def exemplar_text(rows: Sequence[Mapping[str, object]], fmt_value: object = None) -> str:
    """``ab12cd34ef56 (7.02s), 0e6fa2340a1b (0.52)``: exemplar trace ids (a 12-character
    prefix, which ``llmobs show`` accepts) with the value that picked them."""
    parts = []
    for r in rows:
        tid = str(r.get("trace_id") or "?")[:12]
        v = r.get("value")
        if v is None:
            parts.append(tid)
        elif callable(fmt_value):
            parts.append(f"{tid} ({fmt_value(v)})")
        elif isinstance(v, float):
            parts.append(f"{tid} ({v:.4g})")
        else:
            parts.append(f"{tid} ({v})")
    return ", ".join(parts)


def show_line(trace_id: str, traces: Sequence[str] | None) -> str:
    """The copyable ``llmobs show`` command for one trace."""
    import shlex

    return shlex.join(["llmobs", "show", trace_id, *(traces or ["TRACES..."])])
