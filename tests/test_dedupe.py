"""The streaming duplicate finder (core/ingest/seen.Deduper) against an exact computation.

Past its in-memory threshold the Deduper uses a Bloom filter plus files on disk; these
tests force that path with tiny thresholds and filters (so that false positives really
happen) and check that the rows kept and the duplicates counted are exactly those of
Polars' ``unique(keep="first")`` over the whole input, for the report's reader
(``Stream``) and the converting reader (``iter_batches``)."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli_runner import run_cli
from json_diff import json_diffs
from llmobs_cli.core.ingest import seen
from llmobs_cli.core.ingest.batches import BatchStats, iter_batches
from llmobs_cli.core.ingest.readers import _GIVEN
from llmobs_cli.core.ingest.readers.stream import Stream
from llmobs_cli.core.ingest.seen import BlockedBloom, Deduper
from llmobs_cli.errors import InputError

T0 = datetime(2026, 3, 1, tzinfo=UTC)
KEY = ["trace_id", "span_id", "timestamp"]


def _calls(rng: np.random.Generator, n: int, distinct: int, first_pos: int) -> pl.DataFrame:
    """``n`` rows drawn from ``distinct`` calls (so repeats fall inside a batch, across
    batches and across files). ``latency_ms`` numbers the rows of the whole input, to
    tell copies apart. Some rows have no span id of their own (never duplicates), some
    share a call's ids at another start time (a different call)."""
    pick = rng.integers(0, distinct, n)
    shifted = rng.random(n) < 0.02
    no_span = rng.random(n) < 0.05
    trace_is_span = rng.random(n) < 0.03
    trace = [f"t{p // 3}" for p in pick]
    span = [
        None if ns else (tr if ts else f"s{p}")
        for p, tr, ns, ts in zip(pick, trace, no_span, trace_is_span, strict=True)
    ]
    return pl.DataFrame(
        {
            "trace_id": trace,
            "span_id": span,
            "timestamp": [
                T0 + timedelta(seconds=int(p) * 37 + (3600 if s else 0))
                for p, s in zip(pick, shifted, strict=True)
            ],
            "model": rng.choice(["m1", "m2", "m3"], n).tolist(),
            "route": rng.choice(["chat", "rag"], n).tolist(),
            "latency_ms": np.arange(first_pos, first_pos + n, dtype=np.float64) + 0.5,
            "input_tokens": rng.integers(1, 900, n),
            "output_tokens": rng.integers(1, 300, n),
            "cost_usd": rng.random(n) / 100,
            "status": rng.choice(["ok", "ok", "error"], n).tolist(),
            "session_id": [f"u{p // 7}" for p in pick],
            "sample_rate": rng.choice([1.0, 0.5, 0.1], n),
        }
    )


def _exact(whole: pl.DataFrame) -> tuple[list[float], int]:
    """The rows kept (their ``latency_ms`` numbers) and the duplicate count, computed on
    the whole input at once: among rows whose source gave a span id (not null, not the
    trace id), the first of each (trace_id, span_id, timestamp) wins."""
    given = pl.col("span_id").is_not_null() & (pl.col("span_id") != pl.col("trace_id"))
    mine = whole.filter(given)
    firsts = mine.unique(subset=KEY, keep="first", maintain_order=True)
    kept = pl.concat([firsts, whole.filter(~given)]).get_column("latency_ms")
    return sorted(kept.to_list()), mine.height - firsts.height


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every Deduper made in the test spills after 500 keys into a 2^17-bit filter, in a
    temporary directory of the test's own (returned)."""
    monkeypatch.setattr(seen, "EXACT_KEYS", 500)
    monkeypatch.setattr(seen, "BLOOM_BITS", 1 << 17)
    monkeypatch.setattr(seen, "_HELD_ROWS", 300)  # many held-row files
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    return spill


def _parquet_files(tmp_path: Path, sizes: list[int], distinct: int, seed: int) -> list[Path]:
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    paths, pos = [], 0
    for i, n in enumerate(sizes):
        df = _calls(rng, n, distinct, pos)
        pos += n
        path = tmp_path / f"part{i}.parquet"
        pq.write_table(df.to_arrow(), path, row_group_size=4096)
        paths.append(path)
    return paths


def _whole(paths: list[Path]) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in paths])


def test_bloom_has_no_false_negatives_and_some_false_positives() -> None:
    rng = np.random.default_rng(1)
    bloom = BlockedBloom(1 << 12, k=3)
    keys = rng.integers(0, 2**64 - 1, 2000, dtype=np.uint64)
    # A key repeated within one call is inserted once and never reported "new" later.
    assert not bloom.add_new(np.concatenate([keys[:5], keys[:5]])).any()
    bloom.add_new(keys)
    assert bloom.add_new(keys).all()  # every inserted key: maybe seen
    fresh = rng.integers(0, 2**64 - 1, 20_000, dtype=np.uint64)
    rate = bloom.add_new(fresh).mean()
    assert 0.01 < rate < 0.9  # a tiny, crowded filter: false positives happen
    with pytest.raises(ValueError, match="power of two"):
        BlockedBloom(1000)


