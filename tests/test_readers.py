"""Readers on good and bad input: exact error lines, skip mode, compression, Parquet layouts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest
import zstandard

from llmobs_cli.core.ingest.readers import expand_paths, load
from llmobs_cli.errors import InputError

GOOD = {
    "trace_id": "t1",
    "timestamp": "2026-01-02T03:04:05Z",
    "model": "gpt-4o",
    "latency_ms": 120,
}


def write_lines(path: Path, lines: list[str | dict | bytes]) -> Path:
    out = b""
    for line in lines:
        if isinstance(line, dict):
            out += json.dumps(line).encode() + b"\n"
        elif isinstance(line, bytes):
            out += line + b"\n"
        else:
            out += line.encode() + b"\n"
    path.write_bytes(out)
    return path


def rec(**kw: object) -> dict:
    return {**GOOD, **kw}


def problems(path: Path | list[Path]) -> list[str]:
    with pytest.raises(InputError) as exc:
        load([path] if isinstance(path, Path) else path)
    return exc.value.lines()


def test_good_jsonl_reads_all_rows(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "t.jsonl", [rec(trace_id=f"t{i}") for i in range(5)])
    df = load([p]).frame
    assert df.height == 5
    assert df["trace_id"].to_list() == [f"t{i}" for i in range(5)]
    assert df.schema["timestamp"] == pl.Datetime("us", "UTC")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "{not json",
            "t.jsonl:2: (line): invalid JSON "
            "(Expecting property name enclosed in double quotes at column 2)",
        ),
        ("[1, 2]", "t.jsonl:2: (line): not a JSON object (got list)"),
        ('"text"', "t.jsonl:2: (line): not a JSON object (got str)"),
        (rec(timestamp="yesterday"), "t.jsonl:2: timestamp: not an RFC 3339 time ('yesterday')"),
        (
            {"timestamp": "2026-01-02T03:04:05Z", "model": "m", "latency_ms": 1},
            "t.jsonl:2: trace_id: missing",
        ),
        (rec(model=None), "t.jsonl:2: model: missing"),
        ({"trace_id": "x", "model": "m", "latency_ms": 1}, "t.jsonl:2: timestamp: missing"),
        (rec(latency_ms=None), "t.jsonl:2: latency_ms: missing (give latency_ms or end_time)"),
        (rec(latency_ms=-5), "t.jsonl:2: latency_ms: must be >= 0, got -5.0"),
        (rec(latency_ms="fast"), "t.jsonl:2: latency_ms: expected a number, got ('fast')"),
        (rec(output_tokens=-1), "t.jsonl:2: output_tokens: must be >= 0, got -1"),
        (rec(input_tokens=2.5), "t.jsonl:2: input_tokens: expected an integer, got ('2.5')"),
        (rec(sample_rate=0), "t.jsonl:2: sample_rate: must be in (0, 1], got 0.0"),
        (rec(sample_rate=1.5), "t.jsonl:2: sample_rate: must be in (0, 1], got 1.5"),
        (
            rec(input_tokens=10, cached_tokens=11),
            "t.jsonl:2: cached_tokens: greater than input_tokens (11 > 10)",
        ),
        (rec(status="weird"), "t.jsonl:2: status: expected 'ok' or 'error', got ('weird')"),
        (
            rec(end_time="2026-01-02T03:04:04Z", latency_ms=None),
            "t.jsonl:2: latency_ms: negative: end_time is before timestamp",
        ),
        (rec(params=[1, 2]), "t.jsonl:2: params: expected an object, got a list"),
    ],
)
def test_bad_line_gives_exact_error(tmp_path: Path, line: object, expected: str) -> None:
    p = write_lines(tmp_path / "t.jsonl", [GOOD, line, rec(trace_id="t3")])  # type: ignore[list-item]
    lines = problems(p)
    assert lines[0] == f"{tmp_path}/{expected}"
    # skip keeps exactly the good rows
    res = load([p], on_error="skip")
    assert res.frame["trace_id"].to_list() == ["t1", "t3"]
    assert res.skipped == 1


def test_non_utf8_line(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "t.jsonl", [GOOD, b'{"trace_id": "\xff\xfe"}'])
    assert problems(p)[0] == f"{p}:2: (line): not valid UTF-8 (byte 15)"


def test_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "t.jsonl", [GOOD, "", "   ", rec(latency_ms=-1)])
    assert problems(p) == [f"{p}:4: latency_ms: must be >= 0, got -1.0"]


def test_first_twenty_problems_then_count(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "t.jsonl", [rec(latency_ms=-1)] * 25)
    lines = problems(p)
    assert len(lines) == 21
    assert lines[0] == f"{p}:1: latency_ms: must be >= 0, got -1.0"
    assert lines[19].startswith(f"{p}:20: ")
    assert lines[20] == "... and 5 more problem(s)"


def test_empty_file_is_an_input_error(tmp_path: Path) -> None:
    # Reading nothing is never a green run (issue 13/20): an empty file is exit 2.
    for content in (b"", b"\n  \n"):
        p = tmp_path / "empty.jsonl"
        p.write_bytes(content)
        with pytest.raises(InputError) as exc:
            load([p])
        assert str(exc.value) == f"{p}: empty file (nothing to read)"


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load([tmp_path / "nope.jsonl"])
    assert str(exc.value) == f"{tmp_path}/nope.jsonl: no such file or directory"


def test_corrupt_parquet(tmp_path: Path) -> None:
    p = tmp_path / "bad.parquet"
    p.write_bytes(b"PAR1 this is not really parquet PAR1")
    msg = problems(p)[0]
    assert msg.startswith(f"{p}: not a readable Parquet file (")


def test_parquet_row_problem_names_row(tmp_path: Path) -> None:
    p = tmp_path / "t.parquet"
    pl.DataFrame([GOOD, rec(latency_ms=-2)]).write_parquet(p)
    assert problems(p) == [f"{p}: row 2: latency_ms: must be >= 0, got -2.0"]


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".ndjson.zst", ".jsonl"])
def test_compressed_jsonl(tmp_path: Path, suffix: str) -> None:
    data = "\n".join(json.dumps(rec(trace_id=f"t{i}")) for i in range(3)).encode()
    if suffix.endswith(".gz"):
        data = gzip.compress(data)
    elif suffix.endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    p = tmp_path / f"t{suffix}"
    p.write_bytes(data)
    assert load([p]).frame["trace_id"].to_list() == ["t0", "t1", "t2"]


def test_parquet_directory_glob_and_hive(tmp_path: Path) -> None:
    for day in ("2026-01-01", "2026-01-02"):
        d = tmp_path / "lake" / f"date={day}"
        d.mkdir(parents=True)
        pl.DataFrame([rec(trace_id=day, timestamp=f"{day}T10:00:00Z")]).write_parquet(
            d / "p.parquet"
        )
    df = load([tmp_path / "lake"]).frame
    assert sorted(df["trace_id"].to_list()) == ["2026-01-01", "2026-01-02"]
    assert "date" not in df.columns or df["metadata"].null_count() == df.height
    df2 = load([str(tmp_path / "lake" / "*" / "*.parquet")]).frame
    assert df2.height == 2


def test_mixed_formats_in_one_call(tmp_path: Path) -> None:
    j = write_lines(tmp_path / "a.jsonl", [rec(trace_id="j")])
    q = tmp_path / "b.parquet"
    pl.DataFrame([rec(trace_id="q")]).write_parquet(q)
    res = load([j, q])
    assert sorted(res.frame["trace_id"].to_list()) == ["j", "q"]
    assert res.formats == {str(j): "canonical", str(q): "parquet"}


def test_projection_reads_only_needed_columns(tmp_path: Path) -> None:
    q = tmp_path / "b.parquet"
    pl.DataFrame([rec(prompt="hello", response="hi")]).write_parquet(q)
    df = load([q], columns=["latency_ms"]).frame
    assert df["latency_ms"].to_list() == [120.0]
    assert df["prompt"].to_list() == [None]  # not read
    assert load([q]).frame["prompt"].to_list() == ["hello"]


def test_time_window_filter(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    q = tmp_path / "b.parquet"
    rows = [rec(trace_id=f"t{d}", timestamp=f"2026-01-0{d}T00:00:00Z") for d in range(1, 6)]
    pl.DataFrame(rows).with_columns(
        pl.col("timestamp").str.to_datetime(time_zone="UTC")
    ).write_parquet(q)
    df = load(
        [q], since=datetime(2026, 1, 2, tzinfo=UTC), until=datetime(2026, 1, 4, tzinfo=UTC)
    ).frame
    assert df["trace_id"].to_list() == ["t2", "t3"]


def test_expand_paths_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no file matches this pattern"):
        expand_paths([str(tmp_path / "*.jsonl")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="directory holds no trace files"):
        expand_paths([tmp_path / "empty"])


def test_parquet_latency_from_end_time_when_missing(tmp_path: Path) -> None:
    q = tmp_path / "b.parquet"
    rows = [
        rec(trace_id="a", latency_ms=5.0, end_time="2026-01-02T03:04:06Z"),
        rec(trace_id="b", latency_ms=None, end_time="2026-01-02T03:04:07Z"),
    ]
    pl.DataFrame(rows).write_parquet(q)
    df = load([q], columns=["latency_ms"]).frame
    assert df["latency_ms"].to_list() == [5.0, 2000.0]


def test_directory_reads_only_trace_files(tmp_path: Path) -> None:
    d = tmp_path / "dump"
    d.mkdir()
    write_lines(d / "a.jsonl", [rec(trace_id="a")])
    write_lines(d / "b.ndjson", [rec(trace_id="b")])
    (d / "LICENSE").write_text("MIT License\n")
    (d / "README.md").write_text("# about these traces\n")
    (d / "SHA256SUMS").write_text("abc  a.jsonl\n")
    assert sorted(load([d]).frame["trace_id"].to_list()) == ["a", "b"]
    (d / "a.jsonl").unlink()
    (d / "b.ndjson").unlink()
    with pytest.raises(InputError, match="directory holds no trace files"):
        expand_paths([d])


def test_stream_batches_follow_row_groups_window_and_row_numbers(tmp_path: Path) -> None:
    """The streaming Parquet read (row slices decoded by Polars, row groups outside the
    window skipped by their statistics, batches smaller and larger than a row group, two
    files of a hive directory) gives the whole read's rows, and a bad value deep in a
    later row group is named by its row number in its file."""
    from datetime import UTC, datetime, timedelta

    import pyarrow.parquet as pq

    from llmobs_cli.core.ingest.readers.stream import MIN_BATCH, Stream

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    n = 3 * MIN_BATCH + 123  # rows per file; row groups of 5,000 rows
    for k in (0, 1):
        d = tmp_path / "lake" / f"part={k}"
        d.mkdir(parents=True)
        frame = pl.DataFrame(
            {
                "trace_id": [f"{k}-{i}" for i in range(n)],
                "timestamp": [t0 + timedelta(minutes=i + k * n) for i in range(n)],
                "model": ["m"] * n,
                "latency_ms": [float(i % 97) for i in range(n)],
            }
        )
        pq.write_table(frame.to_arrow(), d / "data.parquet", row_group_size=5000)
    lake = tmp_path / "lake"
    since, until = t0 + timedelta(minutes=12_000), t0 + timedelta(minutes=n + 7_000)
    whole = load([lake], since=since, until=until).frame
    stream = Stream([lake], columns=["latency_ms"], memory=1, since=since, until=until)
    batches = list(stream)
    assert len(batches) > 2 and max(b.height for b in batches) <= MIN_BATCH
    got = pl.concat(batches)
    assert got.height == whole.height == n + 7_000 - 12_000
    assert sorted(got["trace_id"]) == sorted(whole["trace_id"])
    assert got.sort("trace_id")["latency_ms"].equals(whole.sort("trace_id")["latency_ms"])
    assert stream.progress.rows >= got.height

    bad = tmp_path / "bad.parquet"
    rows = pl.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(12_000)],
            "timestamp": [t0] * 12_000,
            "model": ["m"] * 12_000,
            "latency_ms": [-1.0 if i == 11_000 else 1.0 for i in range(12_000)],
        }
    )
    pq.write_table(rows.to_arrow(), bad, row_group_size=5000)
    with pytest.raises(InputError) as exc:
        list(Stream([bad], columns=["latency_ms"], memory=1))
    assert exc.value.lines()[0] == f"{bad}: row 11001: latency_ms: must be >= 0, got -1.0"
