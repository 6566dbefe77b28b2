"""Merging partial frames: a plain group-by over the ``k:`` columns.

``sum:`` columns add, ``min:`` / ``max:`` columns take the min / max. Exact, associative
and order-independent (up to float summation order), so partials from any number of
batches, files, processes or cluster workers merge into the same totals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import polars as pl

from llmobs_cli.core.spill import HashSpill

#: Rows of one spillable part held in memory before they go to disk (~32 bytes each).
SPILL_ROWS = 500_000

#: Reducer outputs of a unit-hash spill held before they are merged into one.
_FOLD_OUTPUTS = 8

#: The column a key-hash spill partitions by (dropped when the rows are read back).
_KEY_HASH = "_spill_key"

#: Turns every merged row of some keys of a part (all of a session's rows, say) into rows
#: that merge by plain sums (or min/max) with the other partitions' results; the output
#: carries its own ``k:part``.
Reducer = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class ByKeys:
    """How a part goes to disk: by a hash of some of its key columns, so every row of a
    key (of those columns) lands in one partition. ``only`` names the columns hashed;
    without it every key column but ``exclude``'s is. ``ByKeys(exclude=("k:bin",))``
    puts every sketch bin of a group in one partition; ``ByKeys()`` (the same as ``None``
    in ``Merger(spill=...)``) splits by the whole key."""

    only: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def chooses(self, column: str) -> bool:
        return column in self.only if self.only else column not in self.exclude


@dataclass(frozen=True)
class Deferred:
    """A reducer that needs the other parts first: ``make`` receives the merged result of
    every other part (the frame :meth:`Merger.result` would return without this one, or
    None) and returns the reducer (the groups to keep apart, chosen by their totals, say)."""

    make: Callable[[pl.DataFrame | None], Reducer]


#: How a spilled part is partitioned: a unit's hash column, or a hash of key columns.
Spill = str | ByKeys | None


def merge_aggs(columns: Iterable[str]) -> list[pl.Expr]:
    """The aggregation of each non-key partial column, named for how it merges."""
    out = []
    for c in columns:
        if c.startswith("k:"):
            continue
        if c.startswith("min:"):
            out.append(pl.col(c).min())
        elif c.startswith("max:"):
            out.append(pl.col(c).max())
        elif c.startswith("q:"):
            # A finalized value (a quantile of one group): never two to combine.
            out.append(pl.col(c).first())
        else:
            out.append(pl.col(c).sum())
    return out


def merge(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Merge partial frames (same columns) into one with a row per distinct key."""
    frames = [f for f in frames if f.height]
    if not frames:
        raise ValueError("merge needs at least one non-empty partial frame")
    df = pl.concat(frames, how="vertical_relaxed")
    keys = [c for c in df.columns if c.startswith("k:")]
    grouped = df.lazy().group_by(keys).agg(merge_aggs(df.columns)).select(df.columns)
    # Polars' streaming engine groups many keys (the session rows: a few per session)
    # in ~40-60 % of the in-memory engine's CPU time (measured on 12 batches of report
    # partials: 0.26-0.32 s -> 0.11-0.15 s); on small frames its start-up is not worth it.
    return grouped.collect(engine="streaming" if df.height >= _STREAMING_ROWS else "auto")


#: Rows from which :func:`merge` runs on Polars' streaming engine.
_STREAMING_ROWS = 65_536


#: Columns a part never uses (null in all its rows): dropped while merging, so that the
#: largest part (sessions) is merged narrow.
_UNUSED: dict[str, tuple[str, ...]] = {
    "sum": ("k:bin", "k:sid"),
    "q": ("k:sid", "min:v", "max:v"),
    "sess": ("k:metric", "k:bin", "min:v", "max:v"),
}


#: Partial columns never numbered: the level and the sketch bin are already small integers,
#: and the part is constant within a merge. The metric name is numbered with the fields
#: (a string on every row of the largest parts, the sketches: ~16 bytes a row).
_STRUCTURAL = frozenset({"k:part", "k:level", "k:bin", "k:sid"})
#: Suffix of the column holding a numbered field's codes (``k:route`` → ``k:route#``).
_CODED = "#"


