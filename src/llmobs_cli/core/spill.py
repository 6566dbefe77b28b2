"""Frames spilled to disk in hash partitions, read back one partition at a time.

Some state of a streaming pass grows with the input however the work is split: one row
per distinct session (the report's and dashboard's session partials, the first call of a
session with a release) or per distinct key. :class:`HashSpill` keeps that state out of
memory: rows are written to ``parts`` files chosen by the top bits of a 64-bit hash
column, so every row with one key value lands in one partition, and a consumer that
needs all rows of a key (to count a session once, say) finalizes partition by partition,
holding about ``1/parts`` of the state at a time.

Each partition is one Arrow IPC stream file with LZ4 (a few GB/s each way), appended to
by every :meth:`HashSpill.add` (a writer stays open per partition, so the number of files
does not grow with the adds) and read back without memory-mapping (a mapped file's pages
would count as the process's resident memory). A frame whose schema differs from the
partition's open stream starts a new file for that partition. Files live in a fresh
temporary directory (``directory`` or the system's temporary directory, which honours
``TMPDIR``) that :meth:`HashSpill.close` removes; nothing else is touched.
"""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

#: Partitions by default: 64 files, each about 1/64 of the spilled state.
PARTS = 64
_P = "_spill_part"


class HashSpill:
    """Append-only frames partitioned by the unsigned 64-bit hash column ``column``.

    Rows whose hash is null go to partition 0 (they are never split from each other).
    :meth:`add` may be called any number of times; :meth:`partitions` yields each
    non-empty partition's rows as one frame (the frames added to it, concatenated with
    the relaxed rules of ``pl.concat``), in partition order. Use as a context manager or
    call :meth:`close`; the directory is also removed when the object is collected.
    """

    def __init__(self, column: str, parts: int = PARTS, directory: str | Path | None = None):
        if parts < 1 or parts & (parts - 1):
            raise ValueError(f"parts must be a power of two, got {parts}")
        self.column = column
        self.parts = parts
        self._bits = parts.bit_length() - 1
        self._dir = Path(tempfile.mkdtemp(prefix="llmobs-spill-", dir=directory))
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._dir), True)
        self._files: list[list[Path]] = [[] for _ in range(parts)]
        # Per partition: its open stream writer, the file under it, and the stream's schema.
        self._writers: dict[int, tuple[Any, Any, Any]] = {}
        self._seq = 0
        self.rows = 0

    @property
    def directory(self) -> Path:
        return self._dir

    def __enter__(self) -> HashSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def bytes(self) -> int:
        """Bytes on disk so far."""
        return sum(f.stat().st_size for fs in self._files for f in fs if f.exists())

    def close(self) -> None:
        """Remove the spill directory and everything in it (idempotent)."""
        for p in list(self._writers):
            self._close_writer(p)
        self._cleanup()

    def _close_writer(self, p: int) -> None:
        writer, sink, _ = self._writers.pop(p)
        try:
            writer.close()
        finally:
            sink.close()

    def _write(self, p: int, rows: pl.DataFrame) -> None:
        import pyarrow as pa

        table = rows.to_arrow()
        open_ = self._writers.get(p)
        if open_ is not None and not open_[2].equals(table.schema):
            self._close_writer(p)
            open_ = None
        if open_ is None:
            self._seq += 1
            path = self._dir / f"p{p:04d}-{self._seq:06d}.arrow"
            sink = pa.OSFile(str(path), "wb")
            options = pa.ipc.IpcWriteOptions(compression="lz4")
            writer = pa.ipc.new_stream(sink, table.schema, options=options)
            open_ = (writer, sink, table.schema)
            self._writers[p] = open_
            self._files[p].append(path)
        open_[0].write_table(table)

    def _part_expr(self) -> pl.Expr:
        h = pl.col(self.column).cast(pl.UInt64)
        if self._bits == 0:
            return pl.lit(0, pl.UInt32).alias(_P)
        # The top bits (Polars has no shift operator; floor division by 2^k is one).
        top = h // pl.lit(1 << (64 - self._bits), pl.UInt64)
        return top.fill_null(0).cast(pl.UInt32).alias(_P)

    def add(self, frame: pl.DataFrame) -> None:
        """Write ``frame``'s rows to their partitions."""
        if not frame.height:
            return
        if self.column not in frame.columns:
            raise ValueError(f"spilled frames need the hash column '{self.column}'")
        tagged = frame.with_columns(self._part_expr())
        for (p,), rows in tagged.partition_by(_P, as_dict=True).items():
            self._write(int(p), rows.drop(_P))
        self.rows += frame.height

    def partition(self, p: int) -> pl.DataFrame | None:
        """Partition ``p``'s rows (None when nothing was written to it)."""
        if p in self._writers:
            self._close_writer(p)
        files = self._files[p]
        if not files:
            return None
        frames = [_read(f) for f in files]
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical_relaxed")

    def partitions(self) -> Iterator[pl.DataFrame]:
        """Every non-empty partition, one frame at a time."""
        for p in range(self.parts):
            frame = self.partition(p)
            if frame is not None:
                yield frame

    def drop_partition(self, p: int) -> None:
        """Delete partition ``p``'s files (once it is consumed), freeing their disk."""
        if p in self._writers:
            self._close_writer(p)
        for f in self._files[p]:
            f.unlink(missing_ok=True)
        self._files[p] = []


def _read(path: Path) -> pl.DataFrame:
    """One spill file, read through a plain file handle (never memory-mapped)."""
    import pyarrow as pa

    with pa.OSFile(str(path)) as src:
        table = pa.ipc.open_stream(src).read_all()
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame
