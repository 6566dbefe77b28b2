"""Reading trace files batch by batch, in memory bounded by the batch size.

:class:`Stream` yields canonical, validated frames of at most ``batch_rows`` rows with the
same error policy as :func:`llmobs_cli.core.ingest.readers.load`: problems are counted
across all batches, ``skip`` drops bad rows, ``fail`` raises one
:class:`~llmobs_cli.errors.InputError` (first :data:`MAX_PROBLEMS` problems and the total)
when the stream ends, so no figure is ever computed from a file with problems.

Parquet (files, directories, hive partitions) is read a row slice at a time by Polars' own
reader (consecutive row groups together up to the batch size; row groups outside the
window skipped by their statistics, read from the footer with pyarrow), so only the
projected columns of one batch are in memory. Other
formats are parsed one file at a time by their reader and validated in batches: their
memory is bounded by the largest file, which is why JSONL is converted to Parquet once
(``llmobs convert``) for production volumes.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.ingest.readers import (
    _GIVEN,
    MAX_PROBLEMS,
    FileRead,
    OnError,
    _is_empty_file,
    _line_key,
    _mark_given_span_ids,
    _read_one,
    _reason,
    _reason_counts,
    _why_nothing,
    _with_dependencies,
    expand_paths,
)
from llmobs_cli.core.ingest.readers.base import Locate, row_locator
from llmobs_cli.core.ingest.readers.formats import READERS, ReadOptions, detect_format
from llmobs_cli.core.ingest.seen import Deduper, parquet_rows
from llmobs_cli.core.record.schema import ALIASES, REQUIRED, ROW, SCHEMA, normalize
from llmobs_cli.errors import InputError, InputWarning, UsageError

#: Rows per batch when no memory budget says otherwise.
BATCH_ROWS = 131_072
#: Bounds on the rows in one batch. Larger batches barely run faster (the per-batch work is
#: all vectorised) while their transient memory adds to the peak: the report peaked at
#: 0.77 GB on 1M rows with 131k-row batches, 1.0 GB with 262k.
MIN_BATCH, MAX_BATCH = 16_384, 131_072
#: Memory a run holds whatever its batches (interpreter, libraries, merged partials).
_FIXED = 512 << 20
#: Transient bytes per byte of a batch's projected columns (decoding, flags, group-bys and
#: the allocators' slack), measured on the report's columns: ~2.6 kB per row of ~260 B.
_WORK_FACTOR = 10


def default_memory() -> int:
    """The default memory budget: a quarter of physical RAM (2 GiB when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 2 << 30


def parse_memory(text: str) -> int:
    """``512MB``, ``2GB``, ``1.5G``, ``25%`` (of RAM) → bytes; UsageError otherwise."""
    t = text.strip().upper().removesuffix("B")
    try:
        if t.endswith("%"):
            return int(default_memory() * 4 * float(t[:-1]) / 100)
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(t[-1:], 1)
        value = float(t[:-1] if t[-1:] in "KMGT" else t) * mult
    except ValueError:
        value = -1
    if value <= 0:
        raise UsageError(
            f"memory: expected a size such as 1GB, 512MB or 25%, got '{text}'", param="memory"
        )
    return int(value)


def batch_rows_for(memory: int | None, bytes_per_row: float) -> int:
    """Rows per batch so that a run's peak stays inside ``memory``: what is left after
    :data:`_FIXED`, over :data:`_WORK_FACTOR` times the projected bytes of a row, between
    :data:`MIN_BATCH` and :data:`MAX_BATCH` rows."""
    if memory is None:
        return BATCH_ROWS
    rows = int((memory - _FIXED) / max(bytes_per_row, 16.0) / _WORK_FACTOR)
    return max(MIN_BATCH, min(MAX_BATCH, rows))


@dataclass
class Progress:
    """Rows and bytes read so far (bytes of Parquet are the projected columns' share of
    each file's size)."""

    rows: int = 0
    bytes: int = 0
    total_bytes: int = 0


@dataclass
class Stream:
    """Canonical batches of ``paths`` (iterate once); counters filled as it goes."""

    paths: Sequence[str | Path]
    columns: Iterable[str] | None = None
    on_error: OnError = "fail"
    fmt: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    options: ReadOptions | None = None
    memory: int | None = None
    on_progress: Callable[[Progress], None] | None = None
    sources: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    files: list[FileRead] = field(default_factory=list)
    duplicates: int = 0
    warnings: list[str] = field(default_factory=list)
    progress: Progress = field(default_factory=Progress)

    def __post_init__(self) -> None:
        if self.on_error not in ("fail", "skip"):
            raise UsageError(
                f"on_error: expected 'fail' or 'skip', got '{self.on_error}'", param="on_error"
            )
        self._wanted = None if self.columns is None else _with_dependencies(self.columns)
        self._files = expand_paths(self.paths)
        self.progress.total_bytes = sum(_size(p) for p in self._files)

    def __iter__(self) -> Iterator[pl.DataFrame]:
        opts = self.options or ReadOptions()
        keep = opts.keep_duplicates
        asked = self._wanted
        # The ids are read anyway (when present) because duplicates are found by them.
        wanted = asked | {"trace_id", "span_id"} if asked is not None and not keep else asked
        self._read_cols = wanted
        opts = ReadOptions(
            columns=wanted,
            since=self.since,
            until=self.until,
            route_from=opts.route_from,
            include_embeddings=opts.include_embeddings,
            keep_duplicates=keep,
        )
        required = (
            (*REQUIRED, "latency_ms")
            if asked is None
            else tuple(f for f in (*REQUIRED, "latency_ms") if f in asked)
        )
        dedupe = Deduper(expected_keys=None if keep else self._known_rows())
        try:
            yield from self._batches(opts, required, keep, dedupe)
        finally:
            dedupe.close()

    def _known_rows(self) -> int | None:
        try:
            kinds = [self.fmt or detect_format(p) for p in self._files]
        except Exception:  # reported by the read itself
            return None
        return parquet_rows(self._files, kinds)

    def _in_window(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows of a canonical frame inside ``since``/``until``."""
        if self.since is not None:
            frame = frame.filter(pl.col("timestamp") >= self.since)
        if self.until is not None:
            frame = frame.filter(pl.col("timestamp") < self.until)
        return frame

    def _batches(
        self, opts: ReadOptions, required: tuple[str, ...], keep: bool, dedupe: Deduper
    ) -> Iterator[pl.DataFrame]:
        empty_inputs: list[str] = []
        batch_rows = MIN_BATCH  # the held rows come out in batches as large as the read's
        for path in self._files:
            kind = self.fmt or detect_format(path)
            if kind not in READERS:
                raise UsageError(
                    f"format: unknown format '{kind}' (known: {', '.join(sorted(READERS))})",
                    param="format",
                )
            if _is_empty_file(path):
                empty_inputs.append(f"{path}: empty file (nothing to read)")
                continue
            self.sources.append(str(path))
            self.formats[str(path)] = kind
            info = FileRead(path=str(path), format=kind)
            self.files.append(info)
            reasons: Counter[str] = Counter()
            raw_rows = raw_problems = 0
            raws = self._parquet(path) if kind == "parquet" else self._whole(path, kind, opts, info)
            for raw, locate, parse_problems, nbytes in raws:
                raw_rows += raw.height
                raw_problems += len(parse_problems)
                batch_rows = max(batch_rows, raw.height)
                frame = self._check(raw, locate, parse_problems, required, info, reasons)
                info.calls += frame.height
                frame = frame.drop(_GIVEN, strict=False) if keep else dedupe.new_rows(frame)
                self.duplicates = dedupe.duplicates
                frame = self._in_window(frame)
                self.progress.rows += raw.height
                self.progress.bytes += nbytes
                if self.on_progress is not None:
                    self.on_progress(self.progress)
                if frame.height:
                    yield frame
            info.skipped_reasons = dict(reasons)
            self.skipped += info.skipped
            self.skipped_reasons.update(reasons)
            if raw_rows == 0 and not raw_problems and info.note is None:
                info.note = _why_nothing(path, kind, self.since, self.until)
        if empty_inputs:
            raise InputError(empty_inputs)
        if self.problem_count and self.on_error == "fail":
            raise InputError(self.problems, total=self.problem_count)
        # Rows held aside by the duplicate finder past its in-memory threshold: settled
        # only now that every key is known (nothing is yielded once a problem is found).
        for frame in dedupe.held(batch_rows):
            frame = self._in_window(frame)
            if frame.height:
                yield frame
        self.duplicates = dedupe.duplicates
        nothing = [f for f in self.files if f.calls == 0 and f.skipped == 0 and f.note]
        if self.files and all(f.calls == 0 for f in self.files):
            if any(f.skipped for f in self.files):
                names = ", ".join(f.path for f in self.files)
                raise InputError(
                    [f"{names}: no record left: every row had a problem", *self.problems],
                    total=self.problem_count + 1,
                )
            if nothing:
                raise InputError([f"{f.path}: read as {f.format}: {f.note}" for f in nothing])
        for f in nothing:
            self.warnings.append(f"{f.path}: read as {f.format}: {f.note}")
        if self.duplicates:
            self.warnings.append(
                f"{self.duplicates} duplicate span_id row(s) counted once "
                "(the same call read twice; --keep-duplicates keeps them)"
            )
        for line in self.warnings:
            warnings.warn(line, InputWarning, stacklevel=2)

    # --- sources ----------------------------------------------------------------------

    def _parquet(self, path: Path) -> Iterator[tuple[pl.DataFrame, Locate, list[str], int]]:
        """Row groups (or slices of a large one) of each Parquet file, each batch one row
        slice decoded by Polars (the file is opened per batch: no mapping of the whole file
        stays open, whose pages would count as resident memory and grow with the file);
        row groups outside the window are skipped by their statistics."""
        import pyarrow.parquet as pq

        from llmobs_cli.core.ingest.readers.parquet import source_columns

        name = str(path)
        offset = 0
        try:
            for file in _parquet_files(path):
                pf = pq.ParquetFile(file, memory_map=False, pre_buffer=False)
                have = list(pf.schema_arrow.names)
                hive = _hive_values(file, path)
                cols = source_columns([*have, *hive], self._read_cols)
                if self._read_cols is not None and "latency_ms" in self._read_cols:
                    # Missing latencies derive from end_time: read it when the file has it.
                    cols += [
                        c for c in ("end_time", *ALIASES["end_time"]) if c in have and c not in cols
                    ]
                if "date" in hive and "date" not in SCHEMA:
                    cols = [c for c in cols if c != "date"]
                read_cols = [c for c in cols if c in have]
                meta = pf.metadata
                width = _row_bytes(meta, read_cols)
                step = batch_rows_for(self.memory, width)
                total = _size(file)
                file_rows = max(1, meta.num_rows)
                locate = row_locator(path)
                file_start = offset
                groups = []
                starts = []
                for g in range(meta.num_row_groups):
                    if self._overlaps(meta.row_group(g), have):
                        groups.append(g)
                        starts.append(offset)
                    offset += meta.row_group(g).num_rows
                # Consecutive row groups are read together up to the batch size (fewer,
                # larger batches use the cores better); row numbers follow each group.
                # Each batch is a row slice decoded by Polars' own reader straight into
                # its columns (pyarrow's decoding plus the conversion to Polars cost ~60 %
                # more CPU); the file is opened per batch, so no mapping of it outlives
                # one batch.
                rows_before = dict(zip(groups, starts, strict=True))
                scan = pl.scan_parquet(file, hive_partitioning=False).select(read_cols)
                for run in _runs(groups):
                    row = rows_before[run[0]]
                    end = row + sum(meta.row_group(g).num_rows for g in run)
                    while row < end:
                        n = min(step, end - row)
                        raw = scan.slice(row - file_start, n).collect()
                        raw = raw.with_columns(
                            pl.int_range(row, row + raw.height, dtype=pl.Int64).alias(ROW),
                            *(pl.lit(v).alias(k) for k, v in hive.items() if k in cols),
                        )
                        row += n
                        raw = self._window(raw)
                        yield raw, locate, [], int(total * n / file_rows)
        except InputError:
            raise
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InputError([f"{name}: not a readable Parquet file ({msg})"]) from exc

    def _overlaps(self, rg: Any, have: list[str]) -> bool:
        """Whether a row group's timestamp statistics may overlap [since, until)."""
        if (self.since is None and self.until is None) or "timestamp" not in have:
            return True
        for c in range(rg.num_columns):
            col = rg.column(c)
            if col.path_in_schema != "timestamp":
                continue
            st = col.statistics
            if st is None or not st.has_min_max or not isinstance(st.min, datetime):
                return True
            lo, hi = st.min, st.max
            if lo.tzinfo is None:
                lo, hi = lo.replace(tzinfo=UTC), hi.replace(tzinfo=UTC)
            if self.since is not None and hi < self.since:
                return False
            if self.until is not None and lo >= self.until:
                return False
        return True

    def _window(self, raw: pl.DataFrame) -> pl.DataFrame:
        ts = raw.schema.get("timestamp")
        if not isinstance(ts, pl.Datetime) or (self.since is None and self.until is None):
            return raw
        col = pl.col("timestamp")
        col = (
            col.dt.replace_time_zone("UTC")
            if ts.time_zone is None
            else col.dt.convert_time_zone("UTC")
        )
        cond = pl.lit(True)
        if self.since is not None:
            cond = cond & (col >= self.since)
        if self.until is not None:
            cond = cond & (col < self.until)
        return raw.filter(cond)

    def _whole(
        self, path: Path, kind: str, opts: ReadOptions, info: FileRead
    ) -> Iterator[tuple[pl.DataFrame, Locate, list[str], int]]:
        raw = _read_one(READERS[kind], path, kind, opts)
        info.note = raw.note
        for why, n in raw.tolerated.items():
            self.warnings.append(f"{path}: {n} {why}")
        frame = raw.frame
        total = _size(path)
        step = batch_rows_for(self.memory, frame.estimated_size() / max(1, frame.height))
        first = True
        for start in range(0, max(frame.height, 1), step):
            part = frame.slice(start, step)
            share = int(total * part.height / max(1, frame.height))
            yield part, raw.locate, (raw.problems if first else []), share
            first = False

    # --- validation ---------------------------------------------------------------------

    def _check(
        self,
        raw: pl.DataFrame,
        locate: Locate,
        parse_problems: list[str],
        required: tuple[str, ...],
        info: FileRead,
        reasons: Counter[str],
    ) -> pl.DataFrame:
        norm = normalize(raw, check_required=required)
        frame = _mark_given_span_ids(raw, norm.frame)
        probs = norm.problems
        self.problem_count += len(parse_problems) + probs.height
        for line in parse_problems:
            reasons[_reason(line)] += 1
        info.skipped += len(parse_problems)
        found = list(parse_problems)
        if probs.height:
            head = probs.head(MAX_PROBLEMS)
            where = locate(head[ROW].to_list())
            found.extend(
                f"{w}: {f}: {m}"
                for w, f, m in zip(where, head["field"], head["message"], strict=True)
            )
        found.sort(key=_line_key)
        self.problems.extend(found[: max(0, MAX_PROBLEMS - len(self.problems))])
        if probs.height:
            for (f, m), n in _reason_counts(probs):
                reasons[f"{f}: {m}"] += n
            bad = probs[ROW].unique()
            info.skipped += bad.len()
            frame = frame.filter(~pl.col(ROW).is_in(bad.implode()))
        return frame.drop(ROW)


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*.parquet"))
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _parquet_files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.parquet")) if path.is_dir() else [path]


def _runs(groups: list[int]) -> list[list[int]]:
    """Consecutive row-group numbers as runs: [0, 1, 2, 5, 6] → [[0, 1, 2], [5, 6]]."""
    out: list[list[int]] = []
    for g in groups:
        if out and out[-1][-1] == g - 1:
            out[-1].append(g)
        else:
            out.append([g])
    return out


def _hive_values(file: Path, root: Path) -> dict[str, str]:
    """``key=value`` directory names between ``root`` and ``file`` (hive partitions)."""
    if not root.is_dir():
        return {}
    out: dict[str, str] = {}
    for part in file.relative_to(root).parts[:-1]:
        if "=" in part:
            k, v = part.split("=", 1)
            out[k] = v
    return out


def _row_bytes(meta: Any, cols: list[str]) -> float:
    """Uncompressed bytes per row of the projected columns (from the Parquet footer)."""
    want = set(cols)
    size = 0
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            if col.path_in_schema.split(".", 1)[0] in want:
                size += col.total_uncompressed_size
    return size / meta.num_rows if meta.num_rows else 64.0 * len(cols)