class _KeyIds:
    """Numbers the values of each grouping field (``k:<field>`` columns) seen, so that
    merges group by small integers: the session part, whose rows grow with the input, is
    re-grouped several times, and grouping by string columns cost ~40 % more than by
    integers. Exact by construction (dictionaries, not hashes).

    Each field has its own dictionary (code 0 is null, code i the i-th value seen), so
    the dictionaries grow with the distinct values of each field, not with their
    combinations: numbering whole key tuples instead meant a table of every (customer,
    hour, metric) seen, joined with every batch (7.8M tuples and 6 GB of peak at 2M rows
    with hourly buckets over two months). A field's column ``k:<field>`` becomes
    ``k:<field>#`` (UInt32) and comes back in :meth:`decode`."""

    def __init__(self, exclude: Iterable[str] = ()) -> None:
        self.fields: list[str] | None = None
        # Per field: its values in code order, a null first (code 0).
        self.values: dict[str, pl.Series] = {}
        # Per-unit hash columns (spilled by) are not numbered: the dictionaries would grow
        # with the units, and the spill partitions by their values.
        self._skip = _STRUCTURAL | frozenset(exclude)

    def _dictionary(self, field: str, column: pl.Series) -> pl.Series:
        """The field's values with those of ``column`` not seen before appended."""
        known = self.values.get(field)
        if known is None:
            known = pl.Series(field, [None], dtype=column.dtype)
        elif known.dtype != column.dtype:
            # A column typed differently in this batch (all-null, say): the dictionary
            # takes the common supertype, as the concatenation in merge() would.
            heads = [known.head(0).to_frame(field), column.head(0).to_frame(field)]
            dtype = pl.concat(heads, how="vertical_relaxed").to_series().dtype
            known, column = known.cast(dtype), column.cast(dtype)
        seen = column.drop_nulls().unique(maintain_order=True)
        new = seen.filter(~seen.is_in(known.slice(1)))
        if new.len():
            known = pl.concat([known, new.rename(field)])
        self.values[field] = known
        return known

    @staticmethod
    def _codes(field: str, known: pl.Series) -> pl.Expr:
        """The codes of ``field``'s column from its dictionary; null for a value the
        dictionary lacks (and for a null: code 0 is filled in by the caller)."""
        if known.len() == 1:  # only nulls so far (Polars cannot replace from nothing)
            return pl.lit(None, pl.UInt32).alias(field + _CODED)
        return (
            pl.col(field)
            .cast(known.dtype)
            .replace_strict(
                known.slice(1),
                pl.int_range(1, known.len(), dtype=pl.UInt32, eager=True),
                default=pl.lit(None, pl.UInt32),
                return_dtype=pl.UInt32,
            )
            .alias(field + _CODED)
        )

    def encode(self, rows: pl.DataFrame) -> pl.DataFrame:
        if self.fields is None:
            self.fields = [c for c in rows.columns if c.startswith("k:") and c not in self._skip]
        fields = self.fields
        if not fields:
            return rows
        coded = [f + _CODED for f in fields]
        if all(f in self.values and self.values[f].dtype == rows.schema[f] for f in fields):
            # Usually every value of a batch was seen before: one pass codes the rows, and
            # a value new to its dictionary shows as a null code.
            out = rows.with_columns(self._codes(f, self.values[f]) for f in fields)
            nulls = out.select(pl.col(coded).null_count()).row(0)
            if nulls == rows.select(pl.col(fields).null_count()).row(0):
                return out.with_columns(pl.col(coded).fill_null(0)).drop(fields)
        known = {f: self._dictionary(f, rows.get_column(f)) for f in fields}
        return (
            rows.with_columns(self._codes(f, known[f]) for f in fields)
            .with_columns(pl.col(coded).fill_null(0))
            .drop(fields)
        )

    def decode(self, rows: pl.DataFrame) -> pl.DataFrame:
        if not self.fields:
            return rows
        return rows.with_columns(
            self.values[f].gather(rows.get_column(f + _CODED)).alias(f) for f in self.fields
        ).drop(f + _CODED for f in self.fields)


