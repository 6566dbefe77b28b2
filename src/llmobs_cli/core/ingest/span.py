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


def data_sample(
    paths: Sequence[str | Path], *, fmt: str | None = None, options: Any = None, rows: int = 2000
) -> Any:
    """The first ``rows`` canonical rows of ``paths`` (all columns; bad rows skipped), to
    list what the data holds in a message. Reads one batch; used on the error path only."""
    import warnings

    import polars as pl

    from llmobs_cli.core.ingest.readers.stream import Stream

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the main pass said them
        for batch in Stream(paths, columns=None, on_error="skip", fmt=fmt, options=options):
            if batch.height:
                return batch.head(rows)
    return pl.DataFrame()
