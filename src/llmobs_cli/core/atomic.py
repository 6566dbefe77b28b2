"""Atomic output: a file is either the old good one or the new complete one, never half.

Everything is written to a temporary file in the target's directory, flushed and fsynced,
then moved into place with :func:`os.replace` (atomic on POSIX and Windows).

Interrupts (Ctrl-C, and SIGTERM, which the CLI turns into the same ``KeyboardInterrupt``)
unwind through the ``finally`` blocks here: the temporary file or directory is removed
and the target is the old one or the new one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.errors import UsageError


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it onto ``target`` on success."""
    target = Path(target)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"{target}: the directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or ".tmp", dir=parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        # mkstemp creates 0600 files; give the output the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path | str, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: Path | str, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, default=str, allow_nan=False) + "\n")


def write_parquet(
    target: Path | str, frame: pl.DataFrame, metadata: dict[str, str] | None = None
) -> None:
    """``metadata``: key-value pairs stored in the Parquet footer (e.g. a partial mark)."""
    with atomic_path(target, ".parquet") as tmp:
        if metadata:
            frame.write_parquet(tmp, compression="zstd", statistics=True, metadata=metadata)
        else:
            frame.write_parquet(tmp, compression="zstd", statistics=True)
