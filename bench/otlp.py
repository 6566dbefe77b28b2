"""Benchmark: OTLP/JSON → canonical Parquet vs Polars reading a same-size plain JSONL.

Generates (once, into bench/data/) an OTLP/JSON file of JSON lines as the Collector's file
exporter writes them — each line an ExportTraceServiceRequest of 40 traces, each trace an
agent root span, a tool span and two GenAI chat spans with content — and a canonical JSONL
file of the same size. Then times, each in a fresh process (best of ``--repeat``):

* A: ``llmobs convert big.otlp.jsonl -o out.parquet`` (parse, normalise, write);
* B: ``pl.read_ndjson(same-size.jsonl)`` (Polars' native multi-threaded reader).

and reports the throughput ratio A/B (the bar: ≥ 0.5) and the peak RSS of A.

Usage: python bench/otlp.py [--mb 1024] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(__file__).parent / "data"
T0 = 1_767_225_600_000_000_000


def kv(key: str, value: object) -> dict[str, object]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    if isinstance(value, list):
        return {
            "key": key,
            "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}},
        }
    return {"key": key, "value": {"stringValue": value}}


def request_line(rng: random.Random, n_traces: int, seq: int) -> str:
    spans = []
    for t in range(n_traces):
        trace = f"{rng.getrandbits(128):032x}"
        root = f"{rng.getrandbits(64):016x}"
        start = T0 + (seq * n_traces + t) * 1_000_000_000
        route = rng.choice(["support_agent", "search_qa", "chat", "refunds"])
        spans.append(
            {
                "traceId": trace,
                "spanId": root,
                "name": route,
                "kind": 1,
                "startTimeUnixNano": str(start),
                "endTimeUnixNano": str(start + 3_000_000_000),
                "attributes": [
                    kv("gen_ai.operation.name", "invoke_agent"),
                    kv("gen_ai.agent.name", route),
                ],
            }
        )
        for call in range(2):
            s = start + (call * 1_200_000_000) + 10_000_000
            q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 40)))
            a = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120)))
            model = rng.choice(["gpt-4o-mini", "gpt-4o", "claude-3-5-haiku"])
            spans.append(
                {
                    "traceId": trace,
                    "spanId": f"{rng.getrandbits(64):016x}",
                    "parentSpanId": root,
                    "name": f"chat {model}",
                    "kind": 3,
                    "startTimeUnixNano": str(s),
                    "endTimeUnixNano": str(s + rng.randint(200, 3000) * 1_000_000),
                    "attributes": [
                        kv("gen_ai.operation.name", "chat"),
                        kv("gen_ai.provider.name", "openai"),
                        kv("gen_ai.request.model", model),
                        kv("gen_ai.response.model", model),
                        kv("gen_ai.request.temperature", 0.2),
                        kv("gen_ai.request.max_tokens", 512),
                        kv("gen_ai.usage.input_tokens", rng.randint(50, 4000)),
                        kv("gen_ai.usage.output_tokens", rng.randint(10, 600)),
                        kv("gen_ai.response.finish_reasons", ["stop"]),
                        kv(
                            "gen_ai.input.messages",
                            json.dumps(
                                [
                                    {
                                        "role": "system",
                                        "parts": [
                                            {
                                                "type": "text",
                                                "content": "You are a helpful assistant.",
                                            }
                                        ],
                                    },
                                    {"role": "user", "parts": [{"type": "text", "content": q}]},
                                ]
                            ),
                        ),
                        kv(
                            "gen_ai.output.messages",
                            json.dumps(
                                [
                                    {
                                        "role": "assistant",
                                        "parts": [{"type": "text", "content": a}],
                                        "finish_reason": "stop",
                                    }
                                ]
                            ),
                        ),
                    ],
                    "status": {"code": 0},
                }
            )
        spans.append(
            {
                "traceId": trace,
                "spanId": f"{rng.getrandbits(64):016x}",
                "parentSpanId": root,
                "name": "execute_tool search",
                "kind": 1,
                "startTimeUnixNano": str(start + 900_000_000),
                "endTimeUnixNano": str(start + 1_100_000_000),
                "attributes": [
                    kv("gen_ai.operation.name", "execute_tool"),
                    kv("gen_ai.tool.name", "search"),
                ],
            }
        )
    doc = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [kv("service.name", "bench"), kv("service.version", "1.0.0")]
                },
                "scopeSpans": [
                    {"scope": {"name": "opentelemetry.instrumentation.openai_v2"}, "spans": spans}
                ],
            }
        ]
    }
    return json.dumps(doc, separators=(",", ":"))


WORDS = [
    "the",
    "order",
    "refund",
    "shipping",
    "price",
    "account",
    "login",
    "error",
    "answer",
    "question",
    "model",
    "token",
    "latency",
    "cache",
    "search",
    "document",
    "policy",
    "return",
    "warranty",
    "delivery",
    "invoice",
    "payment",
]


def make_otlp(path: Path, target: int) -> int:
    rng = random.Random(42)
    size = 0
    seq = 0
    with path.open("w") as fh:
        while size < target:
            line = request_line(rng, 40, seq) + "\n"
            fh.write(line)
            size += len(line.encode())
            seq += 1
    return size


def make_plain(path: Path, target: int, canonical_parquet: Path) -> int:
    """A canonical JSONL of ``target`` bytes (the converted records, repeated)."""
    import polars as pl

    sys.path.insert(0, str(Path(__file__).parents[1] / "src"))
    from llmobs_cli.core.ingest.convert import to_jsonl_bytes

    lines = to_jsonl_bytes(pl.read_parquet(canonical_parquet).head(20_000)).splitlines(
        keepends=True
    )
    size = 0
    with path.open("wb") as fh:
        while size < target:
            for line in lines:
                fh.write(line)
                size += len(line)
                if size >= target:
                    break
    return size


CPU: list[float] = []


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of a child process; its CPU seconds go to CPU."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime))
    return wall, max(r1.ru_maxrss, r0.ru_maxrss) * 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    DATA.mkdir(parents=True, exist_ok=True)
    target = args.mb * 1024 * 1024
    otlp = DATA / f"otlp_{args.mb}mb.jsonl"
    if not otlp.exists():
        t = time.perf_counter()
        make_otlp(otlp, target)
        print(f"generated {otlp} in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    out = DATA / f"otlp_{args.mb}mb.parquet"
    llmobs = str(Path(sys.executable).parent / "llmobs")
    conv = [timed([llmobs, "convert", str(otlp), "-o", str(out)]) for _ in range(args.repeat)]
    conv_cpu = min(CPU)
    CPU.clear()
    plain = DATA / f"plain_{args.mb}mb.jsonl"
    if not plain.exists():
        make_plain(plain, otlp.stat().st_size, out)
    read = [
        timed(
            [
                sys.executable,
                "-c",
                f"import polars as pl; print(pl.read_ndjson({str(plain)!r}).height)",
            ]
        )
        for _ in range(args.repeat)
    ]
    read_cpu = min(CPU)
    a_wall = min(w for w, _ in conv)
    b_wall = min(w for w, _ in read)
    a_mb, b_mb = otlp.stat().st_size / 2**20, plain.stat().st_size / 2**20
    import polars as pl

    rows = pl.scan_parquet(out).select(pl.len()).collect().item()
    print(
        json.dumps(
            {
                "otlp_mb": round(a_mb),
                "records": rows,
                "convert_s": round(a_wall, 1),
                "convert_mb_s": round(a_mb / a_wall, 1),
                "convert_peak_rss_mb": round(max(r for _, r in conv) / 2**20),
                "plain_jsonl_mb": round(b_mb),
                "polars_read_s": round(b_wall, 1),
                "polars_mb_s": round(b_mb / b_wall, 1),
                "polars_peak_rss_mb": round(max(r for _, r in read) / 2**20),
                "ratio": round((a_mb / a_wall) / (b_mb / b_wall), 3),
                # CPU seconds (user + sys, all threads/processes): less sensitive to a busy machine
                "convert_cpu_s": round(conv_cpu, 1),
                "polars_cpu_s": round(read_cpu, 1),
                "cpu_ratio": round((a_mb / conv_cpu) / (b_mb / read_cpu), 3),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
