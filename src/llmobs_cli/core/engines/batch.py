"""The function an engine's workers run on each Arrow batch: canonical rows → partials.

Workers receive raw Parquet batches, so the batch is first normalised exactly as the local
reader normalises a file (:func:`~llmobs_cli.core.record.schema.normalize`: aliases,
types, defaults), rows outside the window are dropped, and the command's pure partial
function is applied. Rows that break the record contract do not stop a worker: they are
counted into extra partial rows (``k:part = "problem"``, the problem as ``k:metric``) that
merge like every other row, and the driver decides (``--on-error``). Rows an engine marked
as repeated copies of one call (:mod:`.dedupe`) are dropped here and counted the same way
(``k:part = "duplicate"``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import pyarrow as pa

from llmobs_cli.core.partials.compute import METRIC, PART, N

PROBLEM = "problem"
#: Partial rows counting the duplicate span-id rows a worker dropped (``k:metric`` empty).
DUPLICATE = "duplicate"


@dataclass(frozen=True)
class BatchJob:
    """Everything a worker needs (plain data: picklable)."""

    fn: Callable[[pl.DataFrame], pl.DataFrame]
    required: tuple[str, ...]
    since: datetime | None
    until: datetime | None
    schema: pa.Schema  # of the partial frames, with Spark-compatible types

    def run(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        """One batch → its partials as an Arrow table of :attr:`schema`."""
        from llmobs_cli.core.engines.dedupe import DUP, PREFIX
        from llmobs_cli.core.record.schema import normalize

        raw = pl.from_arrow(batch)
        assert isinstance(raw, pl.DataFrame)
        repeats = 0
        if DUP in raw.columns:
            marked = raw.get_column(DUP).fill_null(False)
            repeats = int(marked.sum())
            if repeats:
                raw = raw.filter(~marked)
        raw = raw.drop([c for c in raw.columns if c.startswith(PREFIX)])
        norm = normalize(raw, check_required=self.required)
        frame = norm.frame.drop("_row", strict=False)
        problems = norm.problems
        if problems.height:
            bad = problems["_row"].unique()
            frame = norm.frame.filter(~pl.col("_row").is_in(bad.implode())).drop("_row")
        if self.since is not None:
            frame = frame.filter(pl.col("timestamp") >= self.since)
        if self.until is not None:
            frame = frame.filter(pl.col("timestamp") < self.until)
        parts = [self.fn(frame)] if frame.height else []
        if problems.height:
            counts = (
                problems.group_by("field", "message")
                .agg(pl.col("_row").n_unique().alias(N))
                .select(
                    pl.lit(PROBLEM).alias(PART),
                    (pl.col("field") + ": " + pl.col("message")).alias(METRIC),
                    pl.col(N).cast(pl.Int64),
                )
            )
            parts.append(counts)
        if repeats:
            parts.append(
                pl.DataFrame({PART: [DUPLICATE], METRIC: [""], N: [repeats]}).with_columns(
                    pl.col(N).cast(pl.Int64)
                )
            )
        if not parts:
            return self.schema.empty_table()
        out = pl.concat(parts, how="diagonal_relaxed").to_arrow()
        return conform_arrow(out, self.schema)


def spark_types(schema: pa.Schema) -> pa.Schema:
    """``schema`` with large Arrow types replaced by the ones Spark accepts back."""
    fields = []
    for f in schema:
        t = f.type
        if pa.types.is_large_string(t):
            t = pa.string()
        elif pa.types.is_uint64(t):
            t = pa.int64()  # Spark has no unsigned type: hashes travel bit for bit
        elif pa.types.is_large_binary(t):
            t = pa.binary()
        fields.append(pa.field(f.name, t, nullable=True))
    return pa.schema(fields)


def conform_arrow(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in order and type (missing → null)."""
    cols = []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type, safe=False))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def partial_schema(probe: pl.DataFrame) -> pa.Schema:
    """The Arrow schema, with Spark-compatible types, of partial frames shaped like
    ``probe`` (the command's partial function run on an empty batch)."""
    return spark_types(probe.to_arrow().schema)
