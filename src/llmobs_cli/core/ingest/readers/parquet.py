"""Parquet: a file, a directory, a glob, hive-partitioned ``date=YYYY-MM-DD/`` folders.

Reads lazily with projection and predicate pushdown: only the columns a command needs
(canonical names or their aliases) and, for a time window, only the row groups whose
statistics overlap it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import polars as pl

from llmobs_cli.core.ingest.readers.base import RawRead, display_name, row_locator
from llmobs_cli.core.record.schema import ALIASES, ROW, SCHEMA, USAGE_FIELDS
from llmobs_cli.errors import InputError


def scan(path: Path | str) -> pl.LazyFrame:
    """A lazy scan of a Parquet file, directory or glob (hive partitions recognised)."""
    p = Path(path)
    target: str | Path = p
    if p.is_dir():
        target = str(p / "**" / "*.parquet")
    return pl.scan_parquet(target, hive_partitioning=True, row_index_name=ROW)


def source_columns(available: Iterable[str], wanted: Iterable[str] | None) -> list[str]:
    """The file's columns that feed the wanted canonical fields (aliases included)."""
    have = list(available)
    if wanted is None:
        return have
    want = set(wanted)
    keep: set[str] = set()
    for name in want:
        if name in have:
            keep.add(name)
        keep.update(a for a in ALIASES.get(name, ()) if a in have)
        if name in USAGE_FIELDS and "usage" in have:
            keep.add("usage")
    if "latency_ms" in want:
        keep.update(c for c in ("end_time", *ALIASES["end_time"], "timestamp") if c in have)
        # end_time only fills missing latencies: skip it when latency_ms itself is there
        # and end_time was not asked for (read_parquet fetches it if latencies are missing).
        if ("latency_ms" in have or any(a in have for a in ALIASES["latency_ms"])) and (
            "end_time" not in want
        ):
            keep.difference_update(("end_time", *ALIASES["end_time"]))
    if "span_id" in want and "trace_id" in have:
        keep.add("trace_id")
    if "status" in want and "error" in have:
        keep.add("error")
    if "metadata" in want:
        known = set(SCHEMA)
        for aliases in ALIASES.values():
            known.update(aliases)
        keep.update(c for c in have if c not in known and c != ROW)
    return [c for c in have if c in keep]


def _late_end_time(
    available: list[str], cols: list[str], wanted: Iterable[str] | None, frame: pl.DataFrame
) -> list[str]:
    """The end-time columns to fetch because some latencies are missing (rare path)."""
    if wanted is None or "latency_ms" not in set(wanted):
        return []
    ends = [c for c in ("end_time", *ALIASES["end_time"]) if c in available and c not in cols]
    if not ends:
        return []
    lat = [c for c in ("latency_ms", *ALIASES["latency_ms"]) if c in frame.columns]
    if lat and frame.select(pl.all_horizontal(pl.col(c).is_not_null() for c in lat).all()).item():
        return []
    return ends


def read_parquet(
    path: Path,
    columns: Iterable[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> RawRead:
    """Read the needed columns of a Parquet source into a raw frame."""
    name = display_name(path)
    try:
        lf = scan(path)
        schema = lf.collect_schema()
        cols = source_columns([c for c in schema.names() if c != ROW], columns)
        if "date" in schema.names() and "date" not in SCHEMA and columns is not None:
            cols = [c for c in cols if c != "date"]
        lf = lf.select([ROW, *cols])
        ts = schema.get("timestamp")
        if isinstance(ts, pl.Datetime) and "timestamp" in cols:
            col = pl.col("timestamp")
            if ts.time_zone is None:
                col = col.dt.replace_time_zone("UTC")
            else:
                col = col.dt.convert_time_zone("UTC")
            if since is not None:
                lf = lf.filter(col >= since)
            if until is not None:
                lf = lf.filter(col < until)
        frame = lf.collect()
        late = _late_end_time(schema.names(), cols, columns, frame)
        if late:
            extra = scan(path).select([ROW, *late])
            if "timestamp" in cols and isinstance(ts, pl.Datetime):
                extra = extra.join(frame.lazy().select(ROW), on=ROW, how="semi")
            frame = frame.join(extra.collect(), on=ROW, how="left")
    except InputError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError([f"{name}: not a readable Parquet file ({msg})"]) from exc
    # Hive partition columns (date=...) are a storage detail, not a record field.
    if "date" in frame.columns and (columns is None) and isinstance(frame.schema["date"], pl.Date):
        frame = frame.drop("date")
    return RawRead(
        frame=frame.with_columns(pl.col(ROW).cast(pl.Int64)),
        locate=row_locator(path),
        fmt="parquet",
    )