def test_given_column_name_agrees_with_the_readers() -> None:
    assert seen.GIVEN == _GIVEN


@pytest.mark.parametrize("window", [False, True])
def test_stream_past_the_threshold_keeps_exactly_the_first_copies(
    tmp_path: Path, tiny: Path, window: bool
) -> None:
    paths = _parquet_files(tmp_path, [20_000, 15_000, 9_000], distinct=25_000, seed=2)
    whole = _whole(paths)
    since = until = None
    if window:
        since, until = T0 + timedelta(days=2), T0 + timedelta(days=8)
        whole = whole.filter((pl.col("timestamp") >= since) & (pl.col("timestamp") < until))
    made: list[Deduper] = []
    original = seen.Deduper.held

    def spy(self: Deduper, batch_rows: int = 131_072):  # type: ignore[no-untyped-def]
        made.append(self)
        return original(self, batch_rows)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(seen.Deduper, "held", spy)
        stream = Stream(paths, columns=["latency_ms", "route"], memory=1, since=since, until=until)
        with pytest.warns(Warning, match="duplicate span_id"):
            frames = list(stream)
    kept, dups = _exact(whole)
    got = pl.concat(frames).get_column("latency_ms")
    assert sorted(got.to_list()) == kept
    assert got.n_unique() == got.len()
    assert stream.duplicates == dups > 0
    (dedupe,) = made
    assert dedupe.spilling and dedupe.false_positives > 0  # the Bloom path really ran
    assert dedupe.held_rows > dedupe.false_positives
    assert list(tiny.iterdir()) == []  # the spill directory is gone


def test_stream_below_the_threshold_keeps_input_order(tmp_path: Path) -> None:
    paths = _parquet_files(tmp_path, [3000, 2000], distinct=2500, seed=3)
    stream = Stream(paths, columns=["latency_ms"], memory=1)
    with pytest.warns(Warning, match="duplicate span_id"):
        got = pl.concat(list(stream)).get_column("latency_ms").to_list()
    kept, dups = _exact(_whole(paths))
    assert got == kept  # sorted == input order here
    assert stream.duplicates == dups


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_iter_batches_past_the_threshold_matches_unique_keep_first(
    tmp_path: Path, tiny: Path, fmt: str
) -> None:
    paths = _parquet_files(tmp_path, [9000, 7000, 6000], distinct=12_000, seed=4)
    whole = _whole(paths)
    if fmt == "jsonl":
        jsonl = []
        for p in paths:
            out = p.with_suffix(".jsonl")
            ts = pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            pl.read_parquet(p).with_columns(ts).write_ndjson(out)
            jsonl.append(out)
        paths = jsonl
    stats = BatchStats()
    with pytest.warns(Warning, match="duplicate span_id"):
        frames = list(iter_batches(paths, stats=stats, chunk_bytes=300_000))
    assert len(frames) > len(paths)
    kept, dups = _exact(whole)
    got = pl.concat(frames).get_column("latency_ms").to_list()
    assert sorted(got) == kept
    assert stats.duplicates == dups > 0 and stats.rows == len(kept)
    # Only the rows held aside (at the end) break input order.
    assert got != kept and got[: len(kept) // 4] == sorted(got[: len(kept) // 4])
    assert list(tiny.iterdir()) == []


def test_keep_duplicates_keeps_every_row(tmp_path: Path, tiny: Path) -> None:
    from llmobs_cli.core.ingest.readers import ReadOptions

    paths = _parquet_files(tmp_path, [4000, 3000], distinct=2000, seed=5)
    opts = ReadOptions(keep_duplicates=True)
    got = pl.concat(list(iter_batches(paths, options=opts))).get_column("latency_ms")
    assert got.to_list() == _whole(paths).get_column("latency_ms").to_list()
    stream = Stream(paths, columns=["latency_ms"], options=opts, memory=1)
    assert pl.concat(list(stream)).height == 7000 and stream.duplicates == 0


def test_report_json_is_the_same_past_the_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = _parquet_files(tmp_path, [12_000, 8_000], distinct=15_000, seed=6)
    args = ["report", *map(str, paths), "--by", "route,model", "--format", "json"]
    code, exact_out, err = run_cli(*args)
    assert code == 0, err
    assert "duplicate span_id" in err
    monkeypatch.setattr(seen, "EXACT_KEYS", 300)
    monkeypatch.setattr(seen, "BLOOM_BITS", 1 << 16)
    spill = tmp_path / "spill"
    spill.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill))
    code, spilled_out, err2 = run_cli(*args)
    assert code == 0, err2
    assert err2 == err  # the same duplicate count in the same warning
    assert json_diffs(json.loads(spilled_out), json.loads(exact_out), abs_tol=1e-12) == []
    assert list(spill.iterdir()) == []


def _spill_dirs(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if p.name.startswith("llmobs-dedupe-")]


