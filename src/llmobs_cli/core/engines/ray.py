"""The Ray engine: Ray Data reads the Parquet, ``map_batches`` runs the partial function,
the driver merges the small partial frames as they stream back.

Needs the ``ray`` extra (``pip install "llmobs[ray]"``). ``ray_address`` (or
``RAY_ADDRESS``) joins a running cluster; without one a local Ray starts on this machine.
Ray Data has no cheap distributed distinct, so duplicate span ids are *not* dropped on this
engine (the local and Spark engines count a call read twice once): the result says so.
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
    # Ray Data's progress bars would mix with llmobs' own on stderr.
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
            return _run(ray, paths, columns, job)
        finally:
            with contextlib.suppress(Exception):
                ray.shutdown()


def _run(
    ray: Any, paths: Sequence[str | Path], columns: Sequence[str], job: BatchJob
) -> tuple[pl.DataFrame, int]:
    files = [str(p) for p in paths]
    try:
        ds = ray.data.read_parquet(files)
        present = [c for c in columns if c in ds.schema().names]
        ds = ds.select_columns(present)
    except Exception as exc:
        raise UsageError(
            f"--engine ray: cannot read {', '.join(files)} as Parquet ({_first(exc)})"
        ) from exc
    parts = ds.map_batches(job.run, batch_format="pyarrow", zero_copy_batch=True)
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
