"""``llmobs convert``: any supported input → canonical Parquet (zstd) or JSONL.

Output is atomic: a file is written to a temporary sibling and moved into place; a
``--partition-by date`` tree is built in a temporary directory and swapped in.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import polars as pl

from llmobs_cli.core import atomic
from llmobs_cli.core.ingest.readers import LoadResult, OnError, ReadOptions, load
from llmobs_cli.core.record.schema import FIELDS
from llmobs_cli.errors import UsageError

OutFormat = Literal["parquet", "jsonl"]


def output_format(out: Path, explicit: str | None = None) -> OutFormat:
    if explicit:
        if explicit not in ("parquet", "jsonl"):
            raise UsageError(f"to: expected parquet or jsonl, got '{explicit}'", param="to")
        return explicit  # type: ignore[return-value]
    name = out.name.lower()
    for ext in (".gz", ".zst"):
        name = name.removesuffix(ext)
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    return "parquet"


def to_jsonl_bytes(frame: pl.DataFrame) -> bytes:
    """Canonical JSONL: RFC 3339 timestamps (UTC, ``Z``), ``params``/``metadata`` as objects.

    Built with vectorised string work: the record's other fields are JSON-encoded as a
    struct and the two JSON-object columns (stored as JSON text) spliced in verbatim.
    """
    objects = ("params", "metadata")
    plain = [c for c in frame.columns if c not in objects]
    ts = "%Y-%m-%dT%H:%M:%S%.6fZ"
    body = frame.with_columns(
        pl.col("timestamp").dt.strftime(ts),
        pl.col("end_time").dt.strftime(ts),
    ).select(
        pl.struct(plain).struct.json_encode().alias("_base"),
        *[pl.col(c) for c in objects if c in frame.columns],
    )
    line = pl.col("_base").str.slice(0, pl.col("_base").str.len_chars() - 1)
    for c in objects:
        if c in body.columns:
            line = line + pl.when(pl.col(c).is_not_null()).then(
                pl.lit(f',"{c}":') + pl.col(c)
            ).otherwise(pl.lit(""))
    lines = body.select((line + pl.lit("}")).alias("l"))["l"]
    if lines.len() == 0:
        return b""
    return ("\n".join(lines.to_list()) + "\n").encode("utf-8")


def write_frame(
    frame: pl.DataFrame, out: Path, fmt: OutFormat, partition_by: str | None = None
) -> None:
    """Write canonical rows atomically; ``partition_by="date"`` writes hive folders."""
    frame = frame.select(FIELDS)
    if partition_by is not None:
        if partition_by != "date":
            raise UsageError(
                f"partition_by: only 'date' is supported (got '{partition_by}')",
                param="partition_by",
            )
        if fmt != "parquet":
            raise UsageError(
                "partition_by date writes Parquet; give an output directory, not .jsonl",
                param="partition_by",
            )

        def fill(tmp: Path) -> None:
            parted = frame.with_columns(pl.col("timestamp").dt.date().alias("date"))
            for (day,), part in parted.group_by(["date"], maintain_order=True):
                folder = tmp / f"date={day}"
                folder.mkdir(parents=True, exist_ok=True)
                part.drop("date").sort("timestamp").write_parquet(
                    folder / "part-0.parquet", compression="zstd", statistics=True
                )

        atomic.write_dir_atomically(out, fill)
        return
    if fmt == "parquet":
        atomic.write_parquet(out, frame)
        return
    data = to_jsonl_bytes(frame)
    name = out.name.lower()
    if name.endswith(".gz"):
        data = gzip.compress(data)
    elif name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdCompressor(level=6).compress(data)
    atomic.write_bytes(out, data)


def convert(
    paths: Sequence[str | Path],
    out: Path,
    *,
    to: str | None = None,
    partition_by: str | None = None,
    on_error: OnError = "fail",
    fmt: str | None = None,
    options: ReadOptions | None = None,
) -> LoadResult:
    """Read ``paths`` (all fields), write canonical rows to ``out``; returns what was read."""
    result = load(paths, columns=None, on_error=on_error, fmt=fmt, options=options)
    write_frame(result.frame, out, output_format(out, to), partition_by)
    return result
