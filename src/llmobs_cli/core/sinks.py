"""Streaming, atomically published outputs of canonical rows.

A sink takes canonical frames one batch at a time and writes them as they come (one
Parquet row group per batch, or JSON lines), so memory holds one batch, never the whole
output. Nothing is visible under the output name until :meth:`publish`:

* :class:`FileSink` writes a temporary file beside the target, fsyncs it and renames it
  into place (``.parquet``, ``.jsonl``, ``.jsonl.gz``, ``.jsonl.zst``);
* :class:`PartitionSink` writes one file per ``date=YYYY-MM-DD`` partition into a
  temporary folder beside the tree, then renames each partition file into the tree,
  replacing only the partitions it produced, and updates the tree's manifest. Files it
  did not produce are kept (old Parquet files of a replaced partition excepted: they are
  that partition's previous data).

Leaving the ``with`` block without publishing (an error, an interrupt) removes every
temporary file; the previous output stays as it was. Every temporary path is also listed
in a registry until published or removed, so that :func:`discard_pending` can finish the
job when an interrupt lands inside the cleanup itself (a second Ctrl-C, or one re-raised
by a native library, fires at the first line of ``__exit__``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from llmobs_cli.core.outputs import MANIFEST, MANIFEST_KIND, PARTITION_DIR
from llmobs_cli.core.record.schema import FIELDS, empty_frame
from llmobs_cli.errors import UsageError

OutFormat = Literal["parquet", "jsonl"]
PART_FILE = "part-0.parquet"


#: Temporary files and folders of sinks not yet published or discarded.
_PENDING: set[Path] = set()


def discard_pending() -> None:
    """Remove every temporary output still pending (called on interrupts); never raises."""
    for _ in range(3):  # a further interrupt during the removal just retries it
        try:
            for path in sorted(_PENDING):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                _PENDING.discard(path)
            return
        except KeyboardInterrupt:
            continue


def canonical_arrow_schema() -> pa.Schema:
    return empty_frame().to_arrow().schema


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextlib.contextmanager
def deferred_signals() -> Iterator[None]:
    """Hold SIGINT/SIGTERM while a few renames publish an output, so that an interrupt
    lands before or after the publication, never in the middle of it."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "pthread_sigmask"
    ):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _ParquetStream:
    """One Parquet file written row group by row group with the canonical schema."""

    def __init__(self, path: Path) -> None:
        self.schema = canonical_arrow_schema()
        self.writer = pq.ParquetWriter(
            str(path), self.schema, compression="zstd", write_statistics=True
        )
        self.rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        table = frame.select(FIELDS).to_arrow()
        if table.schema != self.schema:
            table = table.cast(self.schema)
        self.writer.write_table(table)
        self.rows += frame.height

    def close(self) -> None:
        self.writer.close()


def _compressor(raw: BinaryIO, name: str) -> BinaryIO:
    low = name.lower()
    if low.endswith(".gz"):
        import gzip

        return gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)  # type: ignore[return-value]
    if low.endswith(".zst"):
        import zstandard

        return zstandard.ZstdCompressor(level=6).stream_writer(raw, closefd=False)
    return raw


