"""Peak memory and wall time of report, drift and dashboard at 10M–100M rows.

The dumps are written by a fast numpy/Polars generator here (``llmobs generate`` makes
realistic conversations but is far too slow for 100M rows): canonical Parquet with every
column the report, drift and dashboard read, 60 days of timestamps, a few routes and
models, heavy-tailed latencies, sampling rates 1 or 0.1, sessions, and realistic text
lengths (prompts of ~1–4 kB, responses of ~0.3–2 kB) on a share of the rows (``--text``,
default 20 %; the rest carry short texts). Row groups of 128k rows are written one at a
time, so generating is bounded in memory too. Files land in ``bench/data/`` (git-ignored).

Every command runs as a whole process; its wall time and peak RSS come from the kernel's
accounting of that one child (``os.wait4``). DuckDB runs the report's weighted query
(``bench/report.py``) on the same file in the same run, and the table prints llmobs /
DuckDB ratios.

Usage: ``python bench/scale.py --rows 10000000 [30000000 100000000] [--runs 1]``
(``--only-generate`` writes the dumps and stops).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _common import DATA

ROW_GROUP = 131_072
ROUTES = ["chat", "search", "summarize", "extract", "classify", "agent", "refunds", "support"]
MODELS = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-3-5-sonnet-20241022", "anthropic"),
    ("claude-3-5-haiku-20241022", "anthropic"),
    ("gemini-1.5-flash", "google"),
]
WORDS = [
    "the",
    "order",
    "refund",
    "account",
    "delivery",
    "invoice",
    "please",
    "thanks",
    "policy",
    "customer",
    "support",
    "product",
    "price",
    "shipping",
    "return",
    "warranty",
    "cancel",
    "update",
    "address",
    "payment",
    "card",
    "email",
    "password",
    "reset",
    "issue",
    "problem",
    "help",
    "question",
    "answer",
    "model",
    "latency",
    "token",
    "cost",
    "report",
]


def _text_pool(rng: np.random.Generator, n: int, median_chars: int) -> list[str]:
    words = np.array(WORDS)
    out = []
    for length in rng.lognormal(np.log(median_chars), 0.5, n).astype(int) + 20:
        k = max(3, length // 6)
        out.append(" ".join(words[rng.integers(0, len(words), k)])[:length])
    return out


def _chunk(rng: np.random.Generator, start: int, n: int, pools: dict, text_share: float):
    t0 = np.datetime64("2026-09-01T00:00:00", "us").astype(np.int64)
    ts = t0 + (rng.random(n) * 60 * 86_400e6).astype(np.int64)
    # A session is one conversation: its calls share a route and (mostly) a model.
    sess = rng.integers(0, max(1, n // 8), n) + start
    route = sess % len(ROUTES)
    m = np.where(rng.random(n) < 0.9, (sess // len(ROUTES)) % len(MODELS), rng.integers(0, 5, n))
    latency = np.round(rng.lognormal(6.3, 0.8, n) * (1 + (m == 2)), 1)
    slow = rng.random(n) < 0.01
    latency[slow] *= 20  # a heavy tail
    ttft = np.where(rng.random(n) < 0.7, np.round(latency * rng.uniform(0.05, 0.4, n), 1), np.nan)
    inp = rng.integers(50, 6000, n)
    outp = rng.integers(5, 1500, n)
    cached = np.where(rng.random(n) < 0.3, (inp * rng.random(n)).astype(np.int64), 0)
    status = np.where(rng.random(n) < 0.02, "error", "ok")
    rate = np.where(rng.random(n) < 0.5, 1.0, 0.1)
    long_text = rng.random(n) < text_share
    pi = rng.integers(0, len(pools["prompt_long"]), n)
    ri = rng.integers(0, len(pools["resp_long"]), n)
    si = rng.integers(0, len(pools["short"]), n)
    prompt = pl.Series(pools["prompt_long"]).gather(pi)
    resp = pl.Series(pools["resp_long"]).gather(ri)
    short = pl.Series(pools["short"]).gather(si)
    refuse = rng.random(n) < 0.03
    frame = pl.DataFrame(
        {
            "trace_id": pl.int_range(start, start + n, eager=True).cast(pl.String),
            "session_id": pl.Series(sess).cast(pl.String),
            "timestamp": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
            "latency_ms": latency,
            "ttft_ms": pl.Series(ttft).fill_nan(None),
            "route": pl.Series(np.array(ROUTES)[route]),
            "model": pl.Series(np.array([a for a, _ in MODELS])[m]),
            "provider": pl.Series(np.array([b for _, b in MODELS])[m]),
            "release": pl.Series(np.where(ts > t0 + 30 * 86_400e6, "v2", "v1")),
            "prompt": pl.Series(np.where(long_text, 1, 0)).cast(pl.Boolean),
            "response": resp,
            "finish_reason": pl.Series(np.where(refuse, "content_filter", "stop")),
            "input_tokens": inp,
            "output_tokens": outp,
            "cached_tokens": cached,
            "reasoning_tokens": pl.Series([None] * n, dtype=pl.Int64),
            "cache_write_tokens": pl.Series([None] * n, dtype=pl.Int64),
            "cost_usd": pl.Series([None] * n, dtype=pl.Float64),
            "retrieved": pl.Series(
                [None] * n,
                dtype=pl.List(
                    pl.Struct({"id": pl.String, "content": pl.String, "score": pl.Float64})
                ),
            ),
            "status": status,
            "sample_rate": rate,
        }
    ).with_columns(
        pl.when(pl.col("prompt")).then(prompt).otherwise(short).alias("prompt"),
        pl.when(pl.Series(long_text)).then(pl.col("response")).otherwise(short).alias("response"),
    )
    return frame


def generate(rows: int, text_share: float = 0.2, seed: int = 11) -> Path:
    """A canonical Parquet dump of ``rows`` rows in ``bench/data`` (reused when present)."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"scale_v2_{rows}.parquet"
    if path.exists():
        return path
    rng = np.random.default_rng(seed)
    pools = {
        "prompt_long": _text_pool(rng, 2000, 1800),
        "resp_long": _text_pool(rng, 2000, 700),
        "short": _text_pool(rng, 500, 60),
    }
    tmp = path.with_suffix(".part")
    writer: pq.ParquetWriter | None = None
    try:
        done = 0
        while done < rows:
            n = min(ROW_GROUP * 8, rows - done)
            table = _chunk(rng, done, n, pools, text_share).to_arrow()
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table, row_group_size=ROW_GROUP)
            done += n
    finally:
        if writer is not None:
            writer.close()
    tmp.rename(path)
    return path


