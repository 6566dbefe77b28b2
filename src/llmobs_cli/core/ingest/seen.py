"""Counting a call read twice once, in memory that does not grow with the rows.

A streaming read drops the rows whose given ``(trace_id, span_id, start time)`` was read
before (the first copy in input order wins). :class:`Deduper` is the one owner of that
rule for every streaming reader (:class:`~llmobs_cli.core.ingest.readers.stream.Stream`
and :func:`~llmobs_cli.core.ingest.batches.iter_batches`). Its result is exact; its memory
is bounded:

* Up to ``exact_keys`` distinct keys (8M by default, 64 MB) it keeps every key in a
  :class:`SeenSet` and decides each row at once: rows come out in input order.
* Past that it switches to a fixed-size *blocked Bloom filter* (:class:`BlockedBloom`,
  256 MB, or smaller when the input's row count is known: :func:`bloom_bits_for`;
  allocated at the switch) plus two files on disk. A row whose key the
  filter has never seen is new for sure: it is passed on and its key appended to a keys
  file (8 bytes a row, sequential writes). A row the filter may have seen (a true repeat
  or a false positive) is held aside: written with all its columns to a spill file, its
  key to a second file. When the input ends, :meth:`Deduper.held` settles the held rows
  exactly: a held key that is in the keys file was passed on before, so its rows are
  repeats; of the others the first held copy (in input order) is kept. The kept rows are
  then passed on, after all the others — so past the threshold the order of rows differs
  from the input's for those rows only.

Memory past the threshold: the filter, a buffer of held rows (copied out of their batch,
at most 65,536 rows or 16 MB) before it is written, and at the end the sorted distinct
held keys (8 bytes per held row while sorting) and one record batch of held rows at a
time. Disk: 8 bytes per row passed on after the switch, plus the held rows (LZ4 Arrow
IPC). The files live in a
fresh directory under the system's temporary directory (``TMPDIR``) that
:meth:`Deduper.close` removes — also when the object is collected.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl

#: Internal column of canonical frames: whether the source gave the row's span id (only
#: such rows can be copies of each other). Defined in the readers; repeated here (a test
#: checks they agree) so this module imports nothing from them.
GIVEN = "_span_id_given"
#: Seed of the key hash (one for every reader: a key means the same everywhere).
SEED = 0x11F3
#: Distinct keys kept exactly in memory before switching to the filter (8 bytes each,
#: twice that for a moment while two sorted runs merge).
EXACT_KEYS = 8_000_000
#: Bits of the filter past the threshold (256 MB). See docs/scale.md for the measured
#: false-positive rates.
BLOOM_BITS = 1 << 31
#: Bits of the filter per key expected (when the input's row count is known in advance,
#: as for Parquet): a smaller filter for a smaller input, at most :data:`BLOOM_BITS`, at
#: least :data:`MIN_BLOOM_BITS`. 24 bits a key end at the false-positive rate the full
#: filter has at ~90M keys (~0.2 %).
BITS_PER_KEY = 24
MIN_BLOOM_BITS = 1 << 27
#: Bits set per key inside its 64-bit word.
BLOOM_K = 4
#: Keys read back at a time at the end (32 MB; a few times that in transient arrays).
_CHUNK = 4_000_000
#: Keys moved into the filter at a time at the switch (hashing them takes ~35 bytes a key
#: of transient arrays: 4M at a time added 140 MB to the peak, 1M adds 35 MB).
_SWITCH_CHUNK = 1 << 20
#: Held rows buffered in memory before they are written out: at most this many rows or
#: bytes (rows with long texts: 65,536 of them took ~200 MB with the copy made to write
#: them), whichever comes first. Each spill file is read back whole at the end.
_HELD_ROWS = 65_536
_HELD_BYTES = 16 << 20
#: Bytes of held rows converted and written at a time (one record batch of a spill file;
#: also what is read back at a time at the end).
_SLICE_BYTES = 8 << 20


def bloom_bits_for(expected_keys: int | None) -> int:
    """The filter's size for at most ``expected_keys`` keys (None: unknown):
    :data:`BITS_PER_KEY` per key rounded up to a power of two, between
    :data:`MIN_BLOOM_BITS` and :data:`BLOOM_BITS` (never above the latter)."""
    if expected_keys is None:
        return BLOOM_BITS
    want = max(1, expected_keys) * BITS_PER_KEY
    return min(BLOOM_BITS, max(MIN_BLOOM_BITS, 1 << (want - 1).bit_length()))


def parquet_rows(files: Sequence[Path], kinds: Sequence[str]) -> int | None:
    """The rows of ``files`` from their Parquet footers (a folder: its ``*.parquet``
    files), or None when one is not Parquet or cannot be read (its read will say why)."""
    import pyarrow.parquet as pq

    total = 0
    try:
        for path, kind in zip(files, kinds, strict=True):
            if kind != "parquet":
                return None
            for f in sorted(path.rglob("*.parquet")) if path.is_dir() else [path]:
                total += pq.ParquetFile(f, memory_map=False).metadata.num_rows
    except Exception:  # a damaged file: the read itself reports it
        return None
    return total


def key_expr() -> pl.Expr:
    """The 64-bit duplicate key of a canonical row: ``(trace_id, span_id, timestamp)``
    hashed, null where the source did not give the span id (such rows are never copies)."""
    h = pl.struct(pl.col("trace_id").fill_null(""), pl.col("span_id"), pl.col("timestamp")).hash(
        SEED
    )
    return pl.when(pl.col(GIVEN)).then(h).otherwise(None)


class SeenSet:
    """A set of 64-bit hashes in sorted runs whose sizes halve (log-structured): adding
    ``n`` hashes costs O(n log n) in all, a lookup one binary search per run. Memory is 8
    bytes per distinct hash.

    Two sorted runs are merged by a stable sort of their concatenation: numpy's stable sort
    of 64-bit integers is a timsort, which finds the two runs and merges them (measured
    36 ms for two runs of 4M keys, the default sort 56 ms); ``np.union1d`` once per batch
    over every key seen took a fifth of a report's time on 2M rows."""

    def __init__(self) -> None:
        self._runs: list[np.ndarray] = []

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def runs(self) -> list[np.ndarray]:
        """The sorted runs (together: every key once)."""
        return list(self._runs)

    def contains(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h).astype(np.uint64, copy=False)
        out = np.zeros(len(h), dtype=bool)
        if not len(h) or not self._runs:
            return out
        # Sorted needles make each binary search walk nearby memory (several times faster).
        order = np.argsort(h)
        needles = h[order]
        found = np.zeros(len(h), dtype=bool)
        for run in self._runs:
            i = np.searchsorted(run, needles)
            i[i == len(run)] = 0
            found |= run[i] == needles
        out[order] = found
        return out

    def add(self, h: np.ndarray) -> None:
        if not len(h):
            return
        run = np.unique(np.asarray(h).astype(np.uint64, copy=False))
        while self._runs and len(self._runs[-1]) <= len(run):
            run = _merge_sorted(self._runs.pop(), run)
        self._runs.append(run)


