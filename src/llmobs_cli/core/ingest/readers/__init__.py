"""Reading trace files into canonical, validated frames.

:func:`load` is the one entry point commands use: it expands paths (files, directories,
globs), detects each source's format, reads only the needed columns, normalises them to
the canonical record (:mod:`llmobs_cli.core.record.schema`) and applies the error policy:

* ``fail`` — any problem raises :class:`~llmobs_cli.errors.InputError` listing the first
  :data:`MAX_PROBLEMS` problems as ``file:line: field: problem`` and the total count;
* ``skip`` — rows with problems are dropped and counted by reason in the result.

Reading nothing is never a success: an empty file, or inputs from which no record is
read, raise :class:`~llmobs_cli.errors.InputError` naming each file, the format it was
read as and why nothing matched. A file that gives no record beside others that do is a
warning. The same call read twice (a repeated ``(trace_id, span_id)``, within a file or
across inputs) is counted once — the first copy in input order wins — and the number of
dropped copies is reported (``ReadOptions(keep_duplicates=True)`` keeps them).

Format readers register in :data:`llmobs_cli.core.ingest.readers.formats.READERS`.
"""

from __future__ import annotations

import glob as globlib
import re
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl

from llmobs_cli.core.ingest.readers.base import RawRead
from llmobs_cli.core.ingest.readers.formats import READERS, ReadOptions, detect_format
from llmobs_cli.core.record.schema import FIELDS, REQUIRED, ROW, SCHEMA, empty_frame, normalize
from llmobs_cli.errors import InputError, InputWarning, LlmobsError, UsageError

OnError = Literal["fail", "skip"]
MAX_PROBLEMS = 20

__all__ = [
    "MAX_PROBLEMS",
    "CanonicalPart",
    "FileRead",
    "LoadResult",
    "OnError",
    "ReadOptions",
    "canonical_part",
    "expand_paths",
    "load",
]


@dataclass
class FileRead:
    """What one source gave: its format, the records kept, and what was skipped or noted."""

    path: str
    format: str
    calls: int = 0
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "format": self.format,
            "calls": self.calls,
            "skipped": self.skipped,
            "skipped_reasons": self.skipped_reasons,
            "note": self.note,
        }


