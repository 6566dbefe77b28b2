"""``llmobs calls --sort latency_ms --top 5`` against the same query in DuckDB.

Both sides run as whole processes, alternated after a warm-up each, on the same
generated Parquet dump (``llmobs generate``, cached in ``bench/data``). The DuckDB side
reads the ids and latency, filters out missing latencies and keeps the five slowest
(ties by trace and span id) — the list ``llmobs calls`` prints, whose JSON is checked
equal to DuckDB's rows before timing. A second row adds a filter (``--where``) and
ranks by output tokens.

Usage: ``python bench/calls.py [--rows 1000000] [--runs 5]``; prints a Markdown table of
medians and the median of the per-pair ratios (llmobs / DuckDB).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from _common import alternate, generated

CASES = {
    "slowest 5": (
        ["--sort", "latency_ms", "--top", "5"],
        "SELECT trace_id, span_id, latency_ms FROM read_parquet('{p}') WHERE latency_ms IS NOT "
        "NULL ORDER BY latency_ms DESC, trace_id, span_id LIMIT 5",
    ),
    "chat > 2 s, most output tokens, 10": (
        ["--where", "route=chat and latency_ms > 2s", "--sort", "output_tokens", "--top", "10"],
        "SELECT trace_id, span_id, output_tokens FROM read_parquet('{p}') WHERE route = 'chat' "
        "AND latency_ms > 2000 AND output_tokens IS NOT NULL "
        "ORDER BY output_tokens DESC, trace_id, span_id LIMIT 10",
    ),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    print("| rows | query | llmobs | DuckDB | llmobs / DuckDB |")
    print("|---|---|---|---|---|")
    for rows in args.rows:
        path = generated(rows)
        for label, (opts, sql) in CASES.items():
            query = sql.format(p=path)
            llm = [sys.executable, "-m", "llmobs_cli", "calls", str(path), *opts, "-f", "json"]
            duck = [sys.executable, "-c", f"import duckdb; print(duckdb.sql({query!r}).fetchall())"]
            got = json.loads(subprocess.run(llm, capture_output=True, text=True, check=True).stdout)
            import duckdb

            want = duckdb.sql(query).fetchall()
            key = opts[opts.index("--sort") + 1]
            assert [(c["trace_id"], c["span_id"], c[key]) for c in got["calls"]] == want, label
            ta, tb, ratios = alternate(("llmobs", llm), ("duckdb", duck), args.runs)
            print(
                f"| {rows:,} | {label} | {ta.median:.2f} s | {tb.median:.2f} s | "
                f"{statistics.median(ratios):.1f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