def _merge_sorted(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sorted distinct values of two sorted distinct arrays (a linear-time merge)."""
    both = np.concatenate([a, b])
    both.sort(kind="stable")
    if len(both) > 1:
        keep = np.empty(len(both), dtype=bool)
        keep[0] = True
        np.not_equal(both[1:], both[:-1], out=keep[1:])
        if not keep.all():
            both = both[keep]
    return both


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """A 64-bit finalizer (splitmix64's): every output bit depends on every input bit, so
    the word and the bits chosen below are independent of how the key was hashed."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


class BlockedBloom:
    """A Bloom filter whose ``k`` bits for a key all lie in one 64-bit word: one cache
    miss per lookup or insert (a standard Bloom filter takes ``k``). ``bits`` must be a
    power of two, at least 64. A key never inserted is reported as maybe present with a
    small probability (its false-positive rate; see docs/scale.md); an inserted key always
    is."""

    def __init__(self, bits: int = BLOOM_BITS, k: int = BLOOM_K) -> None:
        if bits < 64 or bits & (bits - 1):
            raise ValueError(f"bits must be a power of two >= 64, got {bits}")
        self._wbits = (bits // 64).bit_length() - 1
        if not 1 <= k <= (64 - self._wbits) // 6:
            raise ValueError(f"k must be between 1 and {(64 - self._wbits) // 6}, got {k}")
        self.k = k
        self.words = np.zeros(bits // 64, dtype=np.uint64)

    @property
    def nbytes(self) -> int:
        return self.words.nbytes

    def _slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = _mix(np.asarray(keys, dtype=np.uint64))
        word = (h >> np.uint64(64 - self._wbits)).astype(np.intp) if self._wbits else None
        mask = np.zeros(len(h), dtype=np.uint64)
        one, six = np.uint64(1), np.uint64(63)
        for i in range(self.k):
            mask |= one << ((h >> np.uint64(6 * i)) & six)
        if word is None:
            word = np.zeros(len(h), dtype=np.intp)
        return word, mask

    def add_new(self, keys: np.ndarray) -> np.ndarray:
        """Whether each key may have been inserted before this call (True: maybe; False:
        certainly not); then insert the keys that were certainly not. Keys of one call do
        not see each other."""
        word, mask = self._slots(keys)
        maybe = (self.words[word] & mask) == mask
        self._set(word[~maybe], mask[~maybe])
        return maybe

    def add(self, keys: np.ndarray) -> None:
        self._set(*self._slots(keys))

    def _set(self, word: np.ndarray, mask: np.ndarray) -> None:
        # A fancy-indexed |= keeps only the last write to a word that appears twice; the
        # words that lost bits are written again (rarely more than one more round).
        # np.bitwise_or.at is exact in one go but measured 5-10x slower.
        while len(word):
            self.words[word] |= mask
            lost = (self.words[word] & mask) != mask
            word, mask = word[lost], mask[lost]


class Deduper:
    """Drops the rows of canonical frames whose key was read before; see the module.

    Call :meth:`new_rows` on every frame in input order (it returns the rows to pass on
    now, without the :data:`GIVEN` column), then iterate :meth:`held` once at the end (the
    held rows that turn out to be first copies, in frames of at most ``batch_rows`` rows),
    then :meth:`close` (or use as a context manager). :attr:`duplicates` is the number of
    rows dropped — exact once :meth:`held` is exhausted. ``exact_keys``, ``bloom_bits`` and
    ``bloom_k`` are the threshold and the filter's shape (default: :data:`EXACT_KEYS`,
    :data:`BLOOM_BITS`, :data:`BLOOM_K`, read when the object is made, so tests can shrink
    them for a whole command). ``expected_keys`` (an upper bound on the keys, e.g. the
    input's row count when known) sizes a smaller filter: :func:`bloom_bits_for`."""

    def __init__(
        self,
        *,
        exact_keys: int | None = None,
        bloom_bits: int | None = None,
        bloom_k: int | None = None,
        directory: str | Path | None = None,
        expected_keys: int | None = None,
    ) -> None:
        # Defaults looked up when called, so that a test can shrink them module-wide.
        self.exact_keys = EXACT_KEYS if exact_keys is None else exact_keys
        bloom_bits = bloom_bits_for(expected_keys) if bloom_bits is None else bloom_bits
        bloom_k = BLOOM_K if bloom_k is None else bloom_k
        self.duplicates = 0
        #: Rows held aside (repeats or false positives) and false positives among them.
        self.held_rows = 0
        self.false_positives = 0
        self._bloom_bits, self._bloom_k = bloom_bits, bloom_k
        self._tmp_parent = directory
        self._seen: SeenSet | None = SeenSet()
        self._bloom: BlockedBloom | None = None
        self._dir: Path | None = None
        self._cleanup: Any = None  # a weakref.finalize once the directory exists
        self._keys_out: BinaryIO | None = None
        self._held_keys_out: BinaryIO | None = None
        self._held_buf: list[Any] = []  # pyarrow tables
        self._held_buf_rows = self._held_buf_bytes = 0
        self._held_files: list[tuple[Path, int]] = []

    # --- life cycle ----------------------------------------------------------------------

    def __enter__(self) -> Deduper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def spilling(self) -> bool:
        """Whether the threshold was passed (the filter and the files were used)."""
        return self._dir is not None

    @property
    def directory(self) -> Path | None:
        """The spill directory (None before the switch)."""
        return self._dir

    def close(self) -> None:
        """Close and remove the spill files (idempotent)."""
        for f in (self._keys_out, self._held_keys_out):
            if f is not None:
                f.close()
        self._keys_out = self._held_keys_out = None
        self._bloom = None
        self._held_buf = []
        if self._cleanup is not None:
            self._cleanup()

    # --- the stream ----------------------------------------------------------------------

    def new_rows(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame``'s rows that are not repeats of earlier ones (within it or before)
        and not held aside, in order, without the :data:`GIVEN` column."""
        if GIVEN not in frame.columns:
            return frame
        if frame.height == 0 or not frame.get_column(GIVEN).any():
            return frame.drop(GIVEN)
        keys = frame.select(key_expr().alias("k")).get_column("k")
        given = keys.is_not_null()
        first = (keys.is_first_distinct() & given).to_numpy()
        h = keys.fill_null(0).to_numpy()
        self.duplicates += int(given.sum()) - int(first.sum())
        if self._bloom is None:
            assert self._seen is not None
            known = np.zeros(len(h), dtype=bool)
            known[first] = self._seen.contains(h[first])
            self._seen.add(h[first & ~known])
            self.duplicates += int(known.sum())
            keep = ~given.to_numpy() | (first & ~known)
            if len(self._seen) > self.exact_keys:
                self._switch()
            out = frame.drop(GIVEN)
            return out if keep.all() else out.filter(pl.Series(keep))
        idx = np.flatnonzero(first)
        maybe = self._bloom.add_new(h[idx])
        new_keys = h[idx[~maybe]]
        assert self._keys_out is not None
        new_keys.tofile(self._keys_out)
        keep = ~given.to_numpy()
        keep[idx[~maybe]] = True
        if maybe.any():
            hold = np.zeros(len(h), dtype=bool)
            hold[idx[maybe]] = True
            self._hold(frame.drop(GIVEN).filter(pl.Series(hold)), h[idx[maybe]])
        out = frame.drop(GIVEN)
        return out if keep.all() else out.filter(pl.Series(keep))

    def _switch(self) -> None:
        """Past the threshold: every exact key goes into the filter and the keys file."""
        assert self._seen is not None
        self._dir = Path(tempfile.mkdtemp(prefix="llmobs-dedupe-", dir=self._tmp_parent))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        self._keys_out = open(self._dir / "keys.u64", "wb")  # noqa: SIM115 - closed in close()
        self._held_keys_out = open(self._dir / "held.u64", "wb")  # noqa: SIM115
        self._bloom = BlockedBloom(self._bloom_bits, self._bloom_k)
        for run in self._seen.runs():
            for s in range(0, len(run), _SWITCH_CHUNK):
                part = run[s : s + _SWITCH_CHUNK]
                self._bloom.add(part)
                part.tofile(self._keys_out)
        self._seen = None

    def _hold(self, rows: pl.DataFrame, keys: np.ndarray) -> None:
        assert self._held_keys_out is not None
        keys.astype(np.uint64, copy=False).tofile(self._held_keys_out)
        self.held_rows += rows.height
        # An owned copy: a filtered frame's strings are views into the whole batch's
        # buffers, so a few held rows per batch kept every batch's texts alive (measured
        # +450 MB on 10M rows with long texts). The oldest Arrow layout copies them out.
        table = rows.to_arrow(compat_level=pl.CompatLevel.oldest())
        if self._held_buf and table.schema != self._held_buf[0].schema:
            self._flush()
        self._held_buf.append(table)
        self._held_buf_rows += table.num_rows
        self._held_buf_bytes += table.nbytes
        if self._held_buf_rows >= _HELD_ROWS or self._held_buf_bytes >= _HELD_BYTES:
            self._flush()

    def _flush(self) -> None:
        """Write the buffered held rows (tables of one schema) to one spill file, in
        record batches of about :data:`_SLICE_BYTES`."""
        if not self._held_buf:
            return
        import pyarrow as pa

        assert self._dir is not None
        tables, n = self._held_buf, self._held_buf_rows
        self._held_buf, self._held_buf_rows, self._held_buf_bytes = [], 0, 0
        path = self._dir / f"held-{len(self._held_files):06d}.arrow"
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        with (
            pa.OSFile(str(path), "wb") as sink,
            pa.ipc.new_file(sink, tables[0].schema, options=options) as writer,
        ):
            for table in tables:
                step = max(1, int(table.num_rows * _SLICE_BYTES / max(1, table.nbytes)))
                for start in range(0, table.num_rows, step):
                    writer.write_table(table.slice(start, step))
        self._held_files.append((path, n))

    # --- the end -------------------------------------------------------------------------

    def held(self, batch_rows: int = 131_072) -> Iterator[pl.DataFrame]:
        """The held rows that are first copies (in input order among themselves), in
        frames of at most ``batch_rows`` rows; counts the others in :attr:`duplicates`
        (exact once this is exhausted). Call once, after the last :meth:`new_rows`.
        Memory: the sorted distinct held keys (8 bytes each, 8 per held row while they
        are sorted) and one spill file's rows."""
        if self._dir is None or not self.held_rows:
            return
        self._flush()
        assert self._keys_out is not None and self._held_keys_out is not None and self._dir
        self._keys_out.close()
        self._held_keys_out.close()
        self._bloom = None  # its memory is not needed any more
        # The distinct held keys, sorted (8 bytes per held row for the sort, then per
        # distinct held key); the held keys themselves are then re-read file by file.
        cand = np.fromfile(self._dir / "held.u64", dtype=np.uint64)
        cand.sort()
        if len(cand) > 1:
            distinct = np.empty(len(cand), dtype=bool)
            distinct[0] = True
            np.not_equal(cand[1:], cand[:-1], out=distinct[1:])
            cand = cand[distinct]
            del distinct
        # A key passed on before: all its held rows are repeats. Any other key: its first
        # held row (in input order) is the first copy; "taken" marks keys settled so far.
        taken = _members(cand, self._dir / "keys.u64")
        self.false_positives = 0
        out: list[pl.DataFrame] = []
        n_out = 0
        with open(self._dir / "held.u64", "rb") as keys_in:
            for path, n in self._held_files:
                keys = np.fromfile(keys_in, dtype=np.uint64, count=n)
                # Sorted needles walk ``cand`` in order (unsorted: ~4x slower at 15M).
                order = np.argsort(keys)
                at = np.empty(n, dtype=np.intp)
                at[order] = np.searchsorted(cand, keys[order])
                slots, first = np.unique(at, return_index=True)
                fresh = ~taken[slots]
                taken[slots] = True
                mask = np.zeros(n, dtype=bool)
                mask[first[fresh]] = True
                kept = int(fresh.sum())
                self.false_positives += kept
                self.duplicates += n - kept
                for rows in _read_ipc_masked(path, mask) if kept else ():
                    out.append(rows)
                    n_out += rows.height
                    while n_out >= batch_rows:
                        both = pl.concat(out, how="diagonal_relaxed")
                        yield both.slice(0, batch_rows)
                        rest = both.slice(batch_rows)
                        out, n_out = ([rest] if rest.height else []), rest.height
                path.unlink(missing_ok=True)
        if n_out:
            yield pl.concat(out, how="diagonal_relaxed")


def _members(cand: np.ndarray, keys_file: Path) -> np.ndarray:
    """For each of the sorted distinct ``cand``, whether it is in the file of raw uint64
    keys (read in chunks of :data:`_CHUNK`).

    When ``cand`` is large (more than a cache can hold), a 16 MB bitmap of its keys' top
    27 bits first discards most of a chunk's keys, and the rest are sorted before their
    binary searches (measured with 14M candidates against 100M keys: 2.3 s, where sorting
    every chunk took 4.9 s)."""
    found = np.zeros(len(cand), dtype=bool)
    if not len(cand):
        return found
    top_bits = 27
    shift = np.uint64(64 - top_bits)
    low6 = np.uint64(63)
    bitmap = None
    if len(cand) > 1 << 20:
        bitmap = np.zeros(1 << (top_bits - 6), dtype=np.uint64)
        for s in range(0, len(cand), _CHUNK):
            top = cand[s : s + _CHUNK] >> shift  # sorted, since cand is
            word = (top >> np.uint64(6)).astype(np.intp)
            starts = np.flatnonzero(np.r_[True, word[1:] != word[:-1]])
            bitmap[word[starts]] |= np.bitwise_or.reduceat(np.uint64(1) << (top & low6), starts)
    with open(keys_file, "rb") as f:
        while True:
            chunk = np.fromfile(f, dtype=np.uint64, count=_CHUNK)
            if not len(chunk):
                break
            if bitmap is not None:
                top = chunk >> shift
                hit = (bitmap[(top >> np.uint64(6)).astype(np.intp)] >> (top & low6)) & np.uint64(1)
                chunk = np.sort(chunk[hit.astype(bool)])
            i = np.searchsorted(cand, chunk)
            i[i == len(cand)] = 0
            found[i[cand[i] == chunk]] = True
    return found


def _read_ipc_masked(path: Path, mask: np.ndarray) -> Iterator[pl.DataFrame]:
    """The rows of a spill file where ``mask`` is set, one record batch at a time, read
    through a plain file handle (never memory-mapped: mapped pages would count as the
    process's resident memory)."""
    import pyarrow as pa

    with pa.OSFile(str(path)) as src:
        reader = pa.ipc.open_file(src)
        start = 0
        for i in range(reader.num_record_batches):
            batch = reader.get_batch(i)
            part = mask[start : start + batch.num_rows]
            start += batch.num_rows
            if part.any():
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                yield frame.filter(pl.Series(part))