@dataclass
class LoadResult:
    """Canonical rows from one or more sources, and what was dropped (``skip``)."""

    frame: pl.DataFrame
    sources: list[str] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    skipped: int = 0
    skipped_reasons: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    #: Per source, in input order.
    files: list[FileRead] = field(default_factory=list)
    #: Rows dropped because their ``(trace_id, span_id)`` was already read.
    duplicates: int = 0
    #: One-line notes for people (files with no record, duplicates, tolerated spans).
    warnings: list[str] = field(default_factory=list)

    def lazy(self) -> pl.LazyFrame:
        return self.frame.lazy()


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files and Parquet directories named by ``paths``; globs expanded, sorted.

    A directory contributes every trace file in it, whatever the mix of formats: its
    Parquet files (hive partitions included, at any depth) as one source, and each other
    trace file directly inside it as a source of its own. A path or glob that matches
    nothing is an :class:`InputError`. In a directory only trace files count (`.jsonl`,
    `.ndjson`, `.json`, `.csv`, `.parquet`, compressed or not).
    """
    out: list[Path] = []
    for raw in paths:
        text = str(raw)
        if any(ch in text for ch in "*?["):
            matches = sorted(globlib.glob(text, recursive=True))
            if not matches:
                raise InputError([f"{text}: no file matches this pattern"])
            out.extend(Path(m) for m in matches if Path(m).is_file())
            continue
        p = Path(text)
        if not p.exists():
            raise InputError([f"{text}: no such file or directory"])
        if p.is_dir():
            files = sorted(
                f
                for f in p.iterdir()
                if f.is_file() and _is_trace_file(f) and not f.name.lower().endswith(".parquet")
            )
            if any(p.rglob("*.parquet")):
                out.append(p)  # read as one Parquet dataset (its other files are not)
            elif not files:
                raise InputError([f"{text}: directory holds no trace files"])
            out.extend(files)
            continue
        out.append(p)
    return out


#: What a directory contributes: trace files by extension (licences, READMEs and
#: checksums beside the data are not traces). Files named one by one are always read.
TRACE_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".parquet", ".pq")


def _is_trace_file(path: Path) -> bool:
    name = path.name.lower()
    # Hidden files and the ``_``-prefixed bookkeeping of data trees (the ``_llmobs.json``
    # manifest of a partition tree, Spark's ``_SUCCESS`` and ``_metadata``) are not traces.
    if name.startswith((".", "_")):
        return False
    for ext in (".gz", ".zst", ".zstd"):
        name = name.removesuffix(ext)
    return name.endswith(TRACE_SUFFIXES)


def load(
    paths: Sequence[str | Path],
    *,
    columns: Iterable[str] | None = None,
    on_error: OnError = "fail",
    fmt: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    options: ReadOptions | None = None,
) -> LoadResult:
    """Read, normalise and validate traces; returns canonical rows in ``[since, until)``.

    ``columns`` limits the work to the canonical fields a command needs (``None``: all);
    the frame always has every canonical column, unneeded ones null. Required fields are
    checked only when they are read.
    """
    if on_error not in ("fail", "skip"):
        raise UsageError(f"on_error: expected 'fail' or 'skip', got '{on_error}'", param="on_error")
    opts = options or ReadOptions()
    wanted = None if columns is None else _with_dependencies(columns)
    if wanted is not None and opts.keep_origin:
        wanted = wanted | {"metadata"}
    # Required fields are checked only among those asked for; the ids are read anyway
    # (when present) because duplicates are found by them.
    asked = wanted
    if wanted is not None and not opts.keep_duplicates:
        wanted = wanted | {"trace_id", "span_id"}
    opts = ReadOptions(
        columns=wanted,
        since=since,
        until=until,
        route_from=opts.route_from,
        include_embeddings=opts.include_embeddings,
        keep_duplicates=opts.keep_duplicates,
        keep_origin=opts.keep_origin,
    )
    frames: list[pl.DataFrame] = []
    all_problems: list[str] = []
    problem_count = 0
    skipped = 0
    reasons: Counter[str] = Counter()
    result = LoadResult(frame=empty_frame())
    empty_inputs: list[str] = []
    for path in expand_paths(paths):
        kind = fmt or detect_format(path)
        reader = READERS.get(kind)
        if reader is None:
            raise UsageError(
                f"format: unknown format '{kind}' (known: {', '.join(sorted(READERS))})",
                param="format",
            )
        if _is_empty_file(path):
            empty_inputs.append(f"{path}: empty file (nothing to read)")
            continue
        raw = _read_one(reader, path, kind, opts)
        result.sources.append(str(path))
        result.formats[str(path)] = kind
        info = FileRead(path=str(path), format=kind, note=raw.note)
        result.files.append(info)
        file_reasons: Counter[str] = Counter()
        for why, n in raw.tolerated.items():
            result.warnings.append(f"{path}: {n} {why}")
        required = (
            (*REQUIRED, "latency_ms")
            if asked is None
            else tuple(f for f in (*REQUIRED, "latency_ms") if f in asked)
        )
        with unreadable_as(path, kind):
            norm = normalize(raw.frame, check_required=required)
            frame = _mark_given_span_ids(raw.frame, norm.frame)
        probs = norm.problems
        problem_count += len(raw.problems) + probs.height
        for line in raw.problems:
            file_reasons[_reason(line)] += 1
        info.skipped = len(raw.problems)
        found = list(raw.problems)
        if probs.height:
            head = probs.head(MAX_PROBLEMS)
            where = raw.locate(head[ROW].to_list())
            found.extend(
                f"{w}: {f}: {m}"
                for w, f, m in zip(where, head["field"], head["message"], strict=True)
            )
        # Show problems in file order (parse errors and field errors interleaved by line).
        found.sort(key=_line_key)
        all_problems.extend(found[: max(0, MAX_PROBLEMS - len(all_problems))])
        if probs.height:
            for (f, m), n in _reason_counts(probs):
                file_reasons[f"{f}: {m}"] += n
            bad_rows = probs[ROW].unique()
            info.skipped += bad_rows.len()
            frame = frame.filter(~pl.col(ROW).is_in(bad_rows.implode()))
        info.calls = frame.height
        info.skipped_reasons = dict(file_reasons)
        skipped += info.skipped
        reasons.update(file_reasons)
        if raw.frame.height == 0 and not raw.problems and info.note is None:
            info.note = _why_nothing(path, kind, since, until)
        frames.append(frame)
    if empty_inputs:
        raise InputError(empty_inputs)
    result.problems = all_problems
    result.problem_count = problem_count
    result.skipped = skipped
    result.skipped_reasons = reasons
    if problem_count and on_error == "fail":
        raise InputError(all_problems, total=problem_count)
    nothing = [f for f in result.files if f.calls == 0 and f.skipped == 0 and f.note]
    if result.files and all(f.calls == 0 for f in result.files):
        if any(f.skipped for f in result.files):
            read = ", ".join(f.path for f in result.files)
            raise InputError(
                [f"{read}: no record left: every row had a problem", *all_problems],
                total=problem_count + 1,
            )
        if nothing:  # (none: rows exist outside the time window, the command decides)
            raise InputError([f"{f.path}: read as {f.format}: {f.note}" for f in nothing])
    for fr in nothing:
        result.warnings.append(f"{fr.path}: read as {fr.format}: {fr.note}")
    frame = (
        pl.concat(frames, how="vertical")
        if frames
        else empty_frame().with_columns(pl.lit(None, dtype=pl.Int64).alias(ROW))
    )
    frame = frame.drop(ROW)
    if opts.keep_duplicates:
        frame = frame.drop(_GIVEN, strict=False)
    else:
        frame, result.duplicates = drop_duplicate_spans(frame)
        if result.duplicates:
            result.warnings.append(
                f"{result.duplicates} duplicate span_id row(s) counted once "
                "(the same call read twice; --keep-duplicates keeps them)"
            )
    if since is not None:
        frame = frame.filter(pl.col("timestamp") >= since)
    if until is not None:
        frame = frame.filter(pl.col("timestamp") < until)
    result.frame = frame
    for line in result.warnings:
        warnings.warn(line, InputWarning, stacklevel=2)
    return result


@contextmanager
def unreadable_as(path: Path, kind: str) -> Iterator[None]:
    """Turn a reader's unexpected failure on a file into exit 2 naming the file.

    Readers parse content from other tools and hand-written files; a shape they did not
    foresee (an object where a list belongs, a truncated Parquet footer) surfaces as
    whatever Python or Polars raises. For the user that is a bad input file, never an
    internal error: one line naming the file, the format it was read as, and the reason.
    """
    try:
        yield
    except LlmobsError:
        raise
    except (MemoryError, RecursionError):
        raise
    except Exception as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if len(reason) > 160:
            reason = reason[:157] + "..."
        raise InputError(
            [f"{path}: cannot be read as {kind} data ({reason}); check the file or --from"]
        ) from exc


#: Internal column: whether the source itself gave the row's span id (a defaulted one,
#: copied from ``trace_id``, says nothing about two rows being the same call).
_GIVEN = "_span_id_given"
_SPAN_ID_SOURCES = ("span_id", "spanId", "call_id")


def _mark_given_span_ids(raw: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """Flag the rows whose span id says which call they are: given by the source, and not
    the default (the trace id, which files written by llmobs carry written out)."""
    cols = [c for c in _SPAN_ID_SOURCES if c in raw.columns]
    if not cols or ROW not in raw.columns:
        return frame.with_columns(pl.lit(False).alias(_GIVEN))
    given = raw.select(
        ROW,
        pl.coalesce(pl.col(c).cast(pl.String) for c in cols).is_not_null().alias(_GIVEN),
    )
    return frame.join(given, on=ROW, how="left", maintain_order="left").with_columns(
        (
            pl.col(_GIVEN).fill_null(False)
            & pl.col("span_id").ne_missing(pl.col("trace_id").cast(pl.String))
        ).alias(_GIVEN)
    )


def _read_one(
    reader: Callable[[Path, ReadOptions], RawRead], path: Path, kind: str, opts: ReadOptions
) -> RawRead:
    """One source through its reader. A reader meeting a shape it does not expect (a
    damaged or hand-edited export) is a bad input — exit 2 naming the file and the
    format — never an internal error."""
    try:
        return reader(path, opts)
    except (LlmobsError, MemoryError, RecursionError):
        raise
    except Exception as exc:
        what = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ""
        why = f"{type(exc).__name__}: {what}" if what else type(exc).__name__
        raise InputError([f"{path}: cannot be read as {kind} ({why})"]) from exc


def drop_duplicate_spans(frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Rows whose ``(trace_id, span_id, timestamp)`` was already read removed (the first
    copy kept).

    Only span ids the sources gave count: rows without one are never duplicates of each
    other, since nothing says they are the same call. The start time is part of the key
    because a dump written without span ids (one id per trace, several calls) gets
    ``span_id = trace_id`` on every call once converted: those calls differ in time, while
    the copies of one call read twice do not.
    """
    if _GIVEN not in frame.columns:
        return frame, 0
    if frame.height == 0 or not frame.get_column(_GIVEN).any():
        return frame.drop(_GIVEN), 0
    repeated = (
        pl.col(_GIVEN)
        & ~pl.struct(
            pl.col("trace_id").fill_null(""), pl.col("span_id"), pl.col("timestamp"), pl.col(_GIVEN)
        ).is_first_distinct()
    )
    n = int(frame.select(repeated.sum()).item())
    if n:
        frame = frame.filter(~repeated)
    return frame.drop(_GIVEN), n


