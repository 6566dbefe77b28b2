"""Benchmark: ``llmobs dashboard`` against ``llmobs report --bucket day`` on the same file.

Issue 7's goal: the dashboard of 10M rows over 60 days renders in under 2x the time of
``llmobs report --bucket day``. Both run as whole processes, alternated (see
``_common.py``); the dashboard is timed with its default drift section and with
``--no-drift``. Usage: ``python bench/dashboard.py [ROWS ...]`` (default 1000000).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _common import alternate, generated, print_row


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [1_000_000]
    llmobs = [sys.executable, "-m", "llmobs_cli"]
    out = Path(tempfile.mkdtemp(prefix="llmobs-bench-")) / "dashboard.html"
    print("| rows | dashboard | report --bucket day | ratio |")
    print("|---|---|---|---|")
    for rows in sizes:
        path = str(generated(rows, days=60))
        report = ("report", [*llmobs, "report", path, "--bucket", "day", "--format", "json"])
        for label, extra in (("dashboard", []), ("dashboard --no-drift", ["--no-drift"])):
            dash = (label, [*llmobs, "dashboard", path, "-o", str(out), "--exit-zero", *extra])
            ta, tb, ratios = alternate(dash, report, runs=3)
            print_row(f"{rows:,} ({label})", ta, tb, ratios)
            rss_a = statistics.median(ta.peak_rss_mb)
            rss_b = statistics.median(tb.peak_rss_mb)
            size = out.stat().st_size / 1e6
            print(f"|  | peak RSS {rss_a:.0f} MB | {rss_b:.0f} MB | file {size:.1f} MB |")


if __name__ == "__main__":
    main(sys.argv[1:])
