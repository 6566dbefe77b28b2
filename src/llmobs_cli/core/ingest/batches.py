"""Canonical rows in bounded batches, for the commands that stream their output.

:func:`iter_batches` reads the same sources as :func:`~llmobs_cli.core.ingest.readers.load`
and judges every row the same way (it shares :func:`canonical_part`), but never holds
more than one batch:

* canonical JSONL (plain, ``.gz``, ``.zst``) is read in chunks of about ``chunk_bytes``
  cut at a newline; problems still name the file's own line numbers;
* Parquet files (and every file of a Parquet directory or hive tree) are read record
  batch by record batch;
* other formats (OTLP, OpenInference and vendor exports, JSON arrays) need a whole
  document to rebuild their records and are read one file at a time.

Error policy: with ``skip`` bad rows are dropped and counted in :class:`BatchStats`.
With ``fail`` nothing more is yielded after the first problem; the rest of the input is
still read (only to count the problems), then :class:`InputError` is raised with the
first :data:`MAX_PROBLEMS` lines and the total, as :func:`load` does. Reading nothing (an
empty file, or no record at all) is an :class:`InputError` too, raised after the last
batch, so a streaming command never publishes an empty output as a success.

Duplicates follow :func:`load`'s rule: a row whose given ``(trace_id, span_id)`` and start
time were already read is dropped (the first copy wins) and counted, unless
``ReadOptions(keep_duplicates=True)``. :class:`~llmobs_cli.core.ingest.seen.Deduper`
finds them in bounded memory; past its in-memory threshold (8M distinct calls) the rows
it holds aside as possible repeats come out after all the others, so the output's row
order differs from the input's for those rows only.
"""

from __future__ import annotations

import contextlib
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow.parquet as pq

from llmobs_cli.core.ingest.readers import (
    MAX_PROBLEMS,
    OnError,
    ReadOptions,
    _is_empty_file,
    _read_one,
    _with_dependencies,
    canonical_part,
    expand_paths,
)
from llmobs_cli.core.ingest.readers.base import RawRead, row_locator
from llmobs_cli.core.ingest.readers.formats import READERS, detect_format
from llmobs_cli.core.ingest.readers.jsonl import read_jsonl_lines
from llmobs_cli.core.ingest.readers.parquet import source_columns
from llmobs_cli.core.ingest.seen import Deduper, parquet_rows
from llmobs_cli.core.progress import Progress, ProgressFn, no_progress
from llmobs_cli.core.record.schema import FIELDS, ROW
from llmobs_cli.errors import InputError, InputWarning, UsageError

#: Bytes of JSON lines parsed at once (a batch in memory is a few times this).
CHUNK_BYTES = 32 * 2**20
#: Rows per Parquet record batch.
PARQUET_ROWS = 131_072


@dataclass
class BatchStats:
    """What the batches came from and what was dropped; filled while iterating."""

    sources: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    rows: int = 0
    bytes_read: int = 0
    total_bytes: int = 0
    skipped: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)


def input_bytes(files: Sequence[Path]) -> int:
    """Bytes on disk of the sources (directories summed over their Parquet files)."""
    total = 0
    for p in files:
        if p.is_dir():
            total += sum(f.stat().st_size for f in _parquet_files(p))
        else:
            with contextlib.suppress(OSError):
                total += p.stat().st_size
    return total


def _parquet_files(p: Path) -> list[Path]:
    if p.is_file():
        return [p]
    return sorted(
        f
        for f in p.rglob("*.parquet")
        if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
    )


def _open_decompressed(path: Path, raw: BinaryIO) -> BinaryIO:
    low = path.name.lower()
    if low.endswith(".gz"):
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    if low.endswith((".zst", ".zstd")):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    return raw


