"""``llmobs validate``: read everything, check every rule, summarise what is there."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.ingest.readers import LoadResult, OnError, ReadOptions, load
from llmobs_cli.errors import InputError


@dataclass
class ValidationSummary:
    rows: int
    calls: float
    start: str | None
    end: str | None
    routes: dict[str, int]
    models: dict[str, int]
    sources: dict[str, str]
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    #: Per source: format, calls read, rows/spans skipped and why, why nothing matched.
    files: list[dict[str, Any]] = field(default_factory=list)
    #: Rows dropped because the same ``(trace_id, span_id)`` was already read.
    duplicates: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "valid": True,
            "rows": self.rows,
            "calls": self.calls,
            "window": {"start": self.start, "end": self.end},
            "routes": self.routes,
            "models": self.models,
            "sources": self.sources,
            "skipped": self.skipped,
            "skipped_reasons": self.skipped_reasons,
            "files": self.files,
            "duplicates": self.duplicates,
        }


def summarize(result: LoadResult) -> ValidationSummary:
    df = result.frame
    if df.height:
        agg = df.select(
            pl.col("timestamp").min().alias("start"),
            pl.col("timestamp").max().alias("end"),
            (1.0 / pl.col("sample_rate")).sum().alias("calls"),
        ).row(0, named=True)
    else:
        agg = {"start": None, "end": None, "calls": 0.0}
    routes = dict(
        df.group_by("route").len().sort(["len", "route"], descending=[True, False]).iter_rows()
    )
    models = dict(
        df.group_by("model").len().sort(["len", "model"], descending=[True, False]).iter_rows()
    )
    return ValidationSummary(
        rows=df.height,
        calls=float(agg["calls"] or 0.0),
        start=agg["start"].isoformat() if agg["start"] else None,
        end=agg["end"].isoformat() if agg["end"] else None,
        routes=routes,
        models=models,
        sources=result.formats,
        skipped=result.skipped,
        skipped_reasons=dict(result.skipped_reasons),
        files=[f.as_dict() for f in result.files],
        duplicates=result.duplicates,
    )


def validate(
    paths: Sequence[str | Path],
    on_error: OnError = "fail",
    fmt: str | None = None,
    options: ReadOptions | None = None,
) -> ValidationSummary:
    """Read all fields of all rows; raise InputError on problems (``fail``) and when no
    record is left to call valid (an empty file, or every row skipped)."""
    result = load(paths, columns=None, on_error=on_error, fmt=fmt, options=options)
    if result.frame.height == 0:
        from llmobs_cli.core.record.names import dump_name

        why = f"all {result.skipped:,} row(s) were bad" if result.skipped else "it is empty"
        raise InputError([f"{dump_name(result.sources)}: no valid record ({why})"])
    return summarize(result)
