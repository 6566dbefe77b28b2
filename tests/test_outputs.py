"""Outputs never destroy what llmobs did not write (issue 13, item 1), and streaming
outputs are published atomically or not at all (issue 11: convert, sample, interrupts)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.core.ingest.convert import convert, to_jsonl_bytes
from llmobs_cli.core.ingest.readers import ReadOptions, load
from llmobs_cli.core.outputs import MANIFEST
from llmobs_cli.errors import InputError
from test_cli_foundation import GOOD, jsonl, run


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path → sha256 of its bytes)."""
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file()
    }


def unrelated(folder: Path) -> dict[str, str]:
    """A folder of files that are not llmobs's: notes, a source tree, a data file."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes\n")
    (folder / "src").mkdir()
    (folder / "src" / "main.py").write_text("print('hello')\n")
    (folder / "data.csv").write_text("a,b\n1,2\n")
    return snapshot(folder)


def days(path: Path, first: datetime, n: int, per_day: int = 3) -> Path:
    rows = []
    for d in range(n):
        for k in range(per_day):
            ts = first + timedelta(days=d, hours=k)
            rows.append({**GOOD, "trace_id": f"t{d}-{k}", "timestamp": ts.isoformat()})
    return jsonl(path, *rows)


START = datetime(2026, 1, 1, tzinfo=UTC)


def test_partition_refuses_folder_of_other_files_and_keeps_them(tmp_path: Path) -> None:
    oneday = days(tmp_path / "oneday.jsonl", START, 1)
    victim = tmp_path / "victim"
    before = unrelated(victim)
    res = run("convert", str(oneday), "-o", str(victim), "--partition-by", "date")
    assert res.returncode == 2
    assert "not an llmobs partition tree" in res.stderr and "--overwrite" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert snapshot(victim) == before
    # --overwrite writes the partition into it and still keeps every other file
    res = run("convert", str(oneday), "-o", str(victim), "--partition-by", "date", "--overwrite")
    assert res.returncode == 0, res.stderr
    after = snapshot(victim)
    assert {k: after[k] for k in before} == before
    assert "date=2026-01-01/part-0.parquet" in after and MANIFEST in after
    assert load([str(victim / "date=2026-01-01")]).frame.height == 3


def test_output_that_is_or_contains_or_is_inside_an_input(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    days(logs / "a.jsonl", START, 2)
    days(logs / "b.jsonl", START + timedelta(days=2), 2)
    pq = tmp_path / "t.parquet"
    assert run("convert", str(logs), "-o", str(pq)).returncode == 0
    before = snapshot(tmp_path)
    cases = [
        ("convert", str(logs), "-o", str(logs), "--partition-by", "date"),  # is the input
        ("convert", str(logs / "a.jsonl"), "-o", str(logs), "--partition-by", "date"),  # contains
        ("convert", str(logs), "-o", str(logs / "tree"), "--partition-by", "date"),  # inside
        ("convert", str(logs), "-o", str(logs / "all.parquet")),  # file inside an input dir
        ("convert", str(logs / "a.jsonl"), "-o", str(logs / "a.jsonl")),  # the input itself
        ("sample", str(logs / "a.jsonl"), "-o", str(logs / "a.jsonl")),
        ("report", str(pq), "-o", str(pq)),
        ("drift", str(pq), "-o", str(pq)),
        ("eval", str(pq), "--dry-run", "-o", str(pq)),
        ("dashboard", str(logs), "-o", str(logs / "dash.html")),
    ]
    for args in cases:
        res = run(*args)
        assert res.returncode == 2, (args, res.stderr)
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1, args
        assert "input" in res.stderr, (args, res.stderr)
        assert snapshot(tmp_path) == before, args


def test_dot_output_is_exit_2(tmp_path: Path) -> None:
    days(tmp_path / "oneday.jsonl", START, 1)
    (tmp_path / "keep.txt").write_text("mine\n")
    before = snapshot(tmp_path)
    for extra in ((), ("--partition-by", "date")):
        res = run("convert", "oneday.jsonl", "-o", ".", *extra, cwd=tmp_path)
        assert res.returncode == 2, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
        assert res.stderr.startswith("llmobs: .: ")
        assert snapshot(tmp_path) == before
    # inputs elsewhere, "." a plain folder of other files: refused, not wiped
    other = tmp_path / "work"
    other.mkdir()
    (other / "todo.md").write_text("x\n")
    res = run(
        "convert", str(tmp_path / "oneday.jsonl"), "-o", ".", "--partition-by", "date", cwd=other
    )
    assert res.returncode == 2 and "not an llmobs partition tree" in res.stderr
    assert snapshot(other) == {"todo.md": hashlib.sha256(b"x\n").hexdigest()}


@pytest.mark.parametrize("manifest", [True, False])
def test_new_day_into_42_day_tree_keeps_43_partitions(tmp_path: Path, manifest: bool) -> None:
    history = days(tmp_path / "history.jsonl", START, 42)
    tree = tmp_path / "tree"
    assert run("convert", str(history), "-o", str(tree), "--partition-by", "date").returncode == 0
    if not manifest:  # a tree written before the manifest existed is still appendable
        (tree / MANIFEST).unlink()
    before = snapshot(tree)
    new = days(tmp_path / "new.jsonl", START + timedelta(days=42), 1, per_day=5)
    res = run("convert", str(new), "-o", str(tree), "--partition-by", "date")
    assert res.returncode == 0, res.stderr
    parts = sorted(d.name for d in tree.iterdir() if d.is_dir())
    assert len(parts) == 43 and parts[-1] == "date=2026-02-12"
    after = snapshot(tree)
    assert {k: after[k] for k in before if k != MANIFEST} == {
        k: v for k, v in before.items() if k != MANIFEST
    }
    assert load([str(tree)]).frame.height == 42 * 3 + 5
    assert json.loads((tree / MANIFEST).read_text())["partitions"] == parts
    # converting a day again replaces that partition only (no duplicate rows)
    again = days(tmp_path / "again.jsonl", START, 1, per_day=7)
    assert run("convert", str(again), "-o", str(tree), "--partition-by", "date").returncode == 0
    assert load([str(tree / "date=2026-01-01")]).frame.height == 7
    assert load([str(tree)]).frame.height == 41 * 3 + 5 + 7
    assert (
        snapshot(tree)["date=2026-01-02/part-0.parquet"] == before["date=2026-01-02/part-0.parquet"]
    )


def test_failed_partition_write_changes_nothing(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    good = days(tmp_path / "good.jsonl", START, 3)
    assert run("convert", str(good), "-o", str(tree), "--partition-by", "date").returncode == 0
    before = snapshot(tree)
    bad = jsonl(
        tmp_path / "bad.jsonl",
        {**GOOD, "timestamp": "2026-01-01T05:00:00Z"},
        {**GOOD, "timestamp": "2026-01-09T05:00:00Z", "latency_ms": -3},
    )
    res = run("convert", str(bad), "-o", str(tree), "--partition-by", "date")
    assert res.returncode == 2 and "bad.jsonl:2: latency_ms" in res.stderr
    assert snapshot(tree) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _population(n: int) -> pl.DataFrame:
    ts = [START + timedelta(seconds=37 * i) for i in range(n)]
    return pl.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(n)],
            "timestamp": [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in ts],
            "model": ["gpt-4o" if i % 3 else "claude" for i in range(n)],
            "route": ["chat" if i % 2 else "search" for i in range(n)],
            "latency_ms": [float(i % 900) + 0.5 for i in range(n)],
            "prompt": [f"question {i} " * (1 + i % 7) for i in range(n)],
            "metadata": [{"k": i % 5} for i in range(n)],
        }
    )


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_chunked_convert_equals_whole_read(tmp_path: Path, suffix: str) -> None:
    src = tmp_path / "in.jsonl"
    _population(3000).write_ndjson(src)
    if suffix != ".jsonl":  # the same lines, compressed
        comp = tmp_path / f"in{suffix}"
        run("convert", str(src), "-o", str(comp))
        src = comp
    whole = load([str(src)]).frame
    chunk = len(to_jsonl_bytes(whole)) // 12  # a dozen chunks or so, cut mid-file
    for out_name, partition in (("out.parquet", None), ("out.jsonl", None), ("tree", "date")):
        out = tmp_path / out_name
        res = convert([src], out, partition_by=partition, chunk_bytes=chunk)
        assert res.rows == 3000
        got = load([str(out)]).frame
        assert got.sort("trace_id").equals(whole.sort("trace_id")), out_name


def test_chunked_convert_names_the_source_line(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    _population(2000).write_ndjson(src)
    lines = src.read_text().splitlines()
    lines[1500] = '{"trace_id": "x", "timestamp": "nope", "model": "m", "latency_ms": 1}'
    lines[1700] = "not json"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.parquet"
    with pytest.raises(InputError) as exc:
        convert([src], out, chunk_bytes=10_000)
    assert exc.value.problems[0].startswith(f"{src}:1501: timestamp: not an RFC 3339 time")
    assert exc.value.problems[1].startswith(f"{src}:1701: (line): invalid JSON")
    assert exc.value.total == 2
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["in.jsonl"]
    res = convert([src], out, on_error="skip", chunk_bytes=10_000)
    assert res.rows == 1998 and res.skipped == 2
    assert pl.read_parquet(out).height == 1998


def test_convert_reports_progress(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    _population(2000).write_ndjson(src)
    seen = []
    convert([src], tmp_path / "o.parquet", chunk_bytes=20_000, progress=seen.append)
    assert len(seen) > 3
    assert [p.rows for p in seen] == sorted(p.rows for p in seen) and seen[-1].rows == 2000
    assert seen[-1].bytes == seen[-1].total_bytes == src.stat().st_size


@pytest.mark.parametrize(
    ("command", "sig"), [("convert", signal.SIGINT), ("sample", signal.SIGTERM)]
)
def test_interrupt_removes_partial_output(tmp_path: Path, sig: int, command: str) -> None:
    src = tmp_path / "in.jsonl"
    _population(2000).write_ndjson(src)
    data = src.read_bytes()
    src.write_bytes(data * 150)  # 300k rows: seconds of work
    out = tmp_path / "out.parquet"
    out.write_bytes(b"previous output\n")
    args = [command, str(src), "-o", str(out)]
    if command == "sample":
        args += ["--rate", "chat=0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmobs_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(p.name.startswith(".out.parquet.") for p in tmp_path.iterdir()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmobs: interrupted;"), err
    assert out.read_bytes() == b"previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.parquet"]


def test_generate_streams_blocks_with_the_same_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llmobs_cli.core.synth.generate as synth
    from llmobs_cli.core import sinks

    one_block = synth.generate(500, 9)
    monkeypatch.setattr(synth, "BLOCK_ROWS", 500)
    whole = synth.generate(1_700, 9)
    assert whole.height == 1_700
    # block 0 is the one-block file of the same seed; later blocks draw other numbers
    assert whole.head(500).equals(one_block)
    assert whole["trace_id"].n_unique() == 1_700
    blocks = list(synth.generate_blocks(1_700, 9))
    assert [b.height for b in blocks] == [500, 500, 500, 200]
    assert all(b["timestamp"].is_sorted() for b in blocks)
    # what the sink sees is one block at a time, never the whole output
    seen: list[int] = []
    real = sinks.FileSink.write

    def spy(self: sinks.FileSink, frame: pl.DataFrame) -> None:
        seen.append(frame.height)
        real(self, frame)

    monkeypatch.setattr(sinks.FileSink, "write", spy)
    ticks = []
    for name in ("g.parquet", "g.jsonl.gz"):
        done = synth.write_generated(tmp_path / name, 1_700, 9, progress=ticks.append)
        assert done.rows == 1_700
        assert load([str(tmp_path / name)]).frame.equals(load_frame(whole))
    assert max(seen) == 500
    assert ticks[-1].rows == ticks[-1].total_rows == 1_700
    # a different seed gives different rows in every block
    other = synth.generate(1_700, 10)
    assert not other.slice(1_000, 500).equals(whole.slice(1_000, 500))


def load_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` as the readers return it (written to canonical Parquet and read back)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "f.parquet"
        frame.write_parquet(p)
        return load([str(p)]).frame


def test_generate_refuses_a_directory_and_keeps_nothing_partial(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("x\n")
    before = snapshot(tmp_path)
    res = run("generate", ".", "--rows", "10", cwd=tmp_path)
    assert res.returncode == 2 and "is a directory" in res.stderr
    assert snapshot(tmp_path) == before


def test_streaming_reads_follow_load_rules(tmp_path: Path) -> None:
    """Duplicates across batches counted once, empty input exit 2 — as load() does."""
    src = tmp_path / "in.jsonl"
    pop = _population(1500).with_columns(span_id=pl.lit("s-") + pl.col("trace_id"))
    pop.write_ndjson(src)
    twice = tmp_path / "twice.jsonl"
    twice.write_bytes(src.read_bytes() * 2)  # every call read twice, in different chunks
    out = tmp_path / "out.parquet"
    with pytest.warns(UserWarning, match="1500 duplicate span_id row"):
        res = convert([twice], out, chunk_bytes=len(src.read_bytes()) // 5)
    assert res.rows == 1500 and pl.read_parquet(out)["span_id"].n_unique() == 1500
    kept = convert([twice], out, options=ReadOptions(keep_duplicates=True), chunk_bytes=100_000)
    assert kept.rows == 3000
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = run("convert", str(empty), "-o", str(tmp_path / "e.parquet"))
    assert res.returncode == 2 and "empty file" in res.stderr
    assert not (tmp_path / "e.parquet").exists()
