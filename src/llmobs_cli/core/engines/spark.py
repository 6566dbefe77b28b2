"""The Spark engine: Parquet read by Spark, partials in ``mapInArrow``, merge by ``groupBy``.

Needs the ``spark`` extra (``pip install "llmobs[spark]"``: PySpark ≥ 4) and, for a local
or classic cluster session, Java 17. ``spark_remote`` (``sc://host:15002``) connects over
Spark Connect instead; llmobs ships itself to the cluster with ``addArtifacts`` so that
workers without llmobs installed can run the partial function (they need Polars and
PyArrow, which PySpark's Arrow path requires anyway). Object storage paths
(``s3a://``, ``gs://``, ``abfss://``) are read by Spark's own file systems: their jars and
credentials are the platform's concern (Databricks, EMR, Dataproc have them).
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from llmobs_cli.core.engines import EngineSettings
from llmobs_cli.core.engines.batch import BatchJob
from llmobs_cli.errors import ServiceError, UsageError

INSTALL = 'pip install "llmobs[spark]"'
_SAFE = "_c0l0n_"  # Spark column names: ":" kept out of them for portability


def _safe(name: str) -> str:
    return name.replace(":", _SAFE)


def _unsafe(name: str) -> str:
    return name.replace(_SAFE, ":")


def session(settings: EngineSettings) -> Any:
    """A Spark session (local ``local[*]`` by default), or exit 2/3 saying why not."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise UsageError(f"--engine spark needs PySpark: {INSTALL}") from exc
    builder = SparkSession.builder.appName("llmobs")
    if settings.spark_remote:
        from llmobs_cli.core.engines.reach import require_reachable

        require_reachable("--engine spark", settings.spark_remote, 15002)
        builder = builder.remote(settings.spark_remote)
    else:
        if shutil.which("java") is None and not _java_home(settings.java_home):
            raise UsageError(
                "--engine spark needs Java 17 for a local Spark session (Debian: apt-get "
                "install openjdk-17-jre-headless), or --spark-remote sc://HOST:15002"
            )
        from llmobs_cli.environment import spark_workers_use_this_python

        spark_workers_use_this_python()
        builder = (
            builder.master(settings.spark_master or "local[*]")
            .config(
                "spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile=file:{_quiet_log4j()}"
            )
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.log.level", "ERROR")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.session.timeZone", "UTC")
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # PySpark's pandas-version notice
            spark = builder.getOrCreate()
    except Exception as exc:  # Py4J / gRPC errors: the cluster could not be reached
        if "PACKAGE_NOT_INSTALLED" in str(exc):
            raise UsageError(f"--engine spark: {_first(exc)} ({INSTALL})") from exc
        where = settings.spark_remote or settings.spark_master or "local[*]"
        raise ServiceError(
            f"--engine spark: cannot start or reach Spark at {where} ({_first(exc)})"
        ) from exc
    if settings.spark_remote:
        _ship_llmobs(spark)
    return spark


def _quiet_log4j() -> Path:
    """A log4j2 configuration that keeps Spark's own INFO/WARN lines off llmobs' stderr."""
    import tempfile

    path = Path(tempfile.gettempdir()) / "llmobs-spark-log4j2.properties"
    if not path.exists():
        path.write_text(
            "rootLogger.level = error\n"
            "rootLogger.appenderRef.stderr.ref = console\n"
            "appender.console.type = Console\n"
            "appender.console.name = console\n"
            "appender.console.target = SYSTEM_ERR\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = spark: %m%n\n"
        )
    return path


def _java_home(home: str | None) -> bool:
    return bool(home) and Path(home or "", "bin", "java").exists()


def _first(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _ship_llmobs(spark: Any) -> None:
    """Make ``llmobs_cli`` importable on Spark Connect workers (a zip of the package)."""
    import tempfile
    import zipfile

    import llmobs_cli

    root = Path(llmobs_cli.__file__).parent
    tmp = Path(tempfile.mkdtemp()) / "llmobs_cli.zip"
    with zipfile.ZipFile(tmp, "w") as z:
        for f in root.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                z.write(f, Path("llmobs_cli") / f.relative_to(root))
    # An older server, or llmobs already installed there: go on without.
    with contextlib.suppress(Exception):
        spark.addArtifacts(str(tmp), pyfile=True)


def merged_partials(
    settings: EngineSettings,
    paths: Sequence[str | Path],
    columns: Sequence[str],
    job: BatchJob,
    *,
    keep_duplicates: bool = False,
) -> tuple[pl.DataFrame, int]:
    """Run ``job`` over the Parquet at ``paths`` on Spark; returns (merged partials, rows
    read before the window)."""
    spark = session(settings)
    from pyspark.sql import functions as F

    try:
        df = spark.read.parquet(*[str(p) for p in paths])
    except Exception as exc:
        raise UsageError(
            f"--engine spark: cannot read {', '.join(map(str, paths))} as Parquet ({_first(exc)})"
        ) from exc
    present = [c for c in columns if c in df.columns]
    df = df.select(*present)
    df = _push_window(df, job.since, job.until, F)
    if not keep_duplicates and {"trace_id", "span_id", "timestamp"} <= set(present):
        df = df.dropDuplicates(["trace_id", "span_id", "timestamp"])
    schema = job.schema
    safe_schema = pa.schema([pa.field(_safe(f.name), f.type) for f in schema])

    def run(batches: Any) -> Any:
        for rb in batches:
            out = job.run(rb)
            yield from out.rename_columns([_safe(n) for n in out.column_names]).to_batches()

    from pyspark.sql.pandas.types import from_arrow_schema

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        parts = df.mapInArrow(run, from_arrow_schema(safe_schema))
    keys = [_safe(f.name) for f in schema if f.name.startswith("k:")]
    aggs = []
    for f in schema:
        if f.name.startswith("k:"):
            continue
        c = _safe(f.name)
        fn = F.min if f.name.startswith("min:") else F.max if f.name.startswith("max:") else F.sum
        aggs.append(fn(F.col(c)).alias(c))
    merged = parts.groupBy(*[F.col(k) for k in keys]).agg(*aggs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            table = merged.toArrow()
    except Exception as exc:
        raise ServiceError(f"--engine spark: the job failed ({_first(exc)})") from exc
    table = table.rename_columns([_unsafe(n) for n in table.column_names])
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out.select([f.name for f in schema]), -1


def _push_window(df: Any, since: datetime | None, until: datetime | None, F: Any) -> Any:
    """Filter on ``timestamp`` in Spark when it is a real timestamp column (pushdown to the
    Parquet row groups); the worker filters again after normalising either way."""
    if "timestamp" not in df.columns:
        return df
    dtype = dict(df.dtypes).get("timestamp", "")
    if not dtype.startswith("timestamp"):
        return df
    if since is not None:
        df = df.filter(F.col("timestamp") >= F.lit(since))
    if until is not None:
        df = df.filter(F.col("timestamp") < F.lit(until))
    return df