def _is_empty_file(path: Path) -> bool:
    """A file with no content at all (or only whitespace) — nothing can be read from it."""
    if path.is_dir():
        return False
    try:
        if path.stat().st_size == 0:
            return True
    except OSError:
        return False
    from llmobs_cli.core.ingest.readers.formats import head

    start = head(path, 4096)
    return len(start) < 4096 and not start.strip()


def _why_nothing(
    path: Path, kind: str, since: datetime | None, until: datetime | None
) -> str | None:
    """Why a source gave no row, when its reader did not say (``None``: not our rule).

    A Parquet source read with a time window may hold rows outside it: that is the
    window's matter, decided by the command, not an empty input.
    """
    if kind == "parquet" and (since is not None or until is not None):
        try:
            from llmobs_cli.core.ingest.readers.parquet import scan

            if scan(path).select(pl.len()).collect().item() > 0:
                return None
        except Exception:
            return None
    if kind in ("parquet", "canonical"):
        return "no rows"
    return "no record"


@dataclass
class CanonicalPart:
    """One raw read (a file, or a batch of one) made canonical: good rows and what was
    wrong. ``frame`` keeps ``_row`` and the span-id-given mark used to find duplicates."""

    frame: pl.DataFrame
    problems: list[str]
    problem_count: int
    skipped: int
    reasons: Counter[str]


