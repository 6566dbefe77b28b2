"""Time windows: ``--since/--until``, named rolling windows and ``START..END``.

"now" is ``--now`` when given, else the latest ``timestamp`` in the data (so a dump from
last year still has a meaningful ``last_week``). Named windows end at the start of the
window they are compared with: ``--current last_week --baseline last_month`` is the last
7 days and the 30 days before them. All windows are half-open ``[start, end)`` in UTC;
``end`` of a window ending at "now" is just after the latest timestamp, so the newest
call is included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from llmobs_cli.errors import UsageError

NAMED: dict[str, timedelta] = {
    "last_hour": timedelta(hours=1),
    "last_day": timedelta(days=1),
    "last_week": timedelta(days=7),
    "last_month": timedelta(days=30),
    "last_quarter": timedelta(days=90),
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
EPSILON = timedelta(microseconds=1)


@dataclass(frozen=True)
class Window:
    """A half-open UTC time interval; either bound may be open (None)."""

    start: datetime | None
    end: datetime | None
    name: str | None = None

    def contains(self, column: str = "timestamp") -> pl.Expr:
        """True for the rows whose ``column`` lies in ``[start, end)`` (an open side holds
        every row; a null time is in no window that has a bound)."""
        e = pl.lit(True)
        if self.start is not None:
            e = e & (pl.col(column) >= self.start)
        if self.end is not None:
            e = e & (pl.col(column) < self.end)
        return e

    def as_dict(self) -> dict[str, str | None]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


def parse_duration(text: str, option: str = "") -> timedelta | None:
    """``7d``, ``24h``, ``90m``, ``2w`` → timedelta; None if ``text`` is not a duration."""
    m = _DURATION.match(text)
    if not m:
        return None
    try:
        return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2).lower()])
    except OverflowError:
        where = f"{option}: " if option else ""
        raise UsageError(
            f"{where}'{text.strip()}': a duration longer than any calendar", param=option or None
        ) from None


def is_duration(text: str) -> bool:
    """Whether ``text`` is spelled as a duration (``7d``), whatever its size."""
    return bool(_DURATION.match(text))


def _back(moment: datetime, span: timedelta, option: str, text: str) -> datetime:
    """``moment - span``; a span reaching before year 1 is a usage error, not a crash."""
    try:
        return moment - span
    except OverflowError:
        raise UsageError(
            f"{option}: '{text}' reaches back before the year 1", param=option
        ) from None


def parse_time(text: str, option: str = "--since") -> datetime:
    """An RFC 3339 date or time (UTC when no offset) → aware datetime.

    ``option`` names the parameter in the error (``"since"``; the CLI shows ``--since``)."""
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"{option}: not an RFC 3339 time or a duration like 7d/24h ('{text}')", param=option
        ) from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def resolve_bound(text: str | None, now: datetime, option: str) -> datetime | None:
    """``--since``/``--until`` value: a time, or a duration back from ``now``."""
    if text is None or text == "":
        return None
    dur = parse_duration(text, option)
    if dur is not None:
        return _back(now, dur, option, text)
    return parse_time(text, option)


def after(now: datetime) -> datetime:
    """The exclusive end bound that includes a call stamped exactly at ``now``."""
    try:
        return now + EPSILON
    except OverflowError:  # now is the last representable instant
        return now


def resolve_window(
    text: str | None,
    now: datetime,
    *,
    end: datetime | None = None,
    option: str = "--current",
) -> Window:
    """A window name, ``START..END``, or a duration (``7d``) ending at ``end`` (default now)."""
    stop = end if end is not None else after(now)
    if text is None or text.strip() in ("", "all"):
        return Window(None, end, "all")
    raw = text.strip()
    if raw in NAMED:
        return Window(_back(stop, NAMED[raw], option, raw), stop, raw)
    if ".." in raw:
        a, b = raw.split("..", 1)
        start = parse_time(a, option) if a.strip() else None
        back = parse_duration(b, option) if b.strip() else None
        stop2 = (
            (_back(now, back, option, raw) if back is not None else parse_time(b, option))
            if b.strip()
            else None
        )
        if start and stop2 and stop2 <= start:
            raise UsageError(f"{option}: the window ends before it starts ('{text}')", param=option)
        return Window(start, stop2, raw)
    dur = parse_duration(raw, option)
    if dur is not None:
        return Window(_back(stop, dur, option, raw), stop, raw)
    raise UsageError(
        f"{option}: expected a window name ({', '.join(NAMED)}), START..END, or a duration "
        f"like 7d (got '{text}')",
        param=option,
    )


def resolve_now(text: str | None, latest: datetime | None) -> datetime:
    """``--now`` if given, else the latest timestamp in the data, else the clock."""
    if text:
        return parse_time(text, "now")
    if latest is not None:
        return latest if latest.tzinfo else latest.replace(tzinfo=UTC)
    return datetime.now(UTC)


# --- a window that selects nothing ------------------------------------------------------


class EmptyWindowError(UsageError):
    """A time window (``--since/--until``, ``--current``, ``--baseline``) with no call in
    it: exit 2, naming the window and the time span the data actually covers."""


@dataclass(frozen=True)
class Span:
    """The time span trace data covers: first and last ``timestamp`` and its row count."""

    first: datetime | None
    last: datetime | None
    rows: int

    def describe(self) -> str:
        if not self.rows or self.first is None or self.last is None:
            return "holds no calls at all"
        return f"spans {_stamp(self.first)} .. {_stamp(self.last)} ({self.rows:,} rows)"


def span_of(frame: pl.DataFrame | pl.LazyFrame) -> Span:
    """The :class:`Span` of canonical rows (one cheap aggregation)."""
    row = (
        frame.lazy()
        .select(
            pl.col("timestamp").min().alias("first"),
            pl.col("timestamp").max().alias("last"),
            pl.len().alias("rows"),
        )
        .collect()
        .row(0, named=True)
    )
    return Span(row["first"], row["last"], int(row["rows"] or 0))


def _stamp(value: datetime | None) -> str:
    if value is None:
        return "(open)"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def describe_window(window: Window) -> str:
    """``[start, end)`` in UTC, ``(open)`` for a missing bound."""
    return f"[{_stamp(window.start)}, {_stamp(window.end)})"


def require_rows(
    rows: int,
    option: str,
    window: Window,
    span: Callable[[], Span],
    sources: Sequence[str],
) -> None:
    """Raise :class:`EmptyWindowError` when ``rows`` is 0: ``option`` names the window as
    the user gave it (``--since 2030-01-01``), ``span`` (called only then) says what the
    data covers, so the fix is one look away."""
    if rows:
        return
    from llmobs_cli.core.record.names import dump_name

    raise EmptyWindowError(
        f"{option}: no call in the window {describe_window(window)}; "
        f"{dump_name(sources)} {span().describe()}",
        param=option.split(" ")[0],
    )


def window_option(**given: str | None) -> str:
    """``since="7d", until=None`` → ``--since 7d`` (the options that made a window)."""
    parts = [f"--{k.replace('_', '-')} {v}" for k, v in given.items() if v]
    return " ".join(parts) or "the window"
