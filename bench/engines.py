"""Wall time and peak memory of ``llmobs report`` on each engine: local, Spark, Ray.

Writes a Hive-partitioned (``date=YYYY-MM-DD/``) canonical Parquet dump of ``--rows`` rows
(with ``bench/scale.py``'s generator) under ``bench/data/`` and times, as whole processes:

* ``report --by route,model`` on each engine installed (local, spark in ``local[*]``, ray
  local), checking that the JSON figures agree;
* each engine's fixed start-up cost: the same report on the 2,400-row committed sample;
* the partial function alone on one million rows in this process — the work every engine
  runs per batch, so the rest of an engine's time is its scheduling and I/O.

Usage: ``python bench/engines.py --rows 10000000 [--runs 1]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from _common import DATA
from scale import generate, measure

ROOT = Path(__file__).resolve().parents[1]


def lake(rows: int) -> Path:
    out = DATA / f"engines_{rows}"
    if out.exists():
        return out
    src = generate(rows)
    tmp = out.with_suffix(".part")
    lf = pl.scan_parquet(src).with_columns(pl.col("timestamp").dt.date().alias("date"))
    for (day,) in lf.select("date").unique().sort("date").collect().iter_rows():
        part = tmp / f"date={day}"
        part.mkdir(parents=True, exist_ok=True)
        lf.filter(pl.col("date") == day).drop("date").sink_parquet(part / "part-0.parquet")
    tmp.rename(out)
    return out


def partial_fn_seconds_per_million(path: Path) -> float:
    from llmobs_cli.core.record.schema import normalize
    from llmobs_cli.core.report import pricing
    from llmobs_cli.core.report.engine import REPORT_COLUMNS, batch_partials, plan_report

    frame = pl.scan_parquet(path / "**/*.parquet", hive_partitioning=False).head(1_000_000)
    frame = frame.select([c for c in REPORT_COLUMNS if c in frame.collect_schema()]).collect()
    frame = normalize(frame).frame.drop("_row", strict=False)
    plan = plan_report(
        by=("route", "model"), bucket=None, table=pricing.build_price_table(), refusal_patterns=None
    )
    t0 = time.perf_counter()
    batch_partials(frame, plan)
    return (time.perf_counter() - t0) * 1_000_000 / frame.height


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--only-data", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only_data:
        lake(args.rows)
        return
    # The dump is written by a child process: a child forked from a process that held the
    # generator's memory would report that memory as its own peak RSS.
    subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--only-data"], check=True)
    data = lake(args.rows)
    engines = ["local"] + [
        e for e in ("spark", "ray") if importlib.util.find_spec("pyspark" if e == "spark" else e)
    ]
    llmobs = [sys.executable, "-m", "llmobs_cli", "report"]
    sample = str(ROOT / "sample_traces" / "traces.parquet")
    print(f"{args.rows:,} rows, {sum(1 for _ in data.iterdir())} date partitions\n")
    print("| engine | report wall (s) | peak RSS, driver (MB) | start-up on 2,400 rows (s) |")
    print("|---|---|---|---|")
    docs = {}
    for e in engines:
        walls, rss = [], []
        for _ in range(args.runs):
            w, m = measure([*llmobs, str(data), "--by", "route,model", "--engine", e])
            walls.append(w)
            rss.append(m)
        start, _ = measure([*llmobs, sample, "--engine", e])
        out = subprocess.run(
            [*llmobs, str(data), "--by", "route,model", "--engine", e, "--format", "json"],
            capture_output=True,
            text=True,
            check=True,
        )
        docs[e] = json.loads(out.stdout)
        print(f"| {e} | {min(walls):.1f} | {max(rss):.0f} | {start:.1f} |")
    base = docs["local"]["overall"]
    for e, d in docs.items():
        o = d["overall"]
        rel = abs(o["cost_usd"] - base["cost_usd"]) / max(base["cost_usd"], 1e-12)
        print(
            f"\n{e}: calls {o['calls']:,.1f}, cost ${o['cost_usd']:,.4f} (relative "
            f"difference from local {rel:.1e}), p99 {o['latency_ms']['p99']:.1f} ms"
        )
    print(
        f"\npartial function alone: {partial_fn_seconds_per_million(data):.2f} s per million "
        "rows (one core, in process)"
    )


if __name__ == "__main__":
    main()
