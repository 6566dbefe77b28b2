"""Duplicate span ids on a cluster: the local reader's rule, as a key plus a shuffle.

The local engine drops a row whose source gave a span id (not the default copied from the
trace id) when a row with the same ``(trace_id, span_id, timestamp)`` was read before; rows
that break the record contract are dropped before the check (so a broken copy never hides
a sound one), and ``--keep-duplicates`` turns the check off.

A cluster cannot remember "read before" across workers, so the rule runs in two steps:

1. :class:`SpanKeys` (on the workers, batch by batch) normalises each raw batch exactly as
   the partial function will, and appends :data:`KEY`: the normalised
   ``(trace_id, span_id, timestamp)`` as one unambiguous string for rows that can be
   duplicates, null for the others (no given span id, or a row with a problem);
2. the engine brings every copy of a key together with a hash-partitioned shuffle (Spark: a
   window partitioned by the key; Ray: ``groupby`` on a hash bucket of the key) and marks
   every copy but the first as :data:`DUP`. "First" is the copy from the file that comes
   first in path order — the order the local engine reads a folder in; two copies inside one
   file are one record written twice, and either is kept.

The worker running the partial function drops the marked rows and counts them
(:data:`~.batch.DUPLICATE` partial rows), so the driver can say how many it dropped. Only
the partial frames travel to the driver: no key is collected there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

#: Appended columns (names no trace source uses) all start with this.
PREFIX = "_llmobs_"
KEY = "_llmobs_span_key"
FILE = "_llmobs_file"
DUP = "_llmobs_duplicate"
BUCKET = "_llmobs_bucket"
#: Seed of the bucket hash (any constant: only needs to agree between workers).
_SEED = 0x5EED


def key_expr() -> pl.Expr:
    """The duplicate key of a normalised row whose span id was given (null otherwise).

    The trace id is prefixed with its length so that no choice of ids can make two
    different triples produce the same string."""
    from llmobs_cli.core.ingest.readers import _GIVEN

    trace = pl.col("trace_id").cast(pl.String).fill_null("")
    ts = pl.col("timestamp").dt.epoch("us").cast(pl.String).fill_null("-")
    span = pl.col("span_id").cast(pl.String)
    sep = pl.lit("\x1f")
    text = pl.concat_str(
        [trace.str.len_chars().cast(pl.String), pl.lit(":"), trace, sep, span, sep, ts]
    )
    return pl.when(pl.col(_GIVEN)).then(text).otherwise(None).alias(KEY)


def on_sound_rows(raw: pl.DataFrame, required: Sequence[str], exprs: list[pl.Expr]) -> pl.DataFrame:
    """``exprs`` evaluated on ``raw`` once normalised as the local reader does (the
    ``_span_id_given`` flag included), one row per row of ``raw`` in its order; null on the
    rows that break the record contract (they never count as copies of anything)."""
    from llmobs_cli.core.ingest.readers import _mark_given_span_ids
    from llmobs_cli.core.record.schema import ROW, normalize

    raw = raw.drop([c for c in raw.columns if c.startswith(PREFIX)])
    raw = raw.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
    norm = normalize(raw, check_required=required)
    frame = _mark_given_span_ids(raw, norm.frame)
    if norm.problems.height:
        bad = norm.problems[ROW].unique().implode()
        frame = frame.filter(~pl.col(ROW).is_in(bad))
    got = frame.select(ROW, *exprs)
    return raw.select(ROW).join(got, on=ROW, how="left", maintain_order="left").drop(ROW)


@dataclass(frozen=True)
class SpanKeys:
    """Raw batch → the same batch with :data:`KEY` appended (plain data: picklable)."""

    required: tuple[str, ...]

    def keys(self, raw: pl.DataFrame) -> pl.Series:
        return on_sound_rows(raw, self.required, [key_expr()]).get_column(KEY).cast(pl.String)

    def run(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        if not frame.height:
            return table.append_column(KEY, pa.array([], pa.string()))
        key = self.keys(frame).to_arrow().cast(pa.string())
        return table.append_column(KEY, key)


@dataclass(frozen=True)
class Buckets:
    """Ray's step 1: :class:`SpanKeys` plus the bucket of each row (``hash(key) mod n``)
    and the file it came from (Ray's ``path`` column renamed to :data:`FILE`)."""

    keys: Any  # SpanKeys or anything whose run(table) appends the column ``by``
    n: int
    by: str = KEY
    path_column: str = "path"

    def run(self, batch: pa.Table) -> pa.Table:
        table = batch
        if self.path_column in table.column_names:
            i = table.column_names.index(self.path_column)
            table = table.set_column(i, FILE, table.column(i).cast(pa.string()))
        table = self.keys.run(table)
        key = pl.from_arrow(table.column(self.by))
        assert isinstance(key, pl.Series)
        # Rows that cannot be duplicates spread evenly; copies of one call meet.
        spread = pl.int_range(0, key.len(), eager=True, dtype=pl.UInt64)
        bucket = (
            pl.select(pl.when(key.is_null()).then(spread).otherwise(key.hash(seed=_SEED)) % self.n)
            .to_series()
            .cast(pl.Int64)
        )
        return table.append_column(BUCKET, bucket.to_arrow())


def mark_repeats(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` (every copy of each of its keys present) with :data:`DUP` set on every
    copy but the first in file order; rows without a key are never marked."""
    if KEY not in frame.columns:
        return frame.with_columns(pl.lit(False).alias(DUP))
    order = [KEY, FILE] if FILE in frame.columns else [KEY]
    ranked = frame.with_row_index("_llmobs_i").sort(order, nulls_last=True, maintain_order=True)
    ranked = ranked.with_columns(
        (pl.col(KEY).is_not_null() & ~pl.col(KEY).is_first_distinct()).alias(DUP)
    )
    return ranked.sort("_llmobs_i").drop("_llmobs_i")
