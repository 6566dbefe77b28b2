"""Peak memory and wall time of report, drift and dashboard at 10M–100M rows.

The dumps are written by a fast numpy/Polars generator here (``llmobs generate`` makes
realistic conversations but is far too slow for 100M rows): canonical Parquet with every
column the report, drift and dashboard read, 60 days of timestamps, a few routes and
models, heavy-tailed latencies, sampling rates 1 or 0.1, sessions, and realistic text
lengths (prompts of ~1–4 kB, responses of ~0.3–2 kB) on a share of the rows (``--text``,
default 20 %; the rest carry short texts). Row groups of 128k rows are written one at a
time, so generating is bounded in memory too. Files land in ``bench/data/`` (git-ignored).

Dumps larger than 10M rows are not generated row by row: the 10M dump is written once and
copied into a hive tree (``copy=0`` … ``copy=k``), each copy with shifted timestamps and
its own trace and session ids (``replicate``), so a 100M-row dump costs nine streamed
copies of a file. Files land in ``bench/data/`` (git-ignored; may be a symlink).

Every command runs as a whole process; its wall time, CPU time (user + system, all
threads) and peak RSS come from the kernel's accounting of that one child (``os.wait4``).
DuckDB runs the report's weighted query (``bench/report.py``) on the same data in the same
run; commands alternate within each of ``--runs`` rounds and the table prints medians,
llmobs / DuckDB ratios of wall and CPU time, and the median 1-minute load average (on a
shared machine the CPU ratio is the steadier one). ``--baseline-src DIR`` also runs the
report from another checkout's ``src/`` (before/after in one run).

Usage: ``python bench/scale.py --rows 10000000 [30000000 100000000] [--runs 3]
[--commands report]`` (``--only-generate`` writes the dumps and stops); ``--dump PATH``
runs on an existing canonical dump instead (``llmobs generate --rows 20000000``'s, say:
span ids, customers and features, the duplicate check on).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
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


#: Rows written by the generator; larger dumps are copies of this one (``replicate``).
BASE_ROWS = 10_000_000


def replicate(rows: int, base_rows: int = BASE_ROWS, text_share: float = 0.2) -> Path:
    """A hive tree of ``rows // base_rows`` copies of the ``base_rows`` dump, cheap to make.

    Copy 0 is the base file itself (a hard link); copy ``k`` is the base with timestamps
    shifted by ``k`` × 60 days and ``-k`` appended to its trace and session ids, so no row
    and no session repeats another copy's (same shape, distinct calls). Each copy streams
    through a lazy Polars scan into ``sink_parquet`` (bounded memory, no row generated)."""
    if rows % base_rows:
        raise SystemExit(f"--rows {rows:,} is not a multiple of the base dump ({base_rows:,})")
    root = DATA / f"scale_v2_{rows}"
    if root.exists():
        return root
    base = generate(base_rows, text_share)
    tmp = root.with_name(root.name + ".part")
    tmp.mkdir(exist_ok=True)
    for k in range(rows // base_rows):
        out = tmp / f"copy={k}" / "data.parquet"
        if out.exists():
            continue
        out.parent.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        if k == 0:
            os.link(base, out)
        else:
            suffix = f"-{k}"
            (
                pl.scan_parquet(base)
                .with_columns(
                    pl.col("timestamp") + pl.duration(days=60 * k),
                    pl.col("trace_id") + suffix,
                    pl.col("session_id") + suffix,
                )
                .sink_parquet(out.with_suffix(".tmp"), compression="zstd", row_group_size=ROW_GROUP)
            )
            out.with_suffix(".tmp").rename(out)
        sys.stderr.write(f"{out}: {time.perf_counter() - t0:.0f} s\n")
    tmp.rename(root)
    return root


def dump(rows: int, text_share: float) -> Path:
    """The dump of ``rows`` rows: generated up to the base size, replicated beyond."""
    if rows > BASE_ROWS:
        return replicate(rows, BASE_ROWS, text_share)
    return generate(rows, text_share)


@dataclass
class Run:
    wall: float
    cpu: float  # user + system seconds of the child (all its threads)
    rss_mb: float


def measure(cmd: Sequence[str], env: dict[str, str] | None = None) -> Run:
    """Wall seconds, CPU seconds and peak RSS (MB) of one child process (the kernel's
    accounting of that child alone: ``os.wait4``)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        list(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"failed ({code}): {' '.join(cmd)}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def _rows_of(path: Path) -> int:
    """Rows of an existing dump (Parquet metadata only)."""
    files = [path] if path.is_file() else sorted(path.rglob("*.parquet"))
    if not files:
        raise SystemExit(f"{path}: no Parquet files")
    return sum(pq.ParquetFile(f).metadata.num_rows for f in files)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000_000])
    ap.add_argument("--runs", type=int, default=1, help="runs of each command (medians)")
    ap.add_argument("--text", type=float, default=0.2, help="share of rows with long texts")
    ap.add_argument("--only-generate", action="store_true")
    ap.add_argument(
        "--dump",
        type=Path,
        nargs="+",
        help="run on these existing canonical dumps (files or hive trees: `llmobs generate` "
        "or `llmobs convert` output, say) instead of generating; --rows is then ignored",
    )
    ap.add_argument(
        "--commands",
        nargs="+",
        default=["report", "drift", "dashboard"],
        help="llmobs commands to run (report, drift, dashboard) beside DuckDB",
    )
    ap.add_argument(
        "--baseline-src",
        type=Path,
        help="also run the report from this source tree (a checkout's src/), e.g. main",
    )
    args = ap.parse_args()
    from report import duckdb_sql

    llmobs = [sys.executable, "-m", "llmobs_cli"]
    print(
        "| rows | command | wall (s) | CPU (s) | peak RSS (MB) | wall / DuckDB | CPU / DuckDB |"
        " load |"
    )
    print("|---|---|---|---|---|---|---|---|")
    given = [(_rows_of(p), p) for p in args.dump or []]
    for rows, path in given or [(n, None) for n in args.rows]:
        if path is None:
            t0 = time.perf_counter()
            path = dump(rows, args.text)
            sys.stderr.write(f"{path}: {time.perf_counter() - t0:.0f} s to generate\n")
        if args.only_generate:
            continue
        sql = DATA / f"scale_{path.stem}.sql"
        sql.write_text(duckdb_sql(path, None))
        report = [*llmobs, "report", str(path), "--by", "route,model", "-f", "json"]
        cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "duckdb report query": (
                [
                    sys.executable,
                    "-c",
                    f"import duckdb; duckdb.sql(open({str(sql)!r}).read()).fetchall()",
                ],
                None,
            ),
        }
        if "report" in args.commands:
            cmds["report --by route,model"] = (report, None)
        if args.baseline_src is not None:
            env = dict(os.environ, PYTHONPATH=str(args.baseline_src.resolve()))
            cmds["report --by route,model (baseline)"] = (report, env)
        if "drift" in args.commands:
            cmds["drift"] = ([*llmobs, "drift", str(path), "-f", "json"], None)
        if "dashboard" in args.commands:
            out = DATA / "scale.html"
            cmds["dashboard"] = ([*llmobs, "dashboard", str(path), "-o", str(out)], None)
            # The report views and releases alone (the drift section is drift's own work).
            no_drift = [*llmobs, "dashboard", str(path), "--no-drift", "-o", str(out)]
            cmds["dashboard --no-drift"] = (no_drift, None)
        # Commands alternate within each round, so a change in the machine's load hits all.
        runs: dict[str, list[Run]] = {name: [] for name in cmds}
        loads: list[float] = []
        for _ in range(args.runs):
            for name, (cmd, env) in cmds.items():
                loads.append(os.getloadavg()[0])
                runs[name].append(measure(cmd, env))
        base = runs["duckdb report query"]
        base_wall = statistics.median(r.wall for r in base)
        base_cpu = statistics.median(r.cpu for r in base)
        load = statistics.median(loads)
        for name, rs in runs.items():
            wall = statistics.median(r.wall for r in rs)
            cpu = statistics.median(r.cpu for r in rs)
            rss = max(r.rss_mb for r in rs)
            print(
                f"| {rows:,} | {name} | {wall:.1f} | {cpu:.1f} | {rss:.0f} | "
                f"{wall / base_wall:.2f}x | {cpu / base_cpu:.2f}x | {load:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
