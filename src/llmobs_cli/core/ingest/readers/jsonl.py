"""Canonical JSONL (``.jsonl``, ``.ndjson``, ``.json`` arrays; ``.gz``/``.zst`` compressed).

The fast path hands the bytes to Polars' native NDJSON reader. Only when that fails (a
line that is not JSON, not an object, not UTF-8) does a line-by-line diagnostic pass
run, to name the exact lines; with ``skip`` the good lines are then read natively.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.ingest.readers.base import RawRead, display_name, read_bytes, row_locator
from llmobs_cli.core.record.schema import ROW
from llmobs_cli.errors import InputError


def _nonblank_line_numbers(data: bytes, first: int = 1) -> list[int]:
    """Line numbers (from ``first``) of the non-blank lines (what Polars turns into rows)."""
    return [i + first for i, line in enumerate(data.split(b"\n")) if line.strip()]


def _line_locator(
    path: Path, data: bytes, lines: list[int] | None = None, first: int = 1
) -> Callable[[Sequence[int]], list[str]]:
    name = display_name(path)
    cache: dict[str, list[int]] = {}

    def locate(rows: Sequence[int]) -> list[str]:
        if "lines" not in cache:
            cache["lines"] = lines if lines is not None else _nonblank_line_numbers(data, first)
        table = cache["lines"]
        return [f"{name}:{table[r]}" if 0 <= r < len(table) else f"{name}:?" for r in rows]

    return locate


def _diagnose(path: Path, data: bytes, first: int = 1) -> tuple[list[str], list[int], list[bytes]]:
    """Problems for lines that are not UTF-8 JSON objects; the good lines and their numbers."""
    name = display_name(path)
    problems: list[str] = []
    good_lines: list[int] = []
    good: list[bytes] = []
    for i, raw in enumerate(data.split(b"\n")):
        if not raw.strip():
            continue
        lineno = i + first
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{name}:{lineno}: (line): not valid UTF-8 (byte {exc.start + 1})")
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(
                f"{name}:{lineno}: (line): invalid JSON ({exc.msg} at column {exc.colno})"
            )
            continue
        if not isinstance(obj, dict):
            problems.append(
                f"{name}:{lineno}: (line): not a JSON object (got {type(obj).__name__})"
            )
            continue
        good_lines.append(lineno)
        good.append(raw)
    return problems, good_lines, good


def _read_ndjson(data: bytes) -> pl.DataFrame:
    if not data.strip():
        return pl.DataFrame()
    # Object fields (metadata, params) are inferred as structs holding the union of all
    # rows' keys; schema.normalize drops the null members again when it encodes them.
    # (Reading them as String instead would be simpler, but Polars re-serialises such
    # text with broken escapes.)
    return pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)


def read_jsonl(path: Path) -> RawRead:
    """Read a canonical JSONL file (or a ``.json`` array of records)."""
    data = read_bytes(path)
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        return _read_json_array(path, data)
    if stripped.startswith(b"{") and not _first_line_is_json(stripped):
        # one pretty-printed document, or several back to back: JSON, not JSON lines
        return _read_json_documents(path, data)
    return read_jsonl_lines(path, data)


def read_jsonl_lines(path: Path, data: bytes, first_line: int = 1) -> RawRead:
    """JSON lines already in memory: the whole file, or a chunk of it cut at a newline
    whose first line is line ``first_line`` of ``path`` (streaming commands read big files
    chunk by chunk; messages still name the file's own line numbers)."""
    try:
        frame = _read_ndjson(data)
        return RawRead(frame=_with_row(frame), locate=_line_locator(path, data, first=first_line))
    except Exception:
        pass
    problems, good_lines, good = _diagnose(path, data, first_line)
    try:
        frame = _read_ndjson(b"\n".join(good))
    except Exception as exc:
        # Every line is a JSON object yet Polars cannot build one frame (e.g. a field that
        # is an object on one line and a list on another): fall back to Python objects.
        frame = _frame_from_objects(path, good, good_lines, exc)
    return RawRead(
        frame=_with_row(frame), locate=_line_locator(path, data, good_lines), problems=problems
    )


def _frame_from_objects(
    path: Path, good: list[bytes], good_lines: list[int], exc: Exception
) -> pl.DataFrame:
    """Last resort for mixed nested shapes: keep values, JSON-encode non-scalar ones."""
    rows = []
    for raw in good:
        obj = json.loads(raw)
        rows.append(
            {k: v if not isinstance(v, (dict, list)) else json.dumps(v) for k, v in obj.items()}
        )
    try:
        return pl.DataFrame(rows, infer_schema_length=None)
    except Exception as exc2:  # pragma: no cover - defensive
        raise InputError([f"{display_name(path)}: cannot read JSONL ({exc2 or exc})"]) from exc2


def _read_json_array(path: Path, data: bytes) -> RawRead:
    name = display_name(path)
    try:
        obj = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError([f"{name}: invalid JSON ({exc})"]) from exc
    if not all(isinstance(x, dict) for x in obj):
        raise InputError([f"{name}: a JSON array of records must hold only objects"])
    body = b"\n".join(json.dumps(x).encode() for x in obj)
    frame = _read_ndjson(body)
    return RawRead(frame=_with_row(frame), locate=row_locator(path, "record"))


def _first_line_is_json(data: bytes) -> bool:
    line = data.split(b"\n", 1)[0]
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


#: Keys under which a single JSON document may hold its list of records.
_LIST_KEYS = ("records", "calls", "data", "rows")


def _read_json_documents(path: Path, data: bytes) -> RawRead:
    """Records of pretty-printed JSON documents (one, or several concatenated): each
    document is a record, or holds its records under ``records``/``calls``/``data``."""
    name = display_name(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError([f"{name}: not valid UTF-8 (byte {exc.start + 1})"]) from exc
    dec = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in " \t\r\n":
            pos += 1
        if pos >= n:
            break
        try:
            doc, pos = dec.raw_decode(text, pos)
        except ValueError as exc:
            line = text.count("\n", 0, pos) + 1
            raise InputError([f"{name}:{line}: (document): invalid JSON ({exc})"]) from exc
        if isinstance(doc, dict):
            inner = next((doc[k] for k in _LIST_KEYS if isinstance(doc.get(k), list)), None)
            if inner is None:
                records.append(doc)
            else:
                records.extend(x for x in inner if isinstance(x, dict))
        elif isinstance(doc, list):
            records.extend(x for x in doc if isinstance(x, dict))
    body = b"\n".join(json.dumps(x).encode() for x in records)
    frame = _read_ndjson(body)
    return RawRead(frame=_with_row(frame), locate=row_locator(path, "record"))


def _with_row(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
