"""Shared helpers of the eval tests: synthetic traces with a known truth, a judge stub
responder that grades by a marker in the response, an in-process CLI runner."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from llmobs_cli.cli.app import main
from openai_stub import Reply

START = datetime(2026, 3, 1, tzinfo=UTC)
ROUTES = {  # route: (storage sample_rate, true pass rate, has retrieved docs)
    "chat": (0.05, 0.8, False),
    "qa": (0.5, 0.6, True),
    "refunds": (1.0, 0.9, False),
}


def records(
    seed: int,
    *,
    per_route: int = 120,
    routes: dict[str, tuple[float, float, bool]] | None = None,
    start: datetime = START,
    days: float = 14.0,
    drop: dict[str, float] | None = None,
    drop_after: datetime | None = None,
    release_after: str | None = None,
) -> list[dict[str, Any]]:
    """Dump rows (already storage-sampled): ``per_route`` rows per route, GOOD/BAD answers.

    ``drop`` lowers a route's pass rate after ``drop_after`` (a release-tied regression
    when ``release_after`` names the new release).
    """
    rng = np.random.default_rng(seed)
    out = []
    for route, (sr, p, docs) in (routes or ROUTES).items():
        for i in range(per_route):
            ts = start + timedelta(seconds=float(rng.uniform(0, days * 86400)))
            late = drop_after is not None and ts >= drop_after
            p_here = p - (drop or {}).get(route, 0.0) if late else p
            good = bool(rng.random() < p_here)
            rec: dict[str, Any] = {
                "trace_id": f"{route}-{seed}-{i}-{rng.integers(1 << 40):x}",
                "timestamp": ts.isoformat(),
                "latency_ms": 100,
                "route": route,
                "model": "gpt-4o-mini",
                "release": (release_after if late and release_after else "v1"),
                "prompt": f"question {i} about {route}",
                "response": ("GOOD answer" if good else "BAD answer") + f" #{i}",
                "sample_rate": sr,
            }
            if docs:
                rec["retrieved"] = [{"id": "d1", "content": "doc text", "score": 0.8}]
            out.append(rec)
    return out


def write_jsonl(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    return path


_RESPONSE = re.compile(r"<response>\s*(.*?)\s*</response>", re.S)


def judged_response(request: dict[str, Any]) -> str:
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    m = _RESPONSE.search(user)
    return m.group(1) if m else ""


def marker_judge(request: dict[str, Any]) -> Reply:
    """Score 5 for a GOOD answer, 1 for a BAD one (on the 1..5 scale)."""
    good = judged_response(request).startswith("GOOD")
    return Reply(content=json.dumps({"reasoning": "marker", "score": 5 if good else 1}))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI in-process through its real entry point (error boundary included)."""
    out, err = io.StringIO(), io.StringIO()
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def truth(recs: list[dict[str, Any]]) -> pl.DataFrame:
    """Population pass rate per route estimated from the dump by HT weights (exact truth of
    the dump's own population is unknowable; tests use the generating probability)."""
    return (
        pl.DataFrame(recs)
        .group_by("route")
        .agg(pl.col("response").str.starts_with("GOOD").mean().alias("dump_rate"))
    )
