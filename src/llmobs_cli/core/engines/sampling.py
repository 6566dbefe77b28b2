"""``llmobs sample`` on Spark or Ray: the local engine's rows, written by the engine's writer.

The output is a ``date=YYYY-MM-DD`` partitioned Parquet tree (the layout of
``llmobs convert --partition-by date``), written in three steps:

1. **Counts** (the partials engine, :func:`.run.merged_partials`): rows and calls per
   route, after duplicate span ids and (``--on-error skip``) bad rows are dropped. Bad rows
   under ``--on-error fail``, a ``--rate ROUTE`` the data lacks, or no row at all stop the
   command here, before anything is written.
2. **Rows**: :class:`Prepare` normalises each raw batch on the workers and appends each
   row's duplicate key (:mod:`.dedupe`), trace id and keep rate; one shuffle on the engine
   marks the repeated copies of a call and gives every row the largest rate of its trace
   (a trace is kept or dropped whole); :class:`SampleRows` then drops the repeats and the
   bad rows and applies the plan with the local code
   (:func:`~llmobs_cli.core.ingest.storage_sampling.apply_plan`: the same stable hash of
   ``trace_id``, the same ``sample_rate`` rewrite). The engine writes the kept rows,
   partitioned by day, into a stage folder next to the target.
3. **Publish** (on the driver, like :class:`~llmobs_cli.core.sinks.PartitionSink`): each
   written partition is moved into the target tree, replacing that partition's previous
   Parquet files; other partitions and files are kept, and the manifest is updated. The
   target is checked first: an existing folder that llmobs did not write is refused.

The stage and the target must be a path that the driver and every worker see (local
disk in local mode, a shared mount on a cluster); object-store outputs are refused,
because publishing relies on renames.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from llmobs_cli.core.engines import EngineSettings
from llmobs_cli.core.engines.batch import conform_arrow
from llmobs_cli.core.engines.dedupe import DUP, KEY, PREFIX, key_expr, on_sound_rows
from llmobs_cli.core.ingest.storage_sampling import SamplePlan, SampleResult, apply_plan
from llmobs_cli.core.partials.compute import METRIC, PART, SUM, N
from llmobs_cli.errors import InputError, UsageError

TRACE = "_llmobs_trace"
RATE = "_llmobs_rate"
TRACE_RATE = "_llmobs_trace_rate"
DAY = "date"
ROUTES = "routes"


def _route_rate(plan: SamplePlan) -> pl.Expr:
    """The keep rate of a row's route (a missing route is the route ``default``)."""
    return (
        pl.col("route")
        .fill_null("default")
        .replace_strict(dict(plan.rates), default=plan.default_rate, return_dtype=pl.Float64)
    )


def mixed_rates(plan: SamplePlan) -> bool:
    """Whether routes may have different rates (then a trace takes its largest)."""
    return len({*plan.rates.values(), plan.default_rate}) > 1


def compatible(t: pa.DataType) -> pa.DataType:
    """``t`` with the large Arrow types Spark does not take back made regular, nested too."""
    if pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(compatible(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, compatible(f.type)) for f in t])
    if pa.types.is_uint64(t):
        return pa.int64()
    return t


def output_schema() -> pa.Schema:
    """Canonical fields plus the ``date`` partition column, in Spark-compatible types."""
    from llmobs_cli.core.record.schema import FIELDS, empty_frame

    base = empty_frame(list(FIELDS)).to_arrow().schema
    fields = [pa.field(f.name, compatible(f.type)) for f in base]
    return pa.schema([*fields, pa.field(DAY, pa.date32())])


def _as_table(batch: pa.RecordBatch | pa.Table) -> pa.Table:
    return pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch


