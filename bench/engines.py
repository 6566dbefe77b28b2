"""The report's work on each engine and its speed-up from one core to two.

Makes a Hive-partitioned dump the way a user would (``llmobs generate`` then ``llmobs
convert --partition-by date``, cached under ``bench/data/``), then runs, each in a fresh
child process:

* ``local`` with Polars limited to 1 and to 2 threads;
* ``spark`` in ``local[1]`` and ``local[2]``;
* ``ray`` started with ``num_cpus=1`` and ``num_cpus=2``;

and for each prints

* the fixed **start-up** cost: starting the engine (Spark session / ``ray.init``) plus the
  first job, on the 2,400-row committed sample (Python workers start there);
* the **wall** time of the report's work on the dump (``report --by route,model``'s partial
  function and merge, duplicate span ids dropped as by default), the engine already up;
* the same with ``--keep-duplicates`` (no duplicate shuffle): the difference is what the
  local duplicate rule costs on that engine;
* the **partial function's own time per million rows**, measured inside the workers
  (each call times itself and adds its time to the partial frame, which the merge sums):
  wall time, and CPU time of the worker process (on a loaded machine the wall time
  includes the time the worker waited for a core; the CPU time is the work itself);
* the **speed-up** from 1 to 2 cores (wall at 1 / wall at 2).

Inside Spark and Ray workers Polars is limited to one thread (``POLARS_MAX_THREADS=1``), so
that "one core" means one core.

Usage: ``python bench/engines.py --rows 2000000 [--engines local,spark,ray] [--cores 1,2]``.
The figures depend on what else runs on the machine: say so when you quote them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from _common import DATA

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_traces" / "traces.parquet"
BY = ("route", "model")
TIMING = "bench"
GENERATE = ("--days", "30", "--seed", "3", "--start", "2026-01-01", "--no-progress")


def lake(rows: int) -> Path:
    """``llmobs generate`` → ``llmobs convert --partition-by date`` (reused when present)."""
    DATA.mkdir(exist_ok=True)
    out = DATA / f"lake_{rows}"
    if out.exists():
        return out
    src = DATA / f"gen_{rows}.parquet"
    llmobs = [sys.executable, "-m", "llmobs_cli"]
    if not src.exists():
        subprocess.run(
            [*llmobs, "generate", str(src), "--rows", str(rows), *GENERATE],
            check=True,
        )
    subprocess.run(
        [*llmobs, "convert", str(src), "-o", str(out), "--partition-by", "date", "--no-progress"],
        check=True,
    )
    return out


class Timed:
    """The report's partial function, timing itself: two extra partial rows carry the
    nanoseconds spent and the rows seen (the merge sums them like any partial)."""

    def __init__(self, plan: Any) -> None:
        self.plan = plan

    def __call__(self, frame: pl.DataFrame) -> pl.DataFrame:
        from llmobs_cli.core.partials.compute import METRIC, PART, N
        from llmobs_cli.core.report.engine import batch_partials

        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        out = batch_partials(frame, self.plan)
        spent, cpu = time.perf_counter_ns() - t0, time.process_time_ns() - c0
        if not frame.height:
            return out
        timing = pl.DataFrame(
            {
                PART: [TIMING] * 3,
                METRIC: ["ns", "cpu_ns", "rows"],
                N: [spent, cpu, frame.height],
            },
            schema={PART: out.schema[PART], METRIC: out.schema[METRIC], N: out.schema[N]},
        )
        return pl.concat([out, timing], how="diagonal_relaxed")


def _plan_and_columns() -> tuple[Any, list[str], tuple[str, ...]]:
    from llmobs_cli.core.ingest.readers import _with_dependencies
    from llmobs_cli.core.record.schema import REQUIRED
    from llmobs_cli.core.report import pricing
    from llmobs_cli.core.report.engine import REPORT_COLUMNS, plan_report

    plan = plan_report(by=BY, bucket=None, table=pricing.build_price_table(), refusal_patterns=None)
    columns = list(dict.fromkeys([*REPORT_COLUMNS, *BY]))
    wanted = sorted(_with_dependencies(columns) | {"trace_id", "span_id"})
    required = tuple(f for f in (*REQUIRED, "latency_ms") if f in wanted)
    return plan, wanted, required


def _timing(merged: pl.DataFrame | None) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, rows) the partial function spent, summed over calls."""
    from llmobs_cli.core.partials.compute import METRIC, PART, N

    if merged is None:
        return 0.0, 0.0, 0
    t = merged.filter(pl.col(PART) == TIMING)
    got = dict(zip(t[METRIC].to_list(), t[N].to_list(), strict=True))
    return got.get("ns", 0) / 1e9, got.get("cpu_ns", 0) / 1e9, int(got.get("rows", 0))