def canonical_part(raw: RawRead, asked: set[str] | None, room: int) -> CanonicalPart:
    """Normalise one reader's output as :func:`load` does for a file, keeping at most
    ``room`` problem lines (in file order). The batch readers of the streaming commands
    (:mod:`llmobs_cli.core.ingest.batches`) go through here, so a row is judged the same
    way whichever path reads it."""
    required = (
        (*REQUIRED, "latency_ms")
        if asked is None
        else tuple(f for f in (*REQUIRED, "latency_ms") if f in asked)
    )
    norm = normalize(raw.frame, check_required=required)
    frame = _mark_given_span_ids(raw.frame, norm.frame)
    probs = norm.problems
    reasons: Counter[str] = Counter()
    for line in raw.problems:
        reasons[_reason(line)] += 1
    skipped = len(raw.problems)
    found = list(raw.problems)
    if probs.height:
        head = probs.head(MAX_PROBLEMS)
        where = raw.locate(head[ROW].to_list())
        found.extend(
            f"{w}: {f}: {m}" for w, f, m in zip(where, head["field"], head["message"], strict=True)
        )
    found.sort(key=_line_key)
    if probs.height:
        for (f, m), n in _reason_counts(probs):
            reasons[f"{f}: {m}"] += n
        bad_rows = probs[ROW].unique()
        skipped += bad_rows.len()
        frame = frame.filter(~pl.col(ROW).is_in(bad_rows.implode()))
    return CanonicalPart(
        frame=frame,
        problems=found[:room],
        problem_count=len(raw.problems) + probs.height,
        skipped=skipped,
        reasons=reasons,
    )


def _line_key(problem: str) -> int:
    """The line (or row) number in a problem string, for ordering."""
    m = re.match(r"^.*?:(?: row| record)? ?(\d+): ", problem)
    return int(m.group(1)) if m else 0


def _reason_counts(probs: pl.DataFrame) -> list[tuple[tuple[str, str], int]]:
    """Problems grouped into reasons (field + the message without its quoted value)."""
    short = probs.with_columns(
        pl.col("message").str.replace(r"\s*\(.*$", "").str.replace(r",? got .*$", "")
    )
    counts = short.group_by("field", "message", maintain_order=True).len()
    return [((f, m), n) for f, m, n in counts.iter_rows()]


def _reason(line: str) -> str:
    """``file:3: (line): invalid JSON (...)`` → ``(line): invalid JSON``."""
    parts = line.split(": ", 1)
    rest = parts[1] if len(parts) > 1 else line
    return rest.split(" (", 1)[0]


def _with_dependencies(columns: Iterable[str]) -> set[str]:
    """Canonical fields needed to compute ``columns`` (defaults derive from others)."""
    want = {c.split(".", 1)[0] if c.startswith("metadata.") else c for c in columns}
    want = {("metadata" if c not in SCHEMA else c) for c in want}
    want |= {"timestamp", "sample_rate"}
    if "latency_ms" in want:
        want.add("end_time")
    if "span_id" in want:
        want.add("trace_id")
    if "status" in want:
        want.add("error")
    return {c for c in want if c in FIELDS}
