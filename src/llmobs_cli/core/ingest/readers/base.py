"""What every format reader returns, and the helpers they share."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from llmobs_cli.errors import InputError

Locate = Callable[[Sequence[int]], list[str]]


@dataclass
class RawRead:
    """A file's rows before normalisation.

    ``frame`` has the file's own columns (canonical names or aliases) plus ``_row``, the
    row's position in the file; ``locate`` turns ``_row`` values into message prefixes
    (``traces.jsonl:3`` or ``traces.parquet: row 3``). ``problems`` are lines already
    formatted by the reader for rows it could not even parse (invalid JSON, non-UTF-8);
    those rows are not in ``frame``.
    """

    frame: pl.DataFrame
    locate: Locate
    problems: list[str] = field(default_factory=list)
    fmt: str = "canonical"
    #: Why the file gave no record, when it gave none (``12 spans, none an LLM call: …``).
    note: str | None = None
    #: Things read around but not lost silently: reason → count (``unfinished span copy``).
    tolerated: dict[str, int] = field(default_factory=dict)


def display_name(path: Path) -> str:
    """The path as users gave it, for messages."""
    return str(path)


def read_bytes(path: Path) -> bytes:
    """A file's bytes, transparently decompressing ``.gz`` and ``.zst``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError([f"{path}: cannot read file ({exc.strerror or exc})"]) from exc
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            return gzip.decompress(data)
        if name.endswith((".zst", ".zstd")):
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    except Exception as exc:  # corrupt archives raise many kinds of errors
        raise InputError([f"{path}: not a valid compressed file ({exc})"]) from exc
    return data


def strip_compression(name: str) -> str:
    """``a.jsonl.gz`` → ``a.jsonl``."""
    low = name.lower()
    for ext in (".gz", ".zst", ".zstd"):
        if low.endswith(ext):
            return name[: -len(ext)]
    return name


def row_locator(path: Path, label: str = "row") -> Locate:
    """Locator for formats without lines (Parquet, JSON documents): ``file: row N``."""
    name = display_name(path)
    return lambda rows: [f"{name}: {label} {r + 1}" for r in rows]


def parquet_target(path: Path) -> str | Path:
    """What Polars should read for a Parquet source: a directory means only its Parquet
    files (at any depth), never the other trace files beside them."""
    return str(path / "**" / "*.parquet") if path.is_dir() else path
