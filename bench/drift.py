# ruff: noqa: E501  (the embedded Evidently script reads better unbroken)
"""Benchmark: ``llmobs drift`` (all default features) against the least any drift tool
must do on the same windows, in the same run.

Data (generated once into ``bench/data/``): a 2M-row dump = a 30-day baseline of 1M rows
followed by a 7-day current window of 1M rows with the generator's drift injected.

* **minimal**: read the windows with Polars (only the columns needed), unweighted
  ``scipy.stats.ks_2samp`` on the numeric features, ``chi2_contingency`` on two
  categoricals (finish_reason, route);
* **llmobs**: ``llmobs drift DUMP --format json`` (every default feature: text language
  and topics on the subsample, weighted design-based tests, BH);
* **evidently** (optional, if ``--evidently PYTHON`` names an interpreter with evidently
  installed): ``DataDriftPreset`` on the same numeric + categorical columns.

Each command runs ``--repeat`` times as a subprocess; medians and ratios are printed.
Usage: ``python bench/drift.py [--rows 2000000] [--repeat 3] [--evidently /tmp/evvenv/bin/python]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

DATA = Path(__file__).parent / "data"
START = datetime(2026, 1, 1, tzinfo=UTC)
CUT = START + timedelta(days=30)
NUMERIC = [
    "prompt_length",
    "input_tokens",
    "response_length",
    "output_tokens",
    "retrieval_top1_score",
    "retrieval_mean_score",
    "latency_ms",
    "cost_usd",
]
CATEGORICAL = ["finish_reason", "route"]


def make(rows: int) -> Path:
    out = DATA / f"drift_{rows}.parquet"
    if out.exists():
        return out
    import polars as pl

    from llmobs_cli.core.synth.generate import DriftSpec, generate

    DATA.mkdir(parents=True, exist_ok=True)
    half = rows // 2
    base = generate(half, seed=11, start=START, days=30)
    cur = generate(
        rows - half,
        seed=12,
        start=CUT,
        days=7,
        drift=DriftSpec(after=CUT, language={"en": 0.6, "es": 0.25, "de": 0.1, "fr": 0.05}),
    )
    pl.concat([base, cur]).write_parquet(out)
    return out


def minimal(path: str) -> None:
    """The least a drift tool does: read, unweighted KS and chi-square."""
    import numpy as np
    import polars as pl
    from scipy import stats

    score = pl.col("retrieved").list.eval(pl.element().struct.field("score"))
    frame = (
        pl.scan_parquet(path)
        .select(
            "timestamp",
            pl.col("prompt").str.len_chars().alias("prompt_length"),
            "input_tokens",
            pl.col("response").str.len_chars().alias("response_length"),
            "output_tokens",
            score.list.first().alias("retrieval_top1_score"),
            score.list.mean().alias("retrieval_mean_score"),
            "latency_ms",
            "cost_usd",
            "finish_reason",
            "route",
        )
        .collect()
    )
    now = frame["timestamp"].max()
    cut = now - timedelta(days=7)  # type: ignore[operator]
    base = frame.filter(
        (pl.col("timestamp") < cut) & (pl.col("timestamp") >= cut - timedelta(days=30))
    )
    cur = frame.filter(pl.col("timestamp") >= cut)
    out = {}
    for col in NUMERIC:
        a, b = base[col].drop_nulls().to_numpy(), cur[col].drop_nulls().to_numpy()
        if a.size and b.size:
            out[col] = bool(stats.ks_2samp(a, b).pvalue < 0.05)
    for col in CATEGORICAL:
        tab = (
            pl.concat(
                [
                    base.select(col).with_columns(pl.lit(0).alias("w")),
                    cur.select(col).with_columns(pl.lit(1).alias("w")),
                ]
            )
            .drop_nulls(col)
            .group_by(col, "w")
            .len()
            .pivot(on="w", index=col, values="len")
            .fill_null(0)
        )
        arr = np.asarray(tab.select(["0", "1"]).to_numpy(), dtype=float)
        out[col] = bool(stats.chi2_contingency(arr.T)[1] < 0.05)
    print(json.dumps(out))


EVIDENTLY = r"""
import json, sys, time
from datetime import timedelta
import polars as pl
path = sys.argv[1]
t0 = time.perf_counter()
score = pl.col("retrieved").list.eval(pl.element().struct.field("score"))
frame = pl.scan_parquet(path).select(
    "timestamp",
    pl.col("prompt").str.len_chars().alias("prompt_length"), "input_tokens",
    pl.col("response").str.len_chars().alias("response_length"), "output_tokens",
    score.list.first().alias("retrieval_top1_score"), score.list.mean().alias("retrieval_mean_score"),
    "latency_ms", "cost_usd", "finish_reason", "route").collect()
