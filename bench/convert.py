"""Benchmark: `llmobs convert` of a ~1 GB canonical JSONL to Parquet against DuckDB.

    python bench/convert.py [--gb 1.0] [--runs 3]

The input is generated once under bench/data/ (git-ignored): `llmobs generate` streams
about 640,000 realistic rows per GB (distinct calls: repeated copies would be dropped as
duplicates by llmobs and not by DuckDB) into a canonical JSONL file. Each
run is a whole process (interpreter start, imports, reading, validating, writing),
alternated with DuckDB's ``COPY (SELECT * FROM read_json(...)) TO ... (FORMAT parquet)``
on the same file; the table shows median wall time and the peak RSS of each process
(``wait4``'s ``ru_maxrss``, per process), and the per-pair ratio llmobs / DuckDB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import DATA

OUT = Path(__file__).parent / "out"


def make_input(gb: float) -> Path:
    """A canonical JSONL of about ``gb`` GB of distinct generated calls."""
    DATA.mkdir(exist_ok=True)
    rows = int(gb * 640_000)
    path = DATA / f"convert_{rows}.jsonl"
    if not path.exists():
        subprocess.run(
            [sys.executable, "-m", "llmobs_cli", "generate", str(path), "--rows", str(rows)],
            check=True,
        )
    return path


def measure(cmd: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one whole process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.stderr.write(err)
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gb", type=float, default=1.0, help="input size in GB (default 1)")
    ap.add_argument("--runs", type=int, default=3, help="alternated pairs (default 3)")
    args = ap.parse_args()
    src = make_input(args.gb)
    OUT.mkdir(exist_ok=True)
    ours = OUT / "convert_llmobs.parquet"
    duck = OUT / "convert_duckdb.parquet"
    llmobs = [sys.executable, "-m", "llmobs_cli", "convert", str(src), "-o", str(ours)]
    query = f"COPY (SELECT * FROM read_json('{src}')) TO '{duck}' (FORMAT parquet)"
    duckdb = [sys.executable, "-c", f"import duckdb; duckdb.sql({query!r})"]
    rows: dict[str, list[tuple[float, float]]] = {"llmobs": [], "duckdb": []}
    ratios = []
    for _ in range(args.runs):
        a = measure(llmobs)
        b = measure(duckdb)
        rows["llmobs"].append(a)
        rows["duckdb"].append(b)
        ratios.append(a[0] / b[0])
    size = src.stat().st_size / 1e9
    print(
        f"convert {src.name} ({size:.2f} GB) to Parquet, {args.runs} alternated runs, "
        f"{os.cpu_count()} cores"
    )
    print("| tool | median wall | peak RSS (max of runs) |")
    print("|---|---|---|")
    for name, runs in rows.items():
        wall = statistics.median(w for w, _ in runs)
        peak = max(m for _, m in runs)
        print(f"| {name} | {wall:.1f} s | {peak:,.0f} MB |")
    print(
        f"time ratio llmobs / DuckDB: {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
    )
    print(
        "peak RSS ratio llmobs / DuckDB: "
        f"{max(m for _, m in rows['llmobs']) / max(m for _, m in rows['duckdb']):.2f}x"
    )


if __name__ == "__main__":
    main()
