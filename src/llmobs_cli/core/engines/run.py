"""Run a command's partial function on the chosen engine and hand back merged partials.

:func:`merged_partials` is what ``report`` (and any partials-based command) calls when the
engine is not ``local``: it checks that the input is Parquet (the distributed engines read
Parquet datasets; ``llmobs convert`` turns anything llmobs reads into Parquet), builds the
:class:`~.batch.BatchJob`, runs it on Spark or Ray, separates the rows that broke the
record contract, and returns a frame with exactly the local engine's columns and types.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import polars as pl

from llmobs_cli.core.engines import ENGINES, EngineSettings
from llmobs_cli.core.engines.batch import DUPLICATE, PROBLEM, BatchJob, partial_schema
from llmobs_cli.core.partials.compute import METRIC, PART, N
from llmobs_cli.errors import InputError, UsageError


@dataclass
class EngineRun:
    merged: pl.DataFrame | None
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    duplicates: int = 0


def check_engine(name: str) -> None:
    if name not in ENGINES:
        raise UsageError(f"--engine: '{name}' is not one of {', '.join(ENGINES)}")


def _is_remote(p: str) -> bool:
    return "://" in p


def parquet_inputs(paths: Sequence[str | Path], engine: str) -> list[str]:
    """The inputs as strings, refused (exit 2) unless they are Parquet datasets."""
    out = []
    for raw in paths:
        p = str(raw)
        if _is_remote(p) or any(ch in p for ch in "*?["):
            out.append(p)
            continue
        path = Path(p)
        if not path.exists():
            raise UsageError(f"{p}: no such file or directory")
        if path.is_dir():
            if not any(path.rglob("*.parquet")):
                raise UsageError(f"{p}: --engine {engine} reads Parquet; this folder has none")
        elif path.suffix.lower() != ".parquet":
            raise UsageError(
                f"{p}: --engine {engine} reads Parquet datasets (llmobs convert {p} -o "
                f"{path.with_suffix('.parquet').name} turns it into one)"
            )
        out.append(str(path.resolve()))
    return out


def merged_partials(
    settings: EngineSettings,
    paths: Sequence[str | Path],
    columns: Sequence[str],
    fn: Callable[[pl.DataFrame], pl.DataFrame],
    *,
    since: datetime | None,
    until: datetime | None,
    required: Sequence[str] = (),
    on_error: str = "fail",
    keep_duplicates: bool = False,
) -> EngineRun:
    """Merged partials of ``fn`` over ``paths`` on ``settings.name`` (spark or ray)."""
    check_engine(settings.name)
    files = parquet_inputs(paths, settings.name)
    from llmobs_cli.core.record.schema import empty_frame

    local = fn(empty_frame(list(columns)))  # the partial frame's columns and dtypes
    schema = partial_schema(local)
    job = BatchJob(fn, tuple(required), since, until, schema)
    if settings.name == "spark":
        from llmobs_cli.core.engines import spark as eng
    elif settings.name == "ray":
        from llmobs_cli.core.engines import ray as eng  # type: ignore[no-redef]
    else:
        raise UsageError("--engine local does not go through merged_partials")
    merged, _ = eng.merged_partials(settings, files, columns, job, keep_duplicates=keep_duplicates)
    problems = merged.filter(pl.col(PART) == PROBLEM)
    duplicates = int(merged.filter(pl.col(PART) == DUPLICATE).get_column(N).sum() or 0)
    merged = merged.filter(~pl.col(PART).is_in([PROBLEM, DUPLICATE]))
    reasons: Counter[str] = Counter()
    for metric, n in problems.select(METRIC, N).iter_rows():
        reasons[str(metric)] += int(n or 0)
    skipped = sum(reasons.values())
    if skipped and on_error == "fail":
        top = ", ".join(f"{n} x {r}" for r, n in reasons.most_common(3))
        raise InputError(
            [
                f"{', '.join(files)}: {skipped} row(s) break the record contract ({top}); "
                "--on-error skip drops them"
            ]
        )
    if merged.height:
        # Unsigned hashes came back as signed integers bit for bit: reinterpret, not cast.
        merged = merged.with_columns(
            pl.col(c).reinterpret(signed=False)
            for c, dt in local.schema.items()
            if dt == pl.UInt64 and merged.schema[c] == pl.Int64
        ).cast(local.schema, strict=False)
    else:
        merged = local.clear()
    if duplicates:
        import warnings

        from llmobs_cli.errors import InputWarning

        warnings.warn(
            f"{duplicates} duplicate span_id row(s) counted once "
            "(the same call read twice; --keep-duplicates keeps them)",
            InputWarning,
            stacklevel=2,
        )
    run = EngineRun(merged if merged.height else None, skipped, dict(reasons), sources=list(files))
    run.duplicates = duplicates
    return run