class FileSink:
    """Canonical rows streamed into one file, published atomically on :meth:`publish`."""

    def __init__(self, out: Path, fmt: OutFormat) -> None:
        self.out = Path(out)
        self.fmt = fmt
        parent = self.out.parent if str(self.out.parent) else Path(".")
        if not parent.is_dir():
            raise UsageError(f"{self.out}: the directory {parent} does not exist")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.out.name}.", suffix=".tmp", dir=parent)
        os.close(fd)
        self.tmp = Path(tmp)
        _PENDING.add(self.tmp)
        self.rows = 0
        self.bytes_written = 0
        self._raw: BinaryIO | None = None
        self._text: BinaryIO | None = None
        self._parquet: _ParquetStream | None = None
        try:
            if fmt == "parquet":
                self._parquet = _ParquetStream(self.tmp)
            else:
                self._raw = open(self.tmp, "wb")  # noqa: SIM115 - closed in publish/discard
                self._text = _compressor(self._raw, self.out.name)
        except BaseException:  # an interrupt here must not leave the temporary file behind
            self.discard()
            raise

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        if self._parquet is not None:
            self._parquet.write(frame)
        else:
            from llmobs_cli.core.ingest.convert import to_jsonl_bytes

            data = to_jsonl_bytes(frame.select(FIELDS))
            assert self._text is not None
            self._text.write(data)
        self.rows += frame.height
        self.bytes_written = self.tmp.stat().st_size

    def _close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if self._text is not None and self._text is not self._raw:
            self._text.close()
        self._text = None
        if self._raw is not None:
            self._raw.close()
            self._raw = None

    def publish(self) -> None:
        self._close()
        _fsync(self.tmp)
        os.chmod(self.tmp, 0o666 & ~_umask())
        with deferred_signals():
            os.replace(self.tmp, self.out)
            _PENDING.discard(self.tmp)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._close()
        with contextlib.suppress(FileNotFoundError):
            self.tmp.unlink()
        _PENDING.discard(self.tmp)

    def __enter__(self) -> FileSink:
        return self

    def __exit__(self, *exc: object) -> None:
        # Published files are gone from tmp already; anything left is partial.
        self.discard()


class PartitionSink:
    """Canonical rows streamed into ``date=YYYY-MM-DD/part-0.parquet`` partitions."""

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        parent = self.out.resolve().parent
        if not parent.is_dir():
            raise UsageError(f"{self.out}: the directory {parent} does not exist")
        self.stage = Path(
            tempfile.mkdtemp(prefix=f".{self.out.resolve().name}.llmobs-", dir=parent)
        )
        _PENDING.add(self.stage)
        self.writers: dict[str, _ParquetStream] = {}
        self.rows = 0
        self.bytes_written = 0

    def write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        parted = frame.with_columns(pl.col("timestamp").dt.date().alias("_day"))
        for (day,), part in parted.group_by(["_day"], maintain_order=True):
            key = f"date={day}"
            writer = self.writers.get(key)
            if writer is None:
                (self.stage / key).mkdir()
                writer = _ParquetStream(self.stage / key / PART_FILE)
                self.writers[key] = writer
            writer.write(part.drop("_day").sort("timestamp"))
        self.rows += frame.height

    def publish(self) -> list[str]:
        """Move every produced partition into the tree; returns the partition names."""
        for writer in self.writers.values():
            writer.close()
        names = sorted(self.writers)
        self.writers = {}
        for key in names:
            _fsync(self.stage / key / PART_FILE)
            os.chmod(self.stage / key / PART_FILE, 0o666 & ~_umask())
        with deferred_signals():
            self.out.mkdir(exist_ok=True)
            for key in names:
                folder = self.out / key
                folder.mkdir(exist_ok=True)
                os.replace(self.stage / key / PART_FILE, folder / PART_FILE)
                # The partition's previous data (other Parquet files) is what we replace.
                for old in folder.iterdir():
                    if old.name != PART_FILE and old.is_file() and old.name.endswith(".parquet"):
                        old.unlink()
            _write_manifest(self.out, names)
        return names

    def discard(self) -> None:
        for writer in self.writers.values():
            with contextlib.suppress(Exception):
                writer.close()
        self.writers = {}
        shutil.rmtree(self.stage, ignore_errors=True)
        _PENDING.discard(self.stage)

    def __enter__(self) -> PartitionSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def _write_manifest(tree: Path, written: list[str]) -> None:
    """Record the tree as llmobs's, with every partition it holds (old and new)."""
    from llmobs_cli import __version__
    from llmobs_cli.core import atomic

    parts = {d.name for d in tree.iterdir() if d.is_dir() and PARTITION_DIR.match(d.name)}
    parts |= set(written)
    manifest: dict[str, Any] = {
        "kind": MANIFEST_KIND,
        "partition_by": "date",
        "partitions": sorted(parts),
        "written_by": f"llmobs {__version__}",
        "updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    atomic.write_text(tree / MANIFEST, json.dumps(manifest, indent=2) + "\n")