def test_no_spill_left_when_the_consumer_stops_early(tmp_path: Path, tiny: Path) -> None:
    paths = _parquet_files(tmp_path, [6000, 6000, 6000], distinct=9000, seed=7)
    gen = iter(Stream(paths, columns=["latency_ms"], memory=1))
    next(gen)
    next(gen)
    assert _spill_dirs(tiny)  # spilling by now
    gen.close()
    assert list(tiny.iterdir()) == []
    batches = iter_batches(paths)
    next(batches)
    next(batches)
    assert _spill_dirs(tiny)
    batches.close()
    assert list(tiny.iterdir()) == []


def test_no_spill_left_after_an_error_mid_stream(tmp_path: Path, tiny: Path) -> None:
    paths = _parquet_files(tmp_path, [6000, 6000], distinct=9000, seed=8)
    broken = tmp_path / "zz_broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")
    for read in (
        lambda: list(Stream([*paths, broken], columns=["latency_ms"], memory=1)),
        lambda: list(iter_batches([*paths, broken])),
    ):
        with pytest.raises(InputError, match="zz_broken"):
            read()
        assert list(tiny.iterdir()) == []


def test_fail_policy_yields_no_held_row_after_a_problem(tmp_path: Path, tiny: Path) -> None:
    paths = _parquet_files(tmp_path, [6000, 6000], distinct=9000, seed=9)
    bad = pl.read_parquet(paths[1]).with_columns(
        pl.when(pl.int_range(pl.len()) == 10).then(None).otherwise(pl.col("model")).alias("model")
    )
    bad.write_parquet(paths[1])
    got = []
    with pytest.raises(InputError):
        for frame in iter_batches(paths):
            got.append(frame)
    assert sum(f.height for f in got) <= 6000  # nothing from the bad file nor held rows
    assert list(tiny.iterdir()) == []


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 400), min_size=1, max_size=8),
    distinct=st.integers(1, 600),
    exact_keys=st.integers(0, 300),
    bloom_bits=st.sampled_from([64, 256, 1 << 12]),
    seed=st.integers(0, 2**32 - 1),
)
def test_deduper_equals_unique_keep_first(
    sizes: list[int], distinct: int, exact_keys: int, bloom_bits: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    frames, pos = [], 0
    for n in sizes:
        df = _calls(rng, n, distinct, pos)
        pos += n
        given_ = pl.col("span_id").is_not_null() & (pl.col("span_id") != pl.col("trace_id"))
        frames.append(df.with_columns(given_.alias(seen.GIVEN)))
    whole = pl.concat(frames, how="vertical_relaxed").drop(seen.GIVEN)
    with tempfile.TemporaryDirectory() as d, pytest.MonkeyPatch.context() as mp:
        mp.setattr(seen, "_HELD_ROWS", 50)
        with Deduper(exact_keys=exact_keys, bloom_bits=bloom_bits, bloom_k=2, directory=d) as dd:
            out = [dd.new_rows(f) for f in frames]
            out += list(dd.held(batch_rows=97))
            assert all(f.height <= 97 for f in out[len(frames) :])
            assert seen.GIVEN not in out[0].columns
        assert list(Path(d).iterdir()) == []
    kept, dups = _exact(whole)
    got = pl.concat(out, how="vertical_relaxed").get_column("latency_ms").to_list()
    assert sorted(got) == kept
    assert dd.duplicates == dups


@pytest.mark.parametrize("n_cand", [1000, 1_200_000])  # small; past the bitmap's size
def test_members_equals_isin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n_cand: int) -> None:
    rng = np.random.default_rng(n_cand)
    keys = rng.integers(0, 2**64 - 1, 2 * n_cand, dtype=np.uint64)
    keys[:3] = [0, 2**64 - 1, 2**63]  # the extremes too
    cand = np.unique(
        np.concatenate(
            [rng.choice(keys, n_cand // 2), rng.integers(0, 2**64 - 1, n_cand, dtype=np.uint64)]
        )
    )
    path = tmp_path / "keys.u64"
    keys.tofile(path)
    monkeypatch.setattr(seen, "_CHUNK", 300_001)
    got = seen._members(cand, path)
    assert got.tolist() == np.isin(cand, keys).tolist()
    assert 0.2 < got.mean() < 0.5


def test_filter_size_follows_the_known_row_count(tmp_path: Path) -> None:
    assert seen.bloom_bits_for(None) == seen.BLOOM_BITS
    assert seen.bloom_bits_for(10) == seen.MIN_BLOOM_BITS
    assert seen.bloom_bits_for(10_000_000) == 1 << 28  # 24 bits a key, rounded up
    assert seen.bloom_bits_for(10**12) == seen.BLOOM_BITS
    paths = _parquet_files(tmp_path, [300, 200], distinct=400, seed=10)
    folder = tmp_path / "tree" / "date=2026-03-01"
    folder.mkdir(parents=True)
    (tmp_path / "part0.parquet").rename(folder / "a.parquet")
    assert seen.parquet_rows([tmp_path / "tree", paths[1]], ["parquet", "parquet"]) == 500
    assert seen.parquet_rows([paths[1]], ["jsonl"]) is None
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"nope")
    assert seen.parquet_rows([broken], ["parquet"]) is None