def _jsonl_chunks(path: Path, chunk_bytes: int) -> Iterator[tuple[int, bytes, int]]:
    """``(first_line, data, raw_bytes_read_so_far)`` chunks of a JSON-lines file."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError([f"{path}: cannot read file ({exc.strerror or exc})"]) from exc
    with raw:
        stream = _open_decompressed(path, raw)
        first, carry = 1, b""
        while True:
            try:
                block = stream.read(chunk_bytes)
            except Exception as exc:  # corrupt archives raise many kinds of errors
                raise InputError([f"{path}: not a valid compressed file ({exc})"]) from exc
            if not block:
                break
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            chunk, carry = data[: cut + 1], data[cut + 1 :]
            yield first, chunk, raw.tell()
            first += chunk.count(b"\n")
        if carry.strip():
            yield first, carry, raw.tell()


def _is_json_document(path: Path) -> bool:
    """A JSON array or pretty-printed JSON document(s): read whole, not line by line."""
    from llmobs_cli.core.ingest.readers.formats import head
    from llmobs_cli.core.ingest.readers.jsonl import _first_line_is_json

    start = head(path, 65536).lstrip()
    return start.startswith(b"[") or (start.startswith(b"{") and not _first_line_is_json(start))


def _raw_reads(
    path: Path, kind: str, opts: ReadOptions, chunk_bytes: int, stats: BatchStats
) -> Iterator[RawRead]:
    """Raw reads of one source, batch by batch; ``stats.bytes_read`` advances."""
    done = stats.bytes_read
    if kind == "canonical" and path.is_file() and not _is_json_document(path):
        for first, data, pos in _jsonl_chunks(path, chunk_bytes):
            stats.bytes_read = done + pos
            yield read_jsonl_lines(path, data, first)
        return
    if kind == "parquet":
        for f in _parquet_files(path):
            yield from _parquet_batches(f, opts, stats)
            done += f.stat().st_size
            stats.bytes_read = done
        return
    reader = READERS.get(kind)
    if reader is None:
        raise UsageError(
            f"format: unknown format '{kind}' (known: {', '.join(sorted(READERS))})",
            param="format",
        )
    raw = _read_one(reader, path, kind, opts)  # an unforeseen shape: exit 2 naming the file
    stats.bytes_read = done + input_bytes([path])
    yield raw


def _parquet_batches(path: Path, opts: ReadOptions, stats: BatchStats) -> Iterator[RawRead]:
    name = str(path)
    try:
        pf = pq.ParquetFile(str(path))
        cols = source_columns(pf.schema_arrow.names, opts.columns)
        offset = 0
        size = path.stat().st_size
        start = stats.bytes_read
        total_rows = max(1, pf.metadata.num_rows)
        for batch in pf.iter_batches(batch_size=PARQUET_ROWS, columns=cols):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            frame = frame.with_columns(
                pl.int_range(offset, offset + frame.height, dtype=pl.Int64).alias(ROW)
            )
            offset += frame.height
            stats.bytes_read = start + int(size * offset / total_rows)
            yield RawRead(frame=frame, locate=row_locator(path), fmt="parquet")
    except InputError:
        raise
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError([f"{name}: not a readable Parquet file ({msg})"]) from exc


def iter_batches(
    paths: Sequence[str | Path],
    *,
    columns: Iterable[str] | None = None,
    on_error: OnError = "fail",
    fmt: str | None = None,
    options: ReadOptions | None = None,
    stats: BatchStats | None = None,
    chunk_bytes: int = CHUNK_BYTES,
    progress: ProgressFn = no_progress,
    stage: str = "",
) -> Iterator[pl.DataFrame]:
    """Canonical frames (all of :data:`FIELDS`, in input order), one bounded batch at a time.

    ``stats`` (a fresh one when omitted) is filled as batches are read; ``progress`` gets
    the rows and input bytes handled after each batch.
    """
    if on_error not in ("fail", "skip"):
        raise UsageError(f"on_error: expected 'fail' or 'skip', got '{on_error}'", param="on_error")
    stats = stats if stats is not None else BatchStats()
    asked = None if columns is None else _with_dependencies(columns)
    base = options or ReadOptions()
    keep = base.keep_duplicates
    wanted = asked if asked is None or keep else asked | {"trace_id", "span_id"}
    opts = ReadOptions(
        columns=wanted,
        route_from=base.route_from,
        include_embeddings=base.include_embeddings,
        keep_duplicates=base.keep_duplicates,
    )
    files = expand_paths(paths)
    empty = [f"{p}: empty file (nothing to read)" for p in files if _is_empty_file(p)]
    if empty:
        raise InputError(empty)
    stats.total_bytes = input_bytes(files)
    dedupe = None
    if not keep:
        try:
            known = parquet_rows(files, [fmt or detect_format(p) for p in files])
        except Exception:  # reported by the read itself
            known = None
        dedupe = Deduper(expected_keys=known)
    try:
        yield from _batches(
            files, fmt, opts, asked, on_error, dedupe, stats, chunk_bytes, progress, stage
        )
    finally:
        if dedupe is not None:
            dedupe.close()


def _batches(
    files: Sequence[Path],
    fmt: str | None,
    opts: ReadOptions,
    asked: set[str] | None,
    on_error: OnError,
    dedupe: Deduper | None,
    stats: BatchStats,
    chunk_bytes: int,
    progress: ProgressFn,
    stage: str,
) -> Iterator[pl.DataFrame]:
    failed = False
    for path in files:
        kind = fmt or detect_format(path)
        stats.sources.append(str(path))
        stats.formats[str(path)] = kind
        for raw in _raw_reads(path, kind, opts, chunk_bytes, stats):
            stats.warnings.extend(f"{path}: {n} {why}" for why, n in raw.tolerated.items())
            part = canonical_part(raw, asked, max(0, MAX_PROBLEMS - len(stats.problems)))
            stats.problem_count += part.problem_count
            stats.skipped += part.skipped
            stats.skipped_reasons.update(part.reasons)
            stats.problems.extend(part.problems)
            if part.problem_count and on_error == "fail":
                failed = True
            if failed:
                continue
            frame = part.frame
            if dedupe is not None:
                frame = dedupe.new_rows(frame)
                stats.duplicates = dedupe.duplicates
            frame = frame.select(FIELDS)
            stats.rows += frame.height
            progress(Progress(stats.rows, stats.bytes_read, None, stats.total_bytes, stage))
            yield frame
    if failed:
        raise InputError(stats.problems, total=stats.problem_count)
    if dedupe is not None:
        # Rows held aside past the duplicate finder's in-memory threshold, settled now
        # that every key has been read (after the input's own rows: see core/ingest/seen).
        for frame in dedupe.held(PARQUET_ROWS):
            frame = frame.select(FIELDS)
            stats.rows += frame.height
            progress(Progress(stats.rows, stats.bytes_read, None, stats.total_bytes, stage))
            yield frame
        stats.duplicates = dedupe.duplicates
    if stats.rows == 0:
        names = ", ".join(stats.sources)
        if stats.skipped:
            raise InputError([f"{names}: no record left: every row had a problem"])
        raise InputError(
            [f"{s}: read as {stats.formats[s]}: no record" for s in stats.sources]
            or ["nothing to read"]
        )
    if stats.duplicates:
        stats.warnings.append(
            f"{stats.duplicates} duplicate span_id row(s) counted once "
            "(the same call read twice; --keep-duplicates keeps them)"
        )
    for line in stats.warnings:
        warnings.warn(line, InputWarning, stacklevel=2)