@dataclass(frozen=True)
class Prepare:
    """Raw batch → the same batch plus :data:`KEY`, :data:`TRACE` and :data:`RATE`."""

    plan: SamplePlan
    required: tuple[str, ...]
    dedupe: bool

    def run(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        table = _as_table(batch)
        names = (KEY, TRACE, RATE)
        types = (pa.string(), pa.string(), pa.float64())
        if not table.num_rows:
            for n, t in zip(names, types, strict=True):
                table = table.append_column(n, pa.array([], t))
            return table
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        key = key_expr() if self.dedupe else pl.lit(None, pl.String).alias(KEY)
        extra = on_sound_rows(
            frame,
            self.required,
            [key, pl.col("trace_id").cast(pl.String).alias(TRACE), _route_rate(self.plan)],
        ).rename({"route": RATE})
        for n, t in zip(names, types, strict=True):
            table = table.append_column(n, extra.get_column(n).to_arrow().cast(t))
        return table


@dataclass(frozen=True)
class SampleRows:
    """Prepared (and shuffled) batch → its kept canonical rows plus ``date``."""

    plan: SamplePlan
    required: tuple[str, ...]
    schema: pa.Schema

    def run(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        from llmobs_cli.core.record.schema import FIELDS, ROW, normalize

        raw = pl.from_arrow(_as_table(batch))
        assert isinstance(raw, pl.DataFrame)
        if DUP in raw.columns:
            raw = raw.filter(~pl.col(DUP).fill_null(False))
        trace_rate = raw.get_column(TRACE_RATE) if TRACE_RATE in raw.columns else None
        raw = raw.drop([c for c in raw.columns if c.startswith(PREFIX)])
        if not raw.height:
            return self.schema.empty_table()
        raw = raw.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
        norm = normalize(raw, check_required=self.required)
        frame = norm.frame
        if norm.problems.height:
            bad = norm.problems[ROW].unique().implode()
            frame = frame.filter(~pl.col(ROW).is_in(bad))
        if trace_rate is not None:
            frame = frame.with_columns(trace_rate.gather(frame.get_column(ROW)).alias(TRACE_RATE))
        kept = (
            apply_plan(
                frame.drop(ROW).lazy(),
                self.plan,
                trace_rate=TRACE_RATE if trace_rate is not None else None,
            )
            .select(FIELDS)
            .with_columns(pl.col("timestamp").dt.date().alias(DAY))
            .collect()
        )
        return conform_arrow(kept.to_arrow(), self.schema)


def route_counts(frame: pl.DataFrame) -> pl.DataFrame:
    """The counts partial: rows (``sum:n``) and calls (Σ 1/sample_rate, ``sum:v``) per
    route, the route in ``k:metric``."""
    return (
        frame.lazy()
        .group_by(pl.col("route").fill_null("default").alias(METRIC))
        .agg(
            pl.len().cast(pl.Int64).alias(N),
            (1.0 / pl.col("sample_rate").fill_null(1.0)).sum().cast(pl.Float64).alias(SUM),
        )
        .select(pl.lit(ROUTES).alias(PART), METRIC, N, SUM)
        .collect()
    )


def check_output(out: Path, inputs: Sequence[str]) -> None:
    from llmobs_cli.core import outputs

    if "://" in str(out):
        raise UsageError(
            f"{out}: sample on a cluster engine writes to a folder that the driver and the "
            "workers share (publishing renames files); object-store outputs are not supported"
        )
    if Path(out).name.lower().endswith((".jsonl", ".json", ".gz", ".zst", ".zstd")):
        raise UsageError(
            f"{out}: sample on a cluster engine writes a date= partitioned Parquet folder; "
            "give a folder name"
        )
    local = [p for p in inputs if "://" not in p and not any(ch in p for ch in "*?[")]
    outputs.check_tree_output(out, local, overwrite=False)
    parent = Path(out).resolve().parent
    if not parent.is_dir():
        raise UsageError(f"{out}: the directory {parent} does not exist")


def publish(stage: Path, out: Path) -> list[str]:
    """Move the partitions written under ``stage`` into the tree ``out``; returns their
    names. A partition's previous Parquet files are replaced, everything else is kept."""
    from llmobs_cli.core.outputs import PARTITION_DIR
    from llmobs_cli.core.sinks import _write_manifest, deferred_signals

    names = sorted(d.name for d in stage.iterdir() if d.is_dir() and PARTITION_DIR.match(d.name))
    with deferred_signals():
        out.mkdir(exist_ok=True)
        for key in names:
            folder = out / key
            folder.mkdir(exist_ok=True)
            new = sorted(
                f
                for f in (stage / key).iterdir()
                if f.is_file() and f.name.endswith(".parquet") and not f.name.startswith(".")
            )
            moved = set()
            for i, f in enumerate(new):
                os.chmod(f, 0o644)
                os.replace(f, folder / f"part-{i}.parquet")
                moved.add(f"part-{i}.parquet")
            for old in folder.iterdir():
                if old.is_file() and old.name.endswith(".parquet") and old.name not in moved:
                    old.unlink()
        _write_manifest(out, names)
    return names


def sample_on_engine(
    settings: EngineSettings,
    paths: Sequence[str | Path],
    out: Path,
    plan: SamplePlan,
    *,
    on_error: str = "fail",
    keep_duplicates: bool = False,
) -> SampleResult:
    """``llmobs sample`` on Spark or Ray (see the module docstring)."""
    from llmobs_cli.core.engines.run import check_engine, merged_partials, parquet_inputs
    from llmobs_cli.core.ingest.storage_sampling import _result, _route_summary, check_named_routes
    from llmobs_cli.core.record.schema import FIELDS, REQUIRED
    from llmobs_cli.core.sinks import _PENDING

    check_engine(settings.name)
    out = Path(out)
    files = parquet_inputs(paths, settings.name)
    check_output(out, files)
    required = (*REQUIRED, "latency_ms")
    counted = merged_partials(
        settings,
        files,
        list(FIELDS),
        route_counts,
        since=None,
        until=None,
        required=required,
        on_error=on_error,
        keep_duplicates=keep_duplicates,
    )
    if counted.merged is None or not counted.merged.height:
        raise InputError([f"{', '.join(files)}: no record left to sample"])
    before = counted.merged.filter(pl.col(PART) == ROUTES).select(
        pl.col(METRIC).alias("route"), pl.col(N).alias("rows"), pl.col(SUM).alias("calls")
    )
    check_named_routes(plan, before.select("route"), files)
    stage = Path(
        tempfile.mkdtemp(prefix=f".{out.resolve().name}.llmobs-", dir=out.resolve().parent)
    )
    _PENDING.add(stage)
    try:
        prepare = Prepare(plan, required, dedupe=not keep_duplicates)
        rows = SampleRows(plan, required, output_schema())
        written = stage / "rows"
        if settings.name == "spark":
            from llmobs_cli.core.engines import spark as eng
        else:
            from llmobs_cli.core.engines import ray as eng  # type: ignore[no-redef]
        eng.write_sample(settings, files, written, prepare, rows, mixed=mixed_rates(plan))
        after = _written_counts(written)
        publish(written, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        _PENDING.discard(stage)
    routes = _route_summary(before.lazy(), after.lazy(), plan, aggregated=True)
    res = _result(plan, routes, streamed=True)
    res.skipped, res.skipped_reasons = counted.skipped, dict(counted.skipped_reasons)
    return res


def _written_counts(folder: Path) -> pl.DataFrame:
    """Rows and calls per route in what the engine wrote (read back on the driver)."""
    files = sorted(folder.rglob("*.parquet"))
    files = [f for f in files if not f.name.startswith(".")]
    schema = {"route": pl.String(), "rows": pl.Int64(), "calls": pl.Float64()}
    if not files:
        return pl.DataFrame(schema=schema)
    return (
        pl.scan_parquet(files, hive_partitioning=False)
        .group_by(pl.col("route").fill_null("default"))
        .agg(
            pl.len().cast(pl.Int64).alias("rows"),
            (1.0 / pl.col("sample_rate")).sum().alias("calls"),
        )
        .collect()
    )
