"""Row-shaped exports (JSONL, JSON arrays or wrappers, CSV, Parquet) as Python dicts.

Shared by the LangSmith and Helicone readers: those exports are one object per call, with
nested JSON (request/response bodies) that needs per-row Python work anyway.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.ingest.readers.base import display_name, parquet_target, read_bytes


def read_rows(
    path: Path, list_keys: Sequence[str] = ("data",)
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(rows, where each row came from, problems for unreadable lines)."""
    name = display_name(path)
    low = path.name.lower()
    if low.endswith((".csv", ".csv.gz")):
        frame = pl.read_csv(io.BytesIO(read_bytes(path)), infer_schema=False)
        return frame.to_dicts(), [f"{name}:{i + 2}" for i in range(frame.height)], []
    if path.is_dir() or low.endswith((".parquet", ".pq")):
        frame = pl.read_parquet(parquet_target(path))
        return frame.to_dicts(), [f"{name}: row {i + 1}" for i in range(frame.height)], []
    data = read_bytes(path)
    try:
        doc = json.loads(data)
    except ValueError:
        doc = None
    if doc is not None:
        if isinstance(doc, dict):
            for key in list_keys:
                if isinstance(doc.get(key), list):
                    doc = doc[key]
                    break
            else:
                doc = [doc]
        rows = [r for r in doc if isinstance(r, dict)] if isinstance(doc, list) else []
        return rows, [f"{name}: record {i + 1}" for i in range(len(rows))], []
    rows, where, problems = [], [], []
    for i, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            problems.append(f"{name}:{i}: (line): invalid JSON ({str(exc)[:100]})")
            continue
        if isinstance(obj, dict):
            rows.append(obj)
            where.append(f"{name}:{i}")
        else:
            problems.append(f"{name}:{i}: (line): not a JSON object")
    return rows, where, problems
