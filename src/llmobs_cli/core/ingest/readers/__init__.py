"""Reading trace files into canonical, validated frames.

:func:`load` is the one entry point commands use: it expands paths (files, directories,
globs), detects each source's format, reads only the needed columns, normalises them to
the canonical record (:mod:`llmobs_cli.core.record.schema`) and applies the error policy:

* ``fail`` — any problem raises :class:`~llmobs_cli.errors.InputError` listing the first
  :data:`MAX_PROBLEMS` problems as ``file:line: field: problem`` and the total count;
* ``skip`` — rows with problems are dropped and counted by reason in the result.

Format readers register in :data:`llmobs_cli.core.ingest.readers.formats.READERS`.
"""

from __future__ import annotations

import glob as globlib
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

import polars as pl

from llmobs_cli.core.ingest.readers.base import RawRead
from llmobs_cli.core.ingest.readers.formats import READERS, ReadOptions, detect_format
from llmobs_cli.core.record.schema import FIELDS, REQUIRED, ROW, SCHEMA, empty_frame, normalize
from llmobs_cli.errors import InputError, LlmobsError, UsageError

OnError = Literal["fail", "skip"]
MAX_PROBLEMS = 20

__all__ = ["MAX_PROBLEMS", "LoadResult", "OnError", "ReadOptions", "expand_paths", "load"]


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

    def lazy(self) -> pl.LazyFrame:
        return self.frame.lazy()


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files and Parquet directories named by ``paths``; globs expanded, sorted.

    A directory holding Parquet files (hive partitions included) stays one source; any
    other directory contributes the trace files directly inside it. A path or glob that
    matches nothing is an :class:`InputError`. In a directory only trace files count
    (`.jsonl`, `.ndjson`, `.json`, `.csv`, `.parquet`, compressed or not).
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
            if any(p.rglob("*.parquet")):
                out.append(p)
            else:
                files = sorted(f for f in p.iterdir() if f.is_file() and _is_trace_file(f))
                if not files:
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
    if name.startswith("."):
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
        raise UsageError(f"--on-error: expected 'fail' or 'skip', got '{on_error}'")
    wanted = None if columns is None else _with_dependencies(columns)
    opts = options or ReadOptions()
    opts = ReadOptions(
        columns=wanted,
        since=since,
        until=until,
        route_from=opts.route_from,
        include_embeddings=opts.include_embeddings,
    )
    frames: list[pl.DataFrame] = []
    all_problems: list[str] = []
    problem_count = 0
    skipped = 0
    reasons: Counter[str] = Counter()
    result = LoadResult(frame=empty_frame())
    for path in expand_paths(paths):
        kind = fmt or detect_format(path)
        reader = READERS.get(kind)
        if reader is None:
            raise UsageError(
                f"--from: unknown format '{kind}' (known: {', '.join(sorted(READERS))})"
            )
        with unreadable_as(path, kind):
            raw: RawRead = reader(path, opts)
        result.sources.append(str(path))
        result.formats[str(path)] = kind
        required = (
            (*REQUIRED, "latency_ms")
            if wanted is None
            else tuple(f for f in (*REQUIRED, "latency_ms") if f in wanted)
        )
        with unreadable_as(path, kind):
            norm = normalize(raw.frame, check_required=required)
        frame = norm.frame
        probs = norm.problems
        problem_count += len(raw.problems) + probs.height
        for line in raw.problems:
            reasons[_reason(line)] += 1
        skipped += len(raw.problems)
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
                reasons[f"{f}: {m}"] += n
            bad_rows = probs[ROW].unique()
            skipped += bad_rows.len()
            frame = frame.filter(~pl.col(ROW).is_in(bad_rows.implode()))
        frames.append(frame)
    result.problems = all_problems
    result.problem_count = problem_count
    result.skipped = skipped
    result.skipped_reasons = reasons
    if problem_count and on_error == "fail":
        raise InputError(all_problems, total=problem_count)
    frame = (
        pl.concat(frames, how="vertical")
        if frames
        else empty_frame().with_columns(pl.lit(None, dtype=pl.Int64).alias(ROW))
    )
    frame = frame.drop(ROW)
    if since is not None:
        frame = frame.filter(pl.col("timestamp") >= since)
    if until is not None:
        frame = frame.filter(pl.col("timestamp") < until)
    result.frame = frame
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