class Merger:
    """Merges partials as they arrive, in memory bounded by the merged size, not by the
    number of batches. Each part (``k:part``) is merged on its own, without the columns it
    never uses.

    Up to ``pending`` frames of a part wait, then are merged into one *run*; runs are kept
    log-structured (each larger than the next, else the two are merged, as in a binary
    counter), so a row is re-grouped O(log batches) times in all. Folding every few batches into one
    growing total instead re-groups the whole total each time: quadratic in the batches
    for the session part, whose size grows with the input (measured: a third of the
    report's time at 2M rows).

    ``spill`` names parts whose merged size grows with the input and how they are split
    on disk: once such a part holds more than ``spill_rows`` rows, they are merged and
    written to disk in hash partitions (:class:`~llmobs_cli.core.spill.HashSpill`), so
    memory stays bounded during the pass. ``{"sess": "k:sid"}`` splits by the 64-bit
    hash column of a unit (one row per session): such a part needs a reducer in
    :meth:`result`, which sees one partition (every row of its units) at a time, and the
    reducers' outputs are merged. ``{"q": ByKeys(...)}`` (or ``None``: every key column)
    splits by a hash of key columns: :meth:`result` merges each partition on its own and
    reduces it when given a reducer (which must keep the hashed keys apart: the sketch
    bins of each group → that group's quantiles), and concatenates the partitions, which
    share no hashed key."""

    def __init__(
        self,
        pending: int = 4,
        *,
        spill: Mapping[str, Spill] | None = None,
        spill_rows: int | None = None,
        spill_dir: str | None = None,
    ) -> None:
        self.pending = pending
        # One numbering per part: parts keep different key columns (sessions no metric).
        self._exclude = tuple(c for c in (spill or {}).values() if isinstance(c, str))
        self._keys: dict[str, _KeyIds] = {}
        self._frames: dict[str, list[pl.DataFrame]] = {}
        self._runs: dict[str, list[pl.DataFrame]] = {}
        self._columns: list[str] | None = None
        self._schema: pl.Schema | None = None
        self._spill_cols = dict(spill or {})
        # Read at construction (not bound at definition), so a test can lower it.
        self._spill_rows = SPILL_ROWS if spill_rows is None else spill_rows
        self._spill_dir = spill_dir
        self._spills: dict[str, HashSpill] = {}
        self.spilled_rows = 0

    def add(self, frame: pl.DataFrame) -> None:
        if not frame.height:
            return
        if self._columns is None:
            self._columns, self._schema = list(frame.columns), frame.schema
        for (part,), rows in frame.partition_by("k:part", as_dict=True).items():
            name = str(part)
            # A part's constant name and its unused columns are not kept while merging.
            drop = [c for c in ("k:part", *_UNUSED.get(name, ())) if c in rows.columns]
            rows = rows.drop(drop)
            pending = self._frames.setdefault(name, [])
            ids = self._keys.get(name)
            if ids is None:
                ids = self._keys[name] = _KeyIds(exclude=self._exclude)
            pending.append(ids.encode(rows))
            # A batch's partials can outnumber its rows (groups × time buckets × metrics:
            # customers by the hour), so a part is also merged once its waiting frames
            # hold twice the rows it may keep in memory. (At once the size itself, the
            # sketch bins of a daily dashboard were merged every batch: 5-10 % more CPU.)
            waiting = sum(f.height for f in pending)
            if len(pending) >= self.pending or waiting > 2 * self._spill_rows:
                self._flush(name)
                if name in self._spill_cols and self._held(name) > self._spill_rows:
                    self._to_disk(name)

    def _held(self, part: str) -> int:
        return sum(f.height for f in self._runs.get(part, [])) + sum(
            f.height for f in self._frames.get(part, [])
        )

    def _to_disk(self, part: str) -> None:
        """Merge the part's rows in memory and write them to its hash partitions."""
        folded = self._fold(part)
        spill = self._spills.get(part)
        if spill is None:
            how = self._spill_cols[part]
            col = how if isinstance(how, str) else _KEY_HASH
            spill = self._spills[part] = HashSpill(col, directory=self._spill_dir)
        spill.add(self._hashed(part, folded))
        self.spilled_rows += folded.height
        self._runs[part] = []

    def _hashed(self, part: str, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with the column a key-hash spill partitions by (others as they are).

        Grouping fields are numbered (``k:<field>#``): a field's codes stand for its values
        (the numbering is one-to-one and fixed for the merger), so they are hashed as they
        are."""
        how = self._spill_cols[part]
        if isinstance(how, str):
            return rows
        by = how or ByKeys()
        hashed = [
            c for c in rows.columns if c.startswith("k:") and by.chooses(c.removesuffix(_CODED))
        ]
        if not hashed:  # nothing to tell rows apart: one partition
            return rows.with_columns(pl.lit(0, pl.UInt64).alias(_KEY_HASH))
        return rows.with_columns(pl.struct(hashed).hash(seed=0x5B1).alias(_KEY_HASH))

    def _flush(self, part: str) -> None:
        frames = self._frames.pop(part, [])
        if not frames:
            return
        runs = self._runs.setdefault(part, [])
        runs.append(merge(frames))
        while len(runs) > 1 and runs[-2].height <= runs[-1].height:
            last = runs.pop()
            runs[-1] = merge([runs[-1], last])

    def _fold(self, part: str) -> pl.DataFrame:
        self._flush(part)
        runs = self._runs.get(part, [])
        if len(runs) > 1:
            runs[:] = [merge(runs)]
        return runs[0]

    def _reduced(self, part: str, reduce: Reducer | None) -> pl.DataFrame | None:
        """The part's merged rows (``reduce`` None) or the reducer's rows over them: in
        memory, or partition by partition when the part went to disk (a unit-hash spill's
        reducer outputs merged; a key-hash spill's partitions, disjoint in the hashed keys,
        concatenated)."""
        ids = self._keys[part]
        spill = self._spills.get(part)
        by_unit = isinstance(self._spill_cols.get(part), str)
        if spill is None:
            rows = ids.decode(self._fold(part))
            return rows if reduce is None else reduce(rows)
        try:
            if self._held(part):
                spill.add(self._hashed(part, self._fold(part)))
                self._runs[part] = []
            outs = []
            for p in range(spill.parts):
                stored = spill.partition(p)
                if stored is None:
                    continue
                spill.drop_partition(p)
                out = ids.decode(merge([stored.drop(_KEY_HASH, strict=False)]))
                if reduce is not None:
                    out = reduce(out)
                if out.height:
                    outs.append(out)
                if by_unit and len(outs) >= _FOLD_OUTPUTS:
                    # Each partition's output covers every group of its units (all hours
                    # of a release, say): folded as they come, so that the outputs held
                    # are those of one merged total, not of every partition.
                    outs = [merge(outs)]
            if not outs:
                return None
            if not by_unit:
                return pl.concat(outs, how="vertical_relaxed")
            return merge(outs)
        finally:
            spill.close()
            del self._spills[part]

    def result(self, reduce: Mapping[str, Reducer | Deferred] | None = None) -> pl.DataFrame | None:
        """The merged partials, every column back (None when nothing was added).

        ``reduce`` maps a part to its reducer: that part's merged rows are replaced by the
        reducer's output (its own ``k:part``); a part spilled by a unit's hash needs one.
        A :class:`Deferred` reducer is made once every other part is merged, from their
        result."""
        if self._columns is None or self._schema is None:
            return None
        reduce = dict(reduce or {})
        by_unit = [p for p in self._spills if isinstance(self._spill_cols[p], str)]
        missing = [p for p in by_unit if p not in reduce]
        if missing:
            raise ValueError(f"spilled part(s) {missing} need a reducer")
        parts = list(dict.fromkeys([*self._runs, *self._frames]))
        later = [p for p in parts if isinstance(reduce.get(p), Deferred)]
        merged: dict[str, pl.DataFrame] = {}
        for part in parts:
            if part not in later:
                how = reduce.get(part)
                assert not isinstance(how, Deferred)
                self._keep(merged, part, self._reduced(part, how))
        for part in later:
            deferred = reduce[part]
            assert isinstance(deferred, Deferred)
            made = deferred.make(self._assemble(merged))
            self._keep(merged, part, self._reduced(part, made))
        return self._assemble(merged)

    @staticmethod
    def _keep(merged: dict[str, pl.DataFrame], part: str, out: pl.DataFrame | None) -> None:
        if out is not None and out.height:
            merged[part] = out

    def _assemble(self, merged: Mapping[str, pl.DataFrame]) -> pl.DataFrame | None:
        """The parts in one frame: every column of every part, null where a part has none."""
        if not merged or self._schema is None or self._columns is None:
            return None
        schema = self._schema
        columns = list(self._columns)
        for f in merged.values():
            columns += [c for c in f.columns if c not in columns]
        tagged = [
            f if "k:part" in f.columns else f.with_columns(pl.lit(part).alias("k:part"))
            for part, f in merged.items()
        ]
        return pl.concat(
            [
                f.with_columns(
                    pl.lit(None, schema.get(c, pl.Float64())).alias(c)
                    for c in columns
                    if c not in f.columns
                ).select(columns)
                for f in tagged
            ],
            how="vertical_relaxed",
        )
