"""Reading a Parquet dump: a count plus one column's sum, llmobs's reader vs DuckDB.

The llmobs side goes through the real reader (``load`` with projection: the column plus
what validation needs — timestamp, sample_rate, end_time — normalised and validated);
DuckDB runs ``SELECT count(*), sum(latency_ms)`` on the same file. Whole processes,
alternated. Usage: ``python bench/read.py [--rows 1000000] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import sys

from _common import alternate, generated, print_row

LLMOBS = (
    "from llmobs_cli.core.ingest.readers import load\n"
    "df = load([{path!r}], columns=['latency_ms']).frame\n"
    "print(df.height, df['latency_ms'].sum())\n"
)
DUCKDB = (
    "import duckdb\n"
    'print(duckdb.sql("SELECT count(*), sum(latency_ms) FROM read_parquet({path!r})").fetchall())\n'
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    path = str(generated(args.rows))
    a = ("llmobs", [sys.executable, "-c", LLMOBS.format(path=path)])
    b = ("duckdb", [sys.executable, "-c", DUCKDB.format(path=path)])
    ta, tb, ratios = alternate(a, b, args.runs)
    print("| workload | llmobs | DuckDB | llmobs / DuckDB |")
    print("|---|---|---|---|")
    print_row(f"count + sum(latency_ms), {args.rows:,} rows", ta, tb, ratios)


if __name__ == "__main__":
    main()
