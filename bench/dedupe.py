"""The streaming duplicate finder alone: memory and time at 100M+ keys, and the filter's
false-positive rate.

Two parts:

``--part fp`` — false-positive rate and time per key of the blocked Bloom filter
(``core/ingest/seen.BlockedBloom``, k bits in one 64-bit word) for several ``k`` against a
standard Bloom filter (k bits anywhere, double hashing) of the same size, measured after
inserting 100M, 175M and 260M distinct keys (the rate depends only on keys per bit, so
``--scale 8`` runs the same ratios on an eighth of the bits and keys, 8x faster).

``--part deduper`` — ``--rows`` synthetic calls, ``--repeat`` of them copies of an earlier
call spread over the whole input, through :class:`~llmobs_cli.core.ingest.seen.Deduper` in
batches of 131,072 rows as a stream would (keys hashed from ``(trace_id, span_id,
timestamp)`` as strings), each variant a whole process (wall, CPU, peak RSS from
``os.wait4``):

* ``deduper`` — the default (exact up to 8M keys, then the 256 MB filter plus disk);
* ``exact`` — the previous behaviour, every key in memory (the same class with an
  unreachable threshold);
* ``duckdb`` — DuckDB counting the distinct triples of the same generated rows
  (``SELECT count(*) FROM (SELECT DISTINCT ...)``), with ``--duckdb-memory`` as its limit.

Every variant prints its distinct count; the bench checks they agree.

Usage: ``python bench/dedupe.py --part deduper --rows 100000000`` or
``python bench/dedupe.py --part fp --scale 8``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BATCH = 131_072
#: Row i is call ((i * A) mod N) mod U: a permutation of the rows folded onto U calls,
#: so copies are spread over the input (A is a prime other than 2 and 5, coprime with N).
A = 2_654_435_761


def _distinct(rows: int, repeat: float) -> int:
    return max(1, int(rows * (1 - repeat)))


def _frames(rows: int, repeat: float):  # type: ignore[no-untyped-def]
    import polars as pl

    from llmobs_cli.core.ingest.seen import GIVEN

    u = _distinct(rows, repeat)
    t0 = pl.datetime(2026, 9, 1, time_zone="UTC")
    for s in range(0, rows, BATCH):
        e = min(rows, s + BATCH)
        i = pl.int_range(s, e, dtype=pl.UInt64)
        cid = ((i * A) % rows) % u
        yield pl.select(
            pl.concat_str(pl.lit("t"), (cid // 4).cast(pl.String)).alias("trace_id"),
            pl.concat_str(pl.lit("s"), cid.cast(pl.String)).alias("span_id"),
            (t0 + pl.duration(seconds=cid.cast(pl.Int64))).alias("timestamp"),
            pl.lit(True).alias(GIVEN),
        )


def run_deduper(rows: int, repeat: float, exact: bool) -> None:
    import resource

    from llmobs_cli.core.ingest.seen import Deduper

    kept = 0
    t0 = time.perf_counter()
    with Deduper(exact_keys=1 << 62 if exact else None) as dd:
        for frame in _frames(rows, repeat):
            kept += dd.new_rows(frame).height
        streamed = time.perf_counter() - t0
        rss_stream = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        for frame in dd.held(BATCH):
            kept += frame.height
        print(
            f"distinct={kept} duplicates={dd.duplicates} held={dd.held_rows} "
            f"false_positives={dd.false_positives} stream_s={streamed:.1f} "
            f"peak_mb_by_the_end_of_input={rss_stream:.0f} "
            f"end_s={time.perf_counter() - t0 - streamed:.1f}"
        )


def run_duckdb(rows: int, repeat: float, memory: str) -> None:
    import duckdb

    u = _distinct(rows, repeat)
    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{memory}'")
    con.execute("SET preserve_insertion_order = false")
    (n,) = con.execute(
        f"""
        WITH c AS (SELECT ((i * {A}) % {rows}) % {u} AS cid FROM range({rows}) t(i))
        SELECT count(*) FROM (
          SELECT DISTINCT 't' || (cid // 4) AS trace_id, 's' || cid AS span_id,
                 TIMESTAMPTZ '2026-09-01 00:00:00+00' + to_seconds(cid) AS ts
          FROM c)
        """
    ).fetchone()
    print(f"distinct={n}")


def _measure(cmd: list[str]) -> tuple[float, float, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out.strip()


# --- false-positive rates ----------------------------------------------------------------


def _standard_slots(keys: np.ndarray, bits_log2: int, k: int) -> np.ndarray:
    from llmobs_cli.core.ingest.seen import _mix

    h1 = _mix(keys)
    h2 = _mix(h1 ^ np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
    shift = np.uint64(64 - bits_log2)
    return np.stack([((h1 + np.uint64(i) * h2) >> shift) for i in range(k)])


class StandardBloom:
    """k bits anywhere in ``2**bits_log2`` bits (k cache misses per key)."""

    def __init__(self, bits_log2: int, k: int) -> None:
        self.bits_log2, self.k = bits_log2, k
        self.words = np.zeros(1 << (bits_log2 - 6), dtype=np.uint64)

    def add_new(self, keys: np.ndarray) -> np.ndarray:
        pos = _standard_slots(keys, self.bits_log2, self.k)
        word = (pos >> np.uint64(6)).astype(np.intp)
        bit = np.uint64(1) << (pos & np.uint64(63))
        maybe = ((self.words[word] & bit) != 0).all(axis=0)
        word, bit = word[:, ~maybe].ravel(), bit[:, ~maybe].ravel()
        while len(word):
            self.words[word] |= bit
            lost = (self.words[word] & bit) == 0
            word, bit = word[lost], bit[lost]
        return maybe


def run_fp(scale: int, configs: list[str]) -> None:
    from llmobs_cli.core.ingest.seen import BLOOM_BITS, BlockedBloom

    bits = BLOOM_BITS // scale
    marks = [100_000_000 // scale, 175_000_000 // scale, 260_000_000 // scale]
    rng = np.random.default_rng(11)
    print(f"filter: {bits:,} bits ({bits // 8 >> 20} MB); keys at the marks: {marks}")
    print("| filter | k | ns/key (test+insert) | FP at 100M | FP at 175M | FP at 260M |")
    print("|---|---|---|---|---|---|")
    for cfg in configs:
        kind, k = cfg[0], int(cfg[1:])
        bloom = BlockedBloom(bits, k) if kind == "b" else StandardBloom(bits.bit_length() - 1, k)
        done, spent, rates = 0, 0.0, []
        for mark in marks:
            while done < mark:
                n = min(1 << 20, mark - done)
                # Odd keys are inserted, even keys probe (never inserted).
                keys = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
                t = time.perf_counter()
                bloom.add_new(keys)
                spent += time.perf_counter() - t
                done += n
            probe = rng.integers(0, 2**63, 2_000_000, dtype=np.uint64) * np.uint64(2)
            words = bloom.words.copy()
            rates.append(float(bloom.add_new(probe).mean()))
            bloom.words = words  # the probe keys must not stay in the filter
        name = "blocked (one 64-bit word)" if kind == "b" else "standard"
        print(
            f"| {name} | {k} | {spent / done * 1e9:.0f} | "
            + " | ".join(f"{r:.3%}" for r in rates)
            + " |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--part", choices=["deduper", "fp"], default="deduper")
    ap.add_argument("--rows", type=int, default=100_000_000)
    ap.add_argument("--repeat", type=float, default=0.05, help="share of rows that are copies")
    ap.add_argument("--variants", nargs="+", default=["deduper", "exact", "duckdb"])
    ap.add_argument("--duckdb-memory", default="4GB")
    ap.add_argument("--scale", type=int, default=1, help="fp: bits and keys divided by this")
    ap.add_argument("--configs", nargs="+", default=["b3", "b4", "b5", "s4", "s6"])
    ap.add_argument("--child", choices=["deduper", "exact", "duckdb"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "duckdb":
        return run_duckdb(args.rows, args.repeat, args.duckdb_memory)
    if args.child is not None:
        return run_deduper(args.rows, args.repeat, exact=args.child == "exact")
    if args.part == "fp":
        return run_fp(args.scale, args.configs)
    print(f"{args.rows:,} rows, {args.repeat:.0%} copies")
    print("| variant | wall (s) | CPU (s) | peak RSS (MB) | output |")
    print("|---|---|---|---|---|")
    counts = set()
    for v in args.variants:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", v]
        cmd += ["--rows", str(args.rows), "--repeat", str(args.repeat)]
        cmd += ["--duckdb-memory", args.duckdb_memory]
        wall, cpu, rss, out = _measure(cmd)
        counts.add(out.split()[0])
        print(f"| {v} | {wall:.1f} | {cpu:.1f} | {rss:,.0f} | {out} |", flush=True)
    if len(counts) != 1:
        raise SystemExit(f"the variants disagree: {counts}")


if __name__ == "__main__":
    main()
