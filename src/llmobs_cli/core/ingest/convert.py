"""``llmobs convert``: any supported input → canonical Parquet (zstd) or JSONL.

Streaming: rows are read and written batch by batch (:mod:`llmobs_cli.core.sinks`), so
memory does not grow with the input. Output is atomic: a file is written to a temporary
sibling and renamed into place; a ``--partition-by date`` tree gets each partition it
produces renamed into place, and keeps every other partition and file.
"""

from __future__ import annotations

import gzip
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import polars as pl

from llmobs_cli.core import atomic, outputs, sinks
from llmobs_cli.core.ingest.batches import CHUNK_BYTES, BatchStats, iter_batches
from llmobs_cli.core.ingest.readers import OnError, ReadOptions, expand_paths
from llmobs_cli.core.progress import ProgressFn, no_progress
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
    """Write canonical rows atomically; ``partition_by="date"`` writes (or replaces) the
    ``date=`` partitions of these rows in the tree ``out`` and keeps the others."""
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
        with sinks.PartitionSink(out) as tree:
            tree.write(frame)
            tree.publish()
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


@dataclass
class ConvertResult:
    """What ``convert`` read and wrote."""

    rows: int
    sources: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    partitions: list[str] = field(default_factory=list)
    bytes_read: int = 0


def convert(
    paths: Sequence[str | Path],
    out: Path,
    *,
    to: str | None = None,
    partition_by: str | None = None,
    on_error: OnError = "fail",
    fmt: str | None = None,
    options: ReadOptions | None = None,
    overwrite: bool = False,
    progress: ProgressFn = no_progress,
    chunk_bytes: int = CHUNK_BYTES,
) -> ConvertResult:
    """Read ``paths`` (all fields) batch by batch and stream canonical rows to ``out``.

    Memory holds one batch (see :mod:`llmobs_cli.core.ingest.batches`), whatever the input
    size. The output is published atomically once every row was read and written; an
    error or interrupt leaves the previous output untouched and no temporary file behind.
    ``out`` is checked first (:mod:`llmobs_cli.core.outputs`): never an input, never over
    a folder of files llmobs did not write unless ``overwrite``.
    """
    out = Path(out)
    out_fmt = output_format(out, to)
    inputs = expand_paths(paths)
    if partition_by is not None:
        if partition_by != "date":
            raise UsageError(
                f"partition_by: only 'date' is supported (got '{partition_by}')",
                param="partition_by",
            )
        if out_fmt != "parquet":
            raise UsageError(
                "partition_by date writes Parquet; give an output directory, not .jsonl",
                param="partition_by",
            )
        outputs.check_tree_output(out, outputs.input_paths(paths, inputs), overwrite=overwrite)
    else:
        outputs.check_file_output(out, outputs.input_paths(paths, inputs))
    stats = BatchStats()
    partitions: list[str] = []
    with (
        sinks.PartitionSink(out) if partition_by is not None else sinks.FileSink(out, out_fmt)
    ) as sink:
        for frame in iter_batches(
            inputs,
            on_error=on_error,
            fmt=fmt,
            options=options,
            stats=stats,
            chunk_bytes=chunk_bytes,
            progress=progress,
        ):
            sink.write(frame)
        if isinstance(sink, sinks.PartitionSink):
            partitions = sink.publish()
        else:
            sink.publish()
    return ConvertResult(
        rows=stats.rows,
        sources=stats.sources,
        formats=stats.formats,
        skipped=stats.skipped,
        skipped_reasons=stats.skipped_reasons,
        partitions=partitions,
        bytes_read=stats.bytes_read,
    )