def measure(cmd: Sequence[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one child process (the kernel's accounting)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if code not in (0, 1):
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}\n{err}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--text", type=float, default=0.2, help="share of rows with long texts")
    ap.add_argument("--only-generate", action="store_true")
    ap.add_argument(
        "--skip", nargs="*", default=[], help="commands to skip (report, drift, dashboard)"
    )
    args = ap.parse_args()
    from report import duckdb_sql

    llmobs = [sys.executable, "-m", "llmobs_cli"]
    print("| rows | command | wall (s) | peak RSS (MB) | wall / DuckDB report |")
    print("|---|---|---|---|---|")
    for rows in args.rows:
        t0 = time.perf_counter()
        path = generate(rows, args.text)
        sys.stderr.write(f"{path}: {time.perf_counter() - t0:.0f} s to generate\n")
        if args.only_generate:
            continue
        sql = DATA / f"scale_{rows}.sql"
        sql.write_text(duckdb_sql(path, None))
        cmds = {
            "duckdb report query": [
                sys.executable,
                "-c",
                f"import duckdb; duckdb.sql(open({str(sql)!r}).read()).fetchall()",
            ],
            "report --by route,model": [
                *llmobs,
                "report",
                str(path),
                "--by",
                "route,model",
                "-f",
                "json",
            ],
            "drift": [*llmobs, "drift", str(path), "-f", "json"],
            "dashboard": [*llmobs, "dashboard", str(path), "-o", str(DATA / "scale.html")],
            # The report views and releases alone (the drift section is drift's own peak).
            "dashboard --no-drift": [
                *llmobs,
                "dashboard",
                str(path),
                "--no-drift",
                "-o",
                str(DATA / "scale.html"),
            ],
        }
        results: dict[str, tuple[float, float]] = {}
        for name, cmd in cmds.items():
            if name.split()[0] in args.skip:
                continue
            runs = [measure(cmd) for _ in range(args.runs)]
            results[name] = (
                statistics.median(r[0] for r in runs),
                max(r[1] for r in runs),
            )
            base = results["duckdb report query"][0]
            wall, rss = results[name]
            print(
                f"| {rows:,} | {name} | {wall:.1f} | {rss:.0f} | {wall / base:.2f}x |", flush=True
            )


if __name__ == "__main__":
    main()
