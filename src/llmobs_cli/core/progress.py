"""Progress of a long command, reported by the core through a callback (never printed).

Streaming commands call ``progress(Progress(...))`` with cumulative figures after each
batch; the CLI draws them (a bar on stderr), the library ignores them by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    """Cumulative work done: rows handled and bytes read (or written, for ``generate``).

    ``total_rows`` / ``total_bytes`` are known up front when they can be (file sizes, the
    requested row count) and None otherwise.
    """

    rows: int
    bytes: int
    total_rows: int | None = None
    total_bytes: int | None = None
    stage: str = ""


ProgressFn = Callable[[Progress], None]


def no_progress(_: Progress) -> None:
    """The default callback: report nothing."""
