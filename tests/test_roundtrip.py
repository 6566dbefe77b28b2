"""Property: records → JSONL → convert (Parquet/JSONL) → read gives the same records."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmobs_cli.core.ingest.convert import write_frame
from llmobs_cli.core.ingest.readers import ReadOptions, load

text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)
ident = st.text("abcdef0123456789-", min_size=1, max_size=12)
tokens = st.integers(0, 10**6)


@st.composite
def record(draw: st.DrawFn) -> dict:
    start = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=draw(st.integers(0, 10**13)))
    inp = draw(tokens)
    rec: dict = {
        "trace_id": draw(ident),
        "timestamp": start.isoformat().replace("+00:00", "Z"),
        "model": draw(st.sampled_from(["gpt-4o", "claude-3-5-sonnet-20241022", "m<x>"])),
        "latency_ms": draw(st.floats(0, 1e6, allow_nan=False)),
    }
    optional = {
        "route": st.sampled_from(["chat", "search_qa", 'r"q']),
        "sample_rate": st.floats(1e-4, 1.0, allow_nan=False),
        "input_tokens": st.just(inp),
        "cached_tokens": st.integers(0, inp),
        "output_tokens": tokens,
        "prompt": text,
        "response": text,
        "status": st.sampled_from(["ok", "error"]),
        "cost_usd": st.floats(0, 10, allow_nan=False),
        "tags": st.lists(text, max_size=3),
        "retrieved": st.lists(
            st.fixed_dictionaries({"id": ident, "content": text, "score": st.floats(0, 1)}),
            max_size=3,
        ),
        "metadata": st.dictionaries(st.sampled_from(["tier", "region", "k"]), text, max_size=2),
    }
    for key, strat in optional.items():
        if draw(st.booleans()):
            rec[key] = draw(strat)
    return rec


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(record(), min_size=1, max_size=20))
def test_round_trip(records: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as d:
        src = Path(d) / "in.jsonl"
        src.write_text("\n".join(json.dumps(r) for r in records) + "\n")
        original = load([src]).frame
        for name in ("out.parquet", "out.jsonl", "out.jsonl.zst"):
            out = Path(d) / name
            write_frame(original, out, "parquet" if name.endswith("parquet") else "jsonl")
            # Converted files carry span ids; byte-identical records with no span id of
            # their own (same trace, same start) would read back as one call read twice.
            back = load([out], options=ReadOptions(keep_duplicates=True)).frame
            assert back.height == len(records)
            assert_same(original, back)


def assert_same(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.schema == b.schema
    for col in a.columns:
        if col in ("metadata", "params"):
            left = [json.loads(x) if x else None for x in a[col].to_list()]
            right = [json.loads(x) if x else None for x in b[col].to_list()]
            assert left == right, col
        else:
            assert a[col].to_list() == b[col].to_list(), col
