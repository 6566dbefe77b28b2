"""Benchmark of ``llmobs eval`` against an OpenAI-compatible stub answering in 50 ms.

Goals (issue 4): 2,000 judgments at concurrency 8 within 1.3x of the ideal 12.5 s
(2,000 × 50 ms / 8); under 2 ms of llmobs CPU per judgment; a cached rerun of the 2,000
under 3 s.

The stub runs in its own process (its CPU is not counted). Each measurement is a whole
``llmobs`` process; the judging phase is isolated by subtracting a ``--dry-run`` of the
same command (interpreter start, imports, reading, planning), and CPU per judgment is
(CPU of the run − CPU of the dry run) / judgments. Runs are repeated and medians quoted.

    python bench/eval.py [--judgments 2000] [--delay 0.05] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data"


def make_traces(n: int) -> Path:
    import polars as pl

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"eval_{n}.jsonl"
    if path.exists():
        return path
    start = datetime(2026, 1, 1, tzinfo=UTC)
    routes = ["chat", "search_qa", "summarize", "refunds"]
    rows = [
        {
            "trace_id": f"bench-{i:06d}",
            "timestamp": (start + timedelta(minutes=i)).isoformat(),
            "latency_ms": 100,
            "route": routes[i % 4],
            "model": "gpt-4o-mini",
            "prompt": f"Question number {i}: how do I reset my password on the portal?",
            "response": f"Answer {i}: open Settings, choose Security, then Reset password.",
            "sample_rate": 1.0,
        }
        for i in range(n)
    ]
    pl.DataFrame(rows).write_ndjson(path)
    return path


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall s, CPU s of the child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


RAW = """
import asyncio, json, sys, time, openai
url, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
msgs = [{"role": "system", "content": "x" * 1400}, {"role": "user", "content": "y" * 400}]
async def go():
    c = openai.AsyncOpenAI(base_url=url, api_key="sk-bench", max_retries=0)
    sem = asyncio.Semaphore(conc)
    async def one():
        async with sem:
            await c.post("/chat/completions", cast_to=object,
                         body={"model": "m", "messages": msgs, "temperature": 0})
    await asyncio.gather(*(one() for _ in range(n)))
t = time.perf_counter(); c0 = time.process_time(); asyncio.run(go())
print(json.dumps([time.perf_counter() - t, time.process_time() - c0]))
"""


def raw_floor(url: str, n: int, conc: int) -> tuple[float, float]:
    """The bare openai client doing the same number of calls (no llmobs): the floor the
    machine allows, measured in the same conditions."""
    out = subprocess.run(
        [sys.executable, "-c", RAW, url, str(n), str(conc)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    wall, cpu = json.loads(out)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--judgments", type=int, default=2000)
    ap.add_argument("--delay", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    traces = make_traces(a.judgments)
    stub = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "openai_stub.py"), str(a.delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    url = stub.stdout.readline().strip()  # type: ignore[union-attr]
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench"}
    base = [
        sys.executable,
        "-m",
        "llmobs_cli",
        "eval",
        str(traces),
        "--base-url",
        url,
        "--evaluators",
        "relevance",
        "--budget",
        str(a.judgments * 10),
        "--concurrency",
        str(a.concurrency),
        "--no-progress",
        "--format",
        "json",
    ]
    ideal = a.judgments * a.delay / a.concurrency
    fresh, cached, dry, floor = [], [], [], []
    try:
        for _ in range(a.repeat):
            cache = Path(tempfile.mkdtemp(prefix="llmobs-bench-"))
            try:
                dry.append(run([*base, "--dry-run", "--cache-dir", str(cache)], env)[:2])
                w, c, out = run([*base, "--cache-dir", str(cache)], env)
                doc = json.loads(out)
                assert doc["judge"]["calls"] == a.judgments, doc["judge"]
                fresh.append((w, c))
                w2, c2, out2 = run([*base, "--cache-dir", str(cache)], env)
                assert json.loads(out2)["judge"]["cached"] == a.judgments
                cached.append((w2, c2))
                floor.append(raw_floor(url, a.judgments, a.concurrency))
            finally:
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        stub.terminate()
        stub.wait()

    def med(xs: list[tuple[float, float]], i: int) -> float:
        return statistics.median(x[i] for x in xs)

    judging = statistics.median(f[0] - d[0] for f, d in zip(fresh, dry, strict=True))
    cpu_per = statistics.median(
        (f[1] - d[1]) / a.judgments for f, d in zip(fresh, dry, strict=True)
    )
    print(
        f"judgments: {a.judgments}, stub delay {a.delay * 1000:.0f} ms, "
        f"concurrency {a.concurrency}, repeats {a.repeat}"
    )
    print(f"ideal judging time:          {ideal:.2f} s")
    print(f"whole run (median):          {med(fresh, 0):.2f} s wall, {med(fresh, 1):.2f} s CPU")
    print(f"dry run (start+read+plan):   {med(dry, 0):.2f} s wall, {med(dry, 1):.2f} s CPU")
    print(
        f"judging phase:               {judging:.2f} s = {judging / ideal:.2f}x ideal "
        f"(goal <= 1.3x)"
    )
    fw, fc = med(floor, 0), med(floor, 1)
    print(
        f"bare openai client, same calls: {fw:.2f} s = {fw / ideal:.2f}x ideal, "
        f"{fc / a.judgments * 1000:.2f} ms CPU per call (the machine's floor)"
    )
    print(
        f"judging phase vs bare client: {judging / fw:.2f}x; "
        f"CPU per judgment vs bare client: {cpu_per / (fc / a.judgments):.2f}x"
    )
    print(f"whole run vs ideal:          {med(fresh, 0) / ideal:.2f}x")
    print(f"llmobs CPU per judgment:     {cpu_per * 1000:.2f} ms (goal < 2 ms)")
    print(
        f"cached rerun (median):       {med(cached, 0):.2f} s wall, {med(cached, 1):.2f} s "
        f"CPU (goal < 3 s)"
    )


if __name__ == "__main__":
    main()
