"""HashSpill: rows land in one partition per hash value, come back whole, leave no files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmobs_cli.core.spill import HashSpill


def _frame(rng: np.random.Generator, n: int) -> pl.DataFrame:
    keys = rng.integers(0, 2**64 - 1, size=max(1, n // 3), dtype=np.uint64)
    h = rng.choice(keys, size=n)
    return pl.DataFrame({"h": pl.Series(h, dtype=pl.UInt64), "v": rng.normal(size=n)})


def test_partitions_hold_every_row_once_and_each_key_in_one_partition() -> None:
    rng = np.random.default_rng(3)
    frames = [_frame(rng, 5000) for _ in range(4)]
    frames.append(pl.DataFrame({"h": pl.Series([None, None], dtype=pl.UInt64), "v": [1.0, 2.0]}))
    with HashSpill("h", parts=8) as spill:
        for f in frames:
            spill.add(f)
        parts = list(spill.partitions())
        directory = spill.directory
        assert spill.rows == sum(f.height for f in frames)
    assert not directory.exists()
    assert 1 < len(parts) <= 8
    both = pl.concat(parts)
    expected = pl.concat(frames)
    assert both.height == expected.height
    assert both.sort("h", "v").equals(expected.sort("h", "v"))
    owners: dict[object, int] = {}
    for i, p in enumerate(parts):
        for h in p.get_column("h").unique().to_list():
            assert owners.setdefault(h, i) == i, "a key spread over two partitions"


def test_single_partition_and_dropping() -> None:
    rng = np.random.default_rng(4)
    with HashSpill("h", parts=1) as spill:
        spill.add(_frame(rng, 100))
        spill.add(pl.DataFrame({"h": pl.Series([], dtype=pl.UInt64), "v": []}))
        assert [p.height for p in spill.partitions()] == [100]
        spill.drop_partition(0)
        assert list(spill.partitions()) == []


def test_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="power of two"):
        HashSpill("h", parts=6)
    with HashSpill("h") as spill, pytest.raises(ValueError, match="hash column"):
        spill.add(pl.DataFrame({"x": [1]}))


def test_adds_append_to_one_file_per_partition_and_a_new_schema_starts_another() -> None:
    rng = np.random.default_rng(5)
    with HashSpill("h", parts=4) as spill:
        for _ in range(20):
            spill.add(_frame(rng, 200))
        files = sorted(spill.directory.iterdir())
        assert len(files) == 4
        # A column typed differently (all-null) opens a second file for its partitions.
        spill.add(pl.DataFrame({"h": pl.Series([1, 2**63], dtype=pl.UInt64), "v": [None, None]}))
        assert len(list(spill.directory.iterdir())) == 6
        parts = list(spill.partitions())
        assert sum(p.height for p in parts) == 20 * 200 + 2
        assert all(p.schema["v"] == pl.Float64 for p in parts)
        assert spill.bytes > 0


def test_a_full_disk_while_spilling_is_one_line_exit_2(tmp_path, monkeypatch) -> None:
    """A spill that cannot be written (no space left under TMPDIR) ends the command with
    exit 2 and one line naming the file and saying what to do; no traceback, no
    internal error, no spill directory left behind."""
    import errno
    import importlib
    import tempfile

    import llmobs_cli.core.spill as spill_mod
    from cli_runner import run_cli

    merge_mod = importlib.import_module("llmobs_cli.core.partials.merge")
    monkeypatch.setattr(merge_mod, "SPILL_ROWS", 50)
    monkeypatch.setattr("llmobs_cli.core.ingest.readers.stream.MIN_BATCH", 300)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def full(self, p, rows):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device", str(self.directory / "p0000"))

    monkeypatch.setattr(spill_mod.HashSpill, "_write", full)
    sample = Path(__file__).parent.parent / "sample_traces" / "traces.parquet"
    code, out, err = run_cli(
        "report", str(sample), "--by", "route,model", "--memory", "1", "--format", "json"
    )
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("llmobs: ")
    assert "No space left on device" in lines[0] and "TMPDIR" in lines[0]
    assert "internal error" not in err and "Traceback" not in err
    assert [p for p in tmp_path.iterdir() if p.name.startswith("llmobs-spill-")] == []
