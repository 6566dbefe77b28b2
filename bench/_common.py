"""Shared benchmark helpers: data generation and alternating whole-process timing.

Every benchmark runs llmobs and its comparison as whole processes (interpreter start,
imports, reading the file, the work, printing), alternated A B A B … so that machine
drift hits both, and reports medians and the median of the per-pair ratios.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data"


@dataclass
class Timing:
    name: str
    wall: list[float]
    peak_rss_mb: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.wall)


def run_once(cmd: Sequence[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one whole-process run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run(list(cmd), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the max over all children so far: only a lower bound per run.
    return wall, max(before, after) / 1024


def alternate(
    a: tuple[str, Sequence[str]], b: tuple[str, Sequence[str]], runs: int = 5
) -> tuple[Timing, Timing, list[float]]:
    """Run A and B alternately after one warm-up each; per-pair ratios A/B."""
    run_once(a[1])
    run_once(b[1])
    ta, tb, ratios = Timing(a[0], [], []), Timing(b[0], [], []), []
    for _ in range(runs):
        wa, ma = run_once(a[1])
        wb, mb = run_once(b[1])
        ta.wall.append(wa)
        ta.peak_rss_mb.append(ma)
        tb.wall.append(wb)
        tb.peak_rss_mb.append(mb)
        ratios.append(wa / wb)
    return ta, tb, ratios


def print_row(label: str, ta: Timing, tb: Timing, ratios: list[float]) -> None:
    print(
        f"| {label} | {ta.median:.2f} s | {tb.median:.2f} s | {statistics.median(ratios):.2f}x "
        f"(min {min(ratios):.2f}, max {max(ratios):.2f}) |",
        flush=True,
    )


def generated(rows: int, seed: int = 7, days: int = 60) -> Path:
    """A generated canonical Parquet dump of ``rows`` rows (cached in bench/data)."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"traces_{rows}_{days}d.parquet"
    if not path.exists():
        subprocess.run(
            [
                sys.executable,
                "-m",
                "llmobs_cli",
                "generate",
                str(path),
                "--rows",
                str(rows),
                "--seed",
                str(seed),
                "--days",
                str(days),
            ],
            check=True,
        )
    return path
