"""The Ray engine: Ray Data reads the Parquet, ``map_batches`` runs the partial function,
the driver merges the small partial frames as they stream back.

Needs the ``ray`` extra (``pip install "llmobs[ray]"``). ``ray_address`` (or
``RAY_ADDRESS``) joins a running cluster; without one a local Ray starts on this machine.
Duplicate span ids follow the local rule (:mod:`.dedupe`): a ``map_batches`` pass keys
each row and assigns it a hash bucket of its key, ``groupby(bucket).map_groups`` brings
every copy of a call into one task (a hash-partitioned shuffle; no key reaches the driver),
which flags the repeats and runs the partial function.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.engines import EngineSettings
from llmobs_cli.core.engines.batch import BatchJob
from llmobs_cli.core.partials.merge import Merger
from llmobs_cli.errors import ServiceError, UsageError

INSTALL = 'pip install "llmobs[ray]"'


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise UsageError(f"--engine ray needs Ray: {INSTALL}") from exc
    return ray


def start(settings: EngineSettings) -> Any:
    ray = _ray()
    if settings.ray_address:
        from llmobs_cli.core.engines.reach import require_reachable

        require_reachable("--engine ray", settings.ray_address, 6379)
    if ray.is_initialized():
        return ray
    try:
        ray.init(
            address=settings.ray_address,
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    except Exception as exc:
        where = settings.ray_address or "a local Ray"
        raise ServiceError(f"--engine ray: cannot start or reach {where} ({_first(exc)})") from exc
    # Ray Data's progress bars and per-dataset INFO lines would mix with llmobs' own.
    import logging

    logging.getLogger("ray.data").setLevel(logging.WARNING)
    with contextlib.suppress(Exception):
        ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def merged_partials(
    settings: EngineSettings,
    paths: Sequence[str | Path],
    columns: Sequence[str],
    job: BatchJob,
    *,
    keep_duplicates: bool = False,
) -> tuple[pl.DataFrame, int]:
    """Run ``job`` over the Parquet at ``paths`` on Ray; returns (merged partials, -1).

    Ray prints its own notices (raylet warnings, worker logs) from background threads to
    standard output, where they would corrupt ``--format json``: they are sent to standard
    error while the job runs, and Ray is shut down before returning so that none arrives
    later, while the caller writes its output.
    """
    with contextlib.redirect_stdout(sys.stderr):
        ray = start(settings)
        try:
            return _run(ray, paths, columns, job, keep_duplicates)
        finally:
            with contextlib.suppress(Exception):
                ray.shutdown()


#: Rows per shuffle bucket on Ray: a bucket is one task's input when duplicates are dropped.
BUCKET_ROWS = 1_000_000


def _run(
    ray: Any,
    paths: Sequence[str | Path],
    columns: Sequence[str],
    job: BatchJob,
    keep_duplicates: bool = False,
) -> tuple[pl.DataFrame, int]:
    from llmobs_cli.core.engines.dedupe import BUCKET, Buckets, SpanKeys
    from llmobs_cli.core.ingest.readers.parquet import source_columns

    files = [str(p) for p in paths]
    try:
        ds = ray.data.read_parquet(files, include_paths=not keep_duplicates)
        names = ds.schema().names
        present = source_columns([n for n in names if n != "path"], columns)
        ds = ds.select_columns(present if keep_duplicates else [*present, "path"])
        rows = 0 if keep_duplicates else _row_count(files, ds)
    except Exception as exc:
        raise UsageError(
            f"--engine ray: cannot read {', '.join(files)} as Parquet ({_first(exc)})"
        ) from exc
    if keep_duplicates:
        parts = ds.map_batches(job.run, batch_format="pyarrow", zero_copy_batch=True)
    else:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(2 * cpus, -(-rows // BUCKET_ROWS))
        keyed = ds.map_batches(
            Buckets(SpanKeys(job.required), n).run, batch_format="pyarrow", zero_copy_batch=True
        )
        parts = keyed.groupby(BUCKET, num_partitions=n).map_groups(
            _mark_and_run(job), batch_format="pyarrow"
        )
    merger = Merger()
    try:
        for batch in parts.iter_batches(batch_format="pyarrow", batch_size=None):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            merger.add(frame)
    except Exception as exc:
        raise ServiceError(f"--engine ray: the job failed ({_first(exc)})") from exc
    merged = merger.result()
    if merged is None:
        empty = pl.from_arrow(job.schema.empty_table())
        assert isinstance(empty, pl.DataFrame)
        merged = empty
    return merged.select([f.name for f in job.schema]), -1


def _mark_and_run(job: BatchJob) -> Any:
    """One shuffle bucket (every copy of its keys): flag the repeats, then run the job."""

    def mark_and_run(table: Any) -> Any:
        from llmobs_cli.core.engines.dedupe import mark_repeats

        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return job.run(mark_repeats(frame).to_arrow())

    return mark_and_run


def write_sample(
    settings: EngineSettings,
    paths: Sequence[str | Path],
    out: Path,
    prepare: Any,
    rows: Any,
    *,
    mixed: bool,
) -> None:
    """``llmobs sample``'s rows on Ray (:mod:`.sampling`): ``map_batches`` keys each row and
    gives it a hash bucket of its trace id (every copy of a call and every call of a trace
    meet in one bucket), ``groupby(bucket).map_groups`` marks the repeats, gives each row
    its trace's largest rate and applies the plan, and ``write_parquet`` writes ``out``
    partitioned by day."""
    with contextlib.redirect_stdout(sys.stderr):
        ray = start(settings)
        try:
            _write_sample(ray, paths, out, prepare, rows, mixed)
        finally:
            with contextlib.suppress(Exception):
                ray.shutdown()


def _write_sample(
    ray: Any, paths: Sequence[str | Path], out: Path, prepare: Any, rows: Any, mixed: bool
) -> None:
    from llmobs_cli.core.engines.dedupe import BUCKET, Buckets, mark_repeats
    from llmobs_cli.core.engines.sampling import DAY, RATE, TRACE, TRACE_RATE

    files = [str(p) for p in paths]
    try:
        # No partition columns: the local reader sees only the files' own columns.
        ds = ray.data.read_parquet(files, include_paths=prepare.dedupe, partitioning=None)
        rows_in = _row_count(files, ds) if (prepare.dedupe or mixed) else 0
    except Exception as exc:
        raise UsageError(
            f"--engine ray: cannot read {', '.join(files)} as Parquet ({_first(exc)})"
        ) from exc
    if prepare.dedupe or mixed:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        n = max(2 * cpus, -(-rows_in // BUCKET_ROWS))
        keyed = ds.map_batches(
            Buckets(prepare, n, by=TRACE).run, batch_format="pyarrow", zero_copy_batch=True
        )

        def bucket(table: Any) -> Any:
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            if prepare.dedupe:
                frame = mark_repeats(frame)
            if mixed:
                frame = frame.with_columns(pl.col(RATE).max().over(TRACE).alias(TRACE_RATE))
            return rows.run(frame.to_arrow())

        result = keyed.groupby(BUCKET, num_partitions=n).map_groups(bucket, batch_format="pyarrow")
    else:
        result = ds.map_batches(rows.run, batch_format="pyarrow", zero_copy_batch=True)
    try:
        result.write_parquet(str(out), partition_cols=[DAY])
    except Exception as exc:
        raise ServiceError(f"--engine ray: the job failed ({_first(exc)})") from exc


def _row_count(files: Sequence[str], ds: Any) -> int:
    """Rows in the inputs from the Parquet footers alone (Ray's own count otherwise)."""
    try:
        import pyarrow.dataset as pads

        return sum(pads.dataset(f, format="parquet").count_rows() for f in files)
    except Exception:
        return int(ds.count())
