"""The time span trace files cover, for messages about a window that selects nothing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llmobs_cli.core.record.windows import Span, span_of


def data_span(paths: Sequence[str | Path], *, fmt: str | None = None, options: Any = None) -> Span:
    """First and last ``timestamp`` and the row count of ``paths``, whatever the window.

    Reads only the timestamps (bad rows skipped: the command that asks has already read
    these files under its own error policy). Used on the error path only.
    """
    from llmobs_cli.core.ingest.readers import load

    res = load(paths, columns=["timestamp"], on_error="skip", fmt=fmt, options=options)
    return span_of(res.frame)