def _local_run(paths: list[str], fn: Timed, wanted: list[str], keep: bool) -> pl.DataFrame | None:
    from llmobs_cli.core.ingest.readers import ReadOptions
    from llmobs_cli.core.ingest.readers.stream import Stream
    from llmobs_cli.core.partials.merge import Merger

    merger = Merger()
    opts = ReadOptions(keep_duplicates=keep)
    stream = Stream(paths, columns=wanted, on_error="skip", options=opts)
    for batch in stream:
        merger.add(fn(batch))
    return merger.result()


def child(engine: str, cores: int, data: Path) -> dict[str, Any]:
    """One engine at ``cores`` cores, in this (fresh) process."""
    import warnings

    from llmobs_cli.core.engines import EngineSettings
    from llmobs_cli.core.engines.run import merged_partials

    warnings.simplefilter("ignore")
    plan, wanted, required = _plan_and_columns()
    fn = Timed(plan)
    t0 = time.perf_counter()
    settings = EngineSettings(engine, spark_master=f"local[{cores}]")
    if engine == "spark":
        from llmobs_cli.core.engines.spark import session

        session(settings)
    elif engine == "ray":
        import ray

        ray.init(
            num_cpus=cores, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
        ray.shutdown = lambda *a, **k: None  # one local Ray for every run of this child

    def run(paths: list[str], keep: bool) -> tuple[float, pl.DataFrame | None]:
        t = time.perf_counter()
        if engine == "local":
            merged = _local_run(paths, fn, wanted, keep)
        else:
            got = merged_partials(
                settings,
                paths,
                wanted,
                fn,
                since=None,
                until=None,
                required=required,
                on_error="skip",
                keep_duplicates=keep,
            )
            merged = got.merged
        return time.perf_counter() - t, merged

    run([str(SAMPLE)], False)
    startup = time.perf_counter() - t0
    wall, merged = run([str(data)], False)
    fn_s, fn_cpu, rows = _timing(merged)
    keep_wall, _ = run([str(data)], True)
    return {
        "engine": engine,
        "cores": cores,
        "startup_s": startup,
        "wall_s": wall,
        "keep_wall_s": keep_wall,
        "fn_s_per_m": fn_s * 1e6 / max(rows, 1),
        "fn_cpu_s_per_m": fn_cpu * 1e6 / max(rows, 1),
        "rows": rows,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--engines", default="local,spark,ray")
    ap.add_argument("--cores", default="1,2")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("-c", "--child-cores", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        out = child(args.child, args.child_cores, lake(args.rows))
        print("RESULT " + json.dumps(out))
        return
    data = lake(args.rows)
    wanted = [e.strip() for e in args.engines.split(",") if e.strip()]
    engines = [
        e
        for e in wanted
        if e == "local" or importlib.util.find_spec("pyspark" if e == "spark" else e)
    ]
    cores = [int(c) for c in args.cores.split(",")]
    print(
        f"{args.rows:,} rows in {sum(1 for d in data.iterdir() if d.is_dir())} date partitions; "
        f"{os.cpu_count()} CPUs on this machine, load average "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at the start\n"
    )
    print(
        "| engine | cores | start-up (s) | wall (s) | wall, --keep-duplicates (s) "
        "| partial fn, wall / CPU (s per M rows) | speed-up 1→2 (wall) |"
    )
    print("|---|---|---|---|---|---|---|")
    for e in engines:
        walls: dict[int, float] = {}
        for c in cores:
            env = dict(os.environ)
            env["POLARS_MAX_THREADS"] = str(c if e == "local" else 1)
            proc = subprocess.run(
                [sys.executable, __file__, "--rows", str(args.rows), "--child", e, "-c", str(c)],
                capture_output=True,
                text=True,
                env=env,
            )
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                errors = [x for x in proc.stderr.splitlines() if not x.startswith(("\t", " "))]
                sys.stderr.write("\n".join(errors[-40:]) + "\n")
                raise SystemExit(f"{e} at {c} core(s) failed ({proc.returncode})")
            r = json.loads(line[-1][len("RESULT ") :])
            walls[c] = r["wall_s"]
            speed = f"{walls[cores[0]] / walls[c]:.2f}×" if c != cores[0] else ""
            print(
                f"| {e} | {c} | {r['startup_s']:.1f} | {r['wall_s']:.1f} | "
                f"{r['keep_wall_s']:.1f} | {r['fn_s_per_m']:.2f} / {r['fn_cpu_s_per_m']:.2f} | "
                f"{speed} |",
                flush=True,
            )
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
