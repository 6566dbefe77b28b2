"""Normalisation: aliases, defaults, metadata folding, type handling."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.record.fields import field_expr
from llmobs_cli.core.record.schema import FIELDS, SCHEMA, normalize


def read(tmp_path: Path, *records: dict) -> pl.DataFrame:
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return load([p]).frame


def test_defaults(tmp_path: Path) -> None:
    df = read(
        tmp_path,
        {
            "trace_id": "t",
            "timestamp": "2026-01-02T03:04:05.250Z",
            "end_time": "2026-01-02T03:04:06Z",
            "model": "m",
        },
    )
    row = df.row(0, named=True)
    assert row["span_id"] == "t"
    assert row["route"] == "default"
    assert row["status"] == "ok"
    assert row["sample_rate"] == 1.0
    assert row["latency_ms"] == 750.0
    assert list(df.columns) == list(FIELDS)
    assert df.schema == pl.Schema(SCHEMA)


def test_error_field_implies_error_status(tmp_path: Path) -> None:
    df = read(
        tmp_path,
        {
            "trace_id": "t",
            "timestamp": "2026-01-02T03:04:05Z",
            "model": "m",
            "latency_ms": 1,
            "error": "boom",
        },
    )
    assert df["status"].to_list() == ["error"]


def test_aliases_and_usage_object(tmp_path: Path) -> None:
    df = read(
        tmp_path,
        {
            "trace_id": "t",
            "start_time": "2026-01-02T03:04:05+02:00",
            "model": "gpt-4o",
            "duration_ms": 10,
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "user": "u1",
        },
        {
            "trace_id": "u",
            "timestamp": "2026-01-02 03:04:05",
            "model": "gpt-4o",
            "latency_ms": 5,
            "usage": {
                "prompt_tokens": 50,
                "completion_tokens": 7,
                "prompt_tokens_details": {"cached_tokens": 30},
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
        },
    )
    a, b = df.rows(named=True)
    assert a["input_tokens"] == 100 and a["output_tokens"] == 20 and a["user_id"] == "u1"
    assert a["latency_ms"] == 10.0
    assert a["timestamp"].isoformat() == "2026-01-02T01:04:05+00:00"
    assert (b["input_tokens"], b["output_tokens"], b["cached_tokens"], b["reasoning_tokens"]) == (
        50,
        7,
        30,
        3,
    )
    assert b["timestamp"].isoformat() == "2026-01-02T03:04:05+00:00"


def test_canonical_name_wins_over_alias(tmp_path: Path) -> None:
    df = read(
        tmp_path,
        {
            "trace_id": "t",
            "timestamp": "2026-01-02T03:04:05Z",
            "model": "m",
            "latency_ms": 1,
            "input_tokens": 5,
            "prompt_tokens": 9,
        },
    )
    assert df["input_tokens"].to_list() == [5]


def test_unknown_fields_kept_in_metadata(tmp_path: Path) -> None:
    df = read(
        tmp_path,
        {
            "trace_id": "t",
            "timestamp": "2026-01-02T03:04:05Z",
            "model": "m",
            "latency_ms": 1,
            "metadata": {"tier": "pro"},
            "team": "search",
        },
    )
    meta = json.loads(df["metadata"][0])
    assert meta == {"tier": "pro", "team": "search"}
    assert df.select(field_expr("metadata.tier"))["metadata.tier"].to_list() == ["pro"]
    assert df.select(field_expr("metadata.team"))["metadata.team"].to_list() == ["search"]


def test_nested_lists(tmp_path: Path) -> None:
    df = read(
        tmp_path,
        {
            "trace_id": "t",
            "timestamp": "2026-01-02T03:04:05Z",
            "model": "m",
            "latency_ms": 1,
            "messages": [{"role": "user", "content": "hi"}],
            "retrieved": [{"id": 7, "content": "doc", "score": 0.9, "extra": 1}],
            "tags": "one",
            "logprobs": [-0.1, -2],
        },
    )
    row = df.row(0, named=True)
    assert row["messages"] == [{"role": "user", "content": "hi"}]
    assert row["retrieved"] == [{"id": "7", "content": "doc", "score": 0.9}]
    assert row["tags"] == ["one"]
    assert row["logprobs"] == [-0.1, -2.0]


def test_epoch_and_parquet_timestamps() -> None:
    raw = pl.DataFrame(
        {
            "trace_id": ["a", "b"],
            "timestamp": [1767323045, 1767323045123],
            "model": ["m", "m"],
            "latency_ms": [1, 2],
        }
    )
    out = normalize(raw)
    assert out.problems.height == 0
    ts = out.frame["timestamp"].to_list()
    assert ts[0].isoformat() == "2026-01-02T03:04:05+00:00"
    assert ts[1].isoformat() == "2026-01-02T03:04:05.123000+00:00"


def test_metadata_keeps_each_rows_own_keys(tmp_path: Path) -> None:
    base = {"trace_id": "t", "timestamp": "2026-01-02T03:04:05Z", "model": "m", "latency_ms": 1}
    df = read(
        tmp_path,
        {**base, "metadata": {"a": 1}, "params": {"temperature": 0.2}},
        {**base, "metadata": {"b": [1, 2]}, "team": "x", "params": {"reasoning_effort": "low"}},
        {**base, "team": "y"},
        base,
    )
    metas = [json.loads(m) if m else None for m in df["metadata"]]
    assert metas == [{"a": 1}, {"b": [1, 2], "team": "x"}, {"team": "y"}, None]
    params = [json.loads(p) if p else None for p in df["params"]]
    assert params == [{"temperature": 0.2}, {"reasoning_effort": "low"}, None, None]


def test_metadata_must_be_an_object(tmp_path: Path) -> None:
    import pytest

    from llmobs_cli.errors import InputError

    p = tmp_path / "t.jsonl"
    base = {"trace_id": "t", "timestamp": "2026-01-02T03:04:05Z", "model": "m", "latency_ms": 1}
    p.write_text(json.dumps({**base, "metadata": "tier=pro"}) + "\n")
    with pytest.raises(InputError) as exc:
        load([p])
    assert str(exc.value) == f"{p}:1: metadata: expected an object, got ('tier=pro')"


def test_json_without_nulls_only_touches_object_members() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from llmobs_cli.core.record.schema import json_without_nulls

    def strip(v: object) -> object:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    tricky = st.sampled_from(['",null', '\\":null,"', "{", "}", '"k":null', "\\"]) | st.text(
        max_size=5
    )
    leaf = st.none() | st.integers() | tricky
    values = st.recursive(
        leaf, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3)
    )

    @settings(max_examples=200, deadline=None)
    @given(st.dictionaries(tricky, values, max_size=4))
    def check(obj: dict) -> None:
        text = json.dumps(obj, separators=(",", ":"))
        got = pl.DataFrame({"s": [text]}).select(json_without_nulls(pl.col("s")).alias("s")).item()
        want = strip(obj)
        assert (json.loads(got) if got is not None else {}) == want

    check()


def test_anthropic_usage_object_counts_cache_inside_input(tmp_path: Path) -> None:
    base = {
        "trace_id": "t",
        "timestamp": "2026-01-02T03:04:05Z",
        "model": "claude",
        "latency_ms": 1,
    }
    usage = {
        "input_tokens": 12,
        "cache_read_input_tokens": 900,
        "cache_creation_input_tokens": 88,
        "output_tokens": 40,
    }
    df = read(tmp_path, {**base, "usage": usage})
    row = df.row(0, named=True)
    # Anthropic's input_tokens excludes the cache; the record's includes it.
    assert row["input_tokens"] == 12 + 900 + 88
    assert row["cached_tokens"] == 900
    assert row["cache_write_tokens"] == 88
    assert row["output_tokens"] == 40


def test_status_spellings_and_every_rule_problem_in_one_batch() -> None:
    """Statuses spelled as a key map directly, others after stripping and lower-casing;
    every failing rule of a batch is reported (the rules are checked together), in row
    order, and a clean batch reports none."""
    raw = pl.DataFrame(
        {
            "trace_id": ["a", "b", "c", "d", " ", "f"],
            "timestamp": ["2026-01-01T00:00:00Z"] * 6,
            "model": ["m"] * 6,
            "latency_ms": [1.0, 2.0, -3.0, 4.0, 5.0, float("nan")],
            "status": ["ok", " Success ", "FAILED", "bogus", None, "error"],
            "cached_tokens": [5, None, None, None, None, None],
            "input_tokens": [1, None, None, None, None, None],
        }
    )
    got = normalize(raw)
    assert got.frame["status"].to_list() == ["ok", "ok", "error", None, "ok", "error"]
    problems = [(r["_row"], r["field"], r["message"]) for r in got.problems.to_dicts()]
    assert problems == [
        (0, "cached_tokens", "greater than input_tokens (5 > 1)"),
        (2, "latency_ms", "must be >= 0, got -3.0"),
        (3, "status", "expected 'ok' or 'error', got ('bogus')"),
        (4, "trace_id", "missing"),
        (5, "latency_ms", "must be a finite number, got NaN"),
    ]
    clean = normalize(raw.slice(1, 2).with_columns(pl.lit(1.0).alias("latency_ms")))
    assert clean.problems.height == 0
    assert clean.frame["status"].to_list() == ["ok", "error"]