now = frame["timestamp"].max(); cut = now - timedelta(days=7)
base = frame.filter((pl.col("timestamp") < cut) & (pl.col("timestamp") >= cut - timedelta(days=30))).drop("timestamp").to_pandas()
cur = frame.filter(pl.col("timestamp") >= cut).drop("timestamp").to_pandas()
from evidently import Report, Dataset, DataDefinition
from evidently.presets import DataDriftPreset
num = ["prompt_length","input_tokens","response_length","output_tokens","retrieval_top1_score","retrieval_mean_score","latency_ms","cost_usd"]
cat = ["finish_reason","route"]
dd = DataDefinition(numerical_columns=num, categorical_columns=cat)
r = Report([DataDriftPreset()])
snap = r.run(Dataset.from_pandas(cur, data_definition=dd), Dataset.from_pandas(base, data_definition=dd))
d = snap.dict()
drifted = {}
for m in d["metrics"]:
    cfg = m.get("config", {})
    col = cfg.get("column")
    if col is not None:
        v = m.get("value")
        th = cfg.get("threshold")
        method = cfg.get("method")
        drifted[col] = {"value": v, "threshold": th, "method": method}
print(json.dumps({"seconds": time.perf_counter() - t0, "columns": drifted}, default=str))
"""


CPU: list[float] = []


def run(cmd: list[str]) -> tuple[float, str, int]:
    """Wall time, stdout and exit code; the child's CPU time (user + sys) goes to CPU,
    a load-independent measure on a shared machine."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall, p.stdout, p.returncode


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--evidently", default=None, help="python with evidently installed")
    ap.add_argument("--minimal", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.minimal:
        minimal(args.minimal)
        return
    path = str(make(args.rows))
    llmobs = [sys.executable, "-m", "llmobs_cli", "drift", path, "--format", "json"]
    mini = [sys.executable, __file__, "--minimal", path]
    t_l, t_m = [], []
    out_l = out_m = ""
    code = 0
    c_l, c_m = [], []
    for _ in range(args.repeat):
        s, out_m, _c = run(mini)
        t_m.append(s)
        c_m.append(CPU[-1])
        s, out_l, code = run(llmobs)
        t_l.append(s)
        c_l.append(CPU[-1])
    ml, mm = statistics.median(t_l), statistics.median(t_m)
    cl, cm = statistics.median(c_l), statistics.median(c_m)
    doc = json.loads(out_l)
    print(
        f"dump: {path} ({args.rows:,} rows); baseline {doc['baseline']['sampled']:,} rows, "
        f"current {doc['current']['sampled']:,} rows"
    )
    print(
        f"minimal (polars + scipy, unweighted): median {mm:.2f} s  runs {[round(x, 2) for x in t_m]}"
    )
    print(
        f"llmobs drift (all default features):  median {ml:.2f} s  runs {[round(x, 2) for x in t_l]}"
    )
    print(f"ratio llmobs / minimal: {ml / mm:.2f}x wall   (exit code {code})")
    print(f"CPU time (user+sys): minimal {cm:.1f} s, llmobs {cl:.1f} s, ratio {cl / cm:.2f}x")
    print(f"llmobs drifted: {doc['drifted']}")
    print(f"minimal flagged (p<0.05): {[k for k, v in json.loads(out_m).items() if v]}")
    if args.evidently:
        s, out_e, c = run([args.evidently, "-c", EVIDENTLY, path])
        if c == 0 and out_e.strip():
            ev = json.loads(out_e.strip().splitlines()[-1])
            print(f"evidently DataDriftPreset: {s:.2f} s wall ({ev['seconds']:.2f} s in-process)")
            for col, v in ev["columns"].items():
                print(f"  {col}: {v}")
        else:
            print(f"evidently failed (exit {c})")


if __name__ == "__main__":
    main()
