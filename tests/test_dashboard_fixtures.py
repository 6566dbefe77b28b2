"""Contract-shaped documents (report, eval, drift, releases) for the HTML tests.

Built from a seeded generator so that the renderers can be tested without the cores;
hostile strings sit in route, model, release, customer and category names.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

XSS_SCRIPT = "<script>window.__llmobs_pwned = 1</script>"
XSS_IMG = '<img src=x onerror="window.__llmobs_pwned = 2">'
XSS_SVG = "</script><svg onload=window.__llmobs_pwned=3>"
XSS_LINK = '<a href="javascript:window.__llmobs_pwned=4">click</a>'
HOSTILE = (XSS_SCRIPT, XSS_IMG, XSS_SVG, XSS_LINK)


def metrics(rng: np.random.Generator, scale: float = 1.0) -> dict[str, Any]:
    calls = float(rng.integers(200, 5000)) * scale
    p50 = float(rng.uniform(300, 900))
    inp = calls * float(rng.uniform(200, 900))
    cached = inp * float(rng.uniform(0.05, 0.5))
    cost = calls * float(rng.uniform(0.0005, 0.01))
    return {
        "sampled": int(calls / 10) + 1,
        "calls": calls,
        "n_eff": calls / 12,
        "latency_ms": {"p50": p50, "p95": p50 * 2.5, "p99": p50 * 4.0, "mean": p50 * 1.2},
        "ttft_ms": {"p50": p50 / 3, "p95": p50 / 1.5, "p99": p50},
        "input_tokens": inp,
        "output_tokens": calls * float(rng.uniform(100, 400)),
        "cached_tokens": cached,
        "cache_hit_rate": cached / inp,
        "cost_usd": cost,
        "cost_per_call_usd": cost / calls,
        "error_rate": float(rng.uniform(0, 0.03)),
        "refusal_rate": float(rng.uniform(0, 0.05)),
        "unpriced_calls": 0.0,
    }


def report_doc(
    field: str,
    values: list[str],
    *,
    days: int = 42,
    seed: int = 0,
    start: datetime = datetime(2026, 10, 1, tzinfo=UTC),
    unpriced: dict[str, float] | None = None,
) -> dict[str, Any]:
    """A ``report --by FIELD --bucket day`` document (flat buckets with a key)."""
    rng = np.random.default_rng(seed)
    groups = []
    for v in values:
        m = metrics(rng, 40)
        if unpriced and v in unpriced:
            m["unpriced_calls"] = unpriced[v]
        groups.append({"key": {field: v}, **m})
    buckets = []
    for d in range(days):
        t0 = start + timedelta(days=d)
        for v in values:
            buckets.append(
                {
                    "start": t0.isoformat(),
                    "end": (t0 + timedelta(days=1)).isoformat(),
                    "key": {field: v},
                    **metrics(rng),
                }
            )
    overall = metrics(rng, 200)
    if unpriced:
        overall["unpriced_calls"] = sum(unpriced.values())
    return {
        "window": {"start": start.isoformat(), "end": (start + timedelta(days=days)).isoformat()},
        "overall": overall,
        "groups": groups,
        "buckets": buckets,
        "alerts": [],
    }


def eval_doc(routes: list[str], *, days: int = 42, seed: int = 1) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    buckets, groups = [], []
    for ev in ("relevance", "faithfulness"):
        for r in routes:
            for d in range(days):
                s = float(rng.uniform(0.7, 0.9))
                buckets.append(
                    {
                        "start": (start + timedelta(days=d)).isoformat(),
                        "key": {"route": r},
                        "evaluator": ev,
                        "judged": int(rng.integers(5, 40)),
                        "score": s,
                        "ci_low": s - 0.08,
                        "ci_high": min(1.0, s + 0.08),
                    }
                )
            groups.append(
                {
                    "key": {"route": r},
                    "evaluator": ev,
                    "judged": 400,
                    "n_eff": 310.0,
                    "score": 0.8,
                    "ci_low": 0.77,
                    "ci_high": 0.83,
                }
            )
    cur = {
        "start": (start + timedelta(days=days - 7)).isoformat(),
        "end": (start + timedelta(days=days)).isoformat(),
    }
    regressions = [
        {
            "key": {"route": routes[0]},
            "evaluator": "relevance",
            "baseline_score": 0.82,
            "current_score": 0.61,
            "delta": -0.21,
            "p_value": 1e-6,
            "p_adjusted": 1e-5,
            "mde": 0.05,
            "regression": True,
            "current": cur,
        },
        {
            "key": {"route": routes[1]},
            "evaluator": "relevance",
            "baseline_score": 0.80,
            "current_score": 0.79,
            "delta": -0.01,
            "p_value": 0.4,
            "p_adjusted": 0.6,
            "mde": 0.04,
            "regression": False,
            "current": cur,
        },
    ]
    return {
        "groups": groups,
        "regressions": regressions,
        "buckets": buckets,
        "judge": {"calls": 800, "cached": 100, "failed": 2, "cost_usd": 0.42},
    }


def drift_doc(category: str = XSS_SVG) -> dict[str, Any]:
    return {
        "current": {
            "start": "2026-11-04T00:00:00+00:00",
            "end": "2026-11-11T00:00:00+00:00",
            "sampled": 2000,
            "calls": 90000,
        },
        "baseline": {
            "start": "2026-10-05T00:00:00+00:00",
            "end": "2026-11-04T00:00:00+00:00",
            "sampled": 8000,
            "calls": 360000,
        },
        "features": [
            {
                "feature": "response_length",
                "group": None,
                "kind": "numeric",
                "test": "ks",
                "statistic": 0.21,
                "p_value": 1e-12,
                "effect_size": 0.21,
                "drifted": True,
                "summary": "median 812 -> 1015 chars (+25%)",
                "distribution": {
                    "edges": [0, 200, 400, 800, 1600, 3200],
                    "baseline": [0.1, 0.3, 0.4, 0.15, 0.05],
                    "current": [0.05, 0.2, 0.4, 0.25, 0.1],
                },
            },
            {
                "feature": "language",
                "group": None,
                "kind": "categorical",
                "test": "chi2",
                "statistic": 88.0,
                "p_value": 1e-9,
                "effect_size": 0.12,
                "drifted": True,
                "distribution": {
                    "labels": ["en", "es", category],
                    "baseline": [900, 80, 20],
                    "current": [600, 300, 100],
                },
            },
            {
                "feature": "prompt_length",
                "group": None,
                "kind": "numeric",
                "test": "ks",
                "statistic": 0.01,
                "p_value": 0.7,
                "effect_size": 0.01,
                "drifted": False,
            },
        ],
        "drifted": ["response_length", "language"],
    }


def releases_doc(routes: list[str], release: str = XSS_IMG) -> dict[str, Any]:
    at = "2026-11-04T10:00:00+00:00"
    side_b = {
        "sampled": 300,
        "calls": 3000.0,
        "n_eff": 300.0,
        "latency_ms": {"p50": 500.0, "p95": 1200.0, "p99": 2000.0},
        "cost_per_call_usd": 0.002,
        "error_rate": 0.01,
    }
    side_a = {
        "sampled": 320,
        "calls": 3200.0,
        "n_eff": 320.0,
        "latency_ms": {"p50": 650.0, "p95": 1500.0, "p99": 2600.0},
        "cost_per_call_usd": 0.003,
        "error_rate": 0.02,
    }
    return {
        "window_days": 7.0,
        "changes": [
            {"kind": "release", "route": routes[0], "at": at, "before": "v1.2.0", "after": release},
            {
                "kind": "model",
                "route": routes[1],
                "at": "2026-10-20T00:00:00+00:00",
                "before": "gpt-4o",
                "after": XSS_SCRIPT,
            },
        ],
        "markers": [
            {
                "kind": "release",
                "at": at,
                "before": "v1.2.0",
                "after": release,
                "routes": [routes[0]],
            },
            {
                "kind": "model",
                "at": "2026-10-20T00:00:00+00:00",
                "before": "gpt-4o",
                "after": XSS_SCRIPT,
                "routes": [routes[1]],
            },
        ],
        "comparisons": [
            {
                "kind": "release",
                "route": routes[0],
                "at": at,
                "before": "v1.2.0",
                "after": release,
                "before_stats": side_b,
                "after_stats": side_a,
                "quality": [
                    {
                        "evaluator": "relevance",
                        "before": {
                            "judged": 200,
                            "n_eff": 180.0,
                            "score": 0.82,
                            "ci_low": 0.79,
                            "ci_high": 0.85,
                        },
                        "after": {
                            "judged": 190,
                            "n_eff": 170.0,
                            "score": 0.61,
                            "ci_low": 0.56,
                            "ci_high": 0.66,
                        },
                        "delta": -0.21,
                        "se": 0.03,
                        "p_value": 1e-9,
                    }
                ],
            }
        ],
    }


def dashboard_doc(hostile: bool = True) -> dict[str, Any]:
    routes = ["chat", "search_qa", "summarize", XSS_SCRIPT if hostile else "refunds"]
    models = ["gpt-4o", "claude-3-5-sonnet", XSS_IMG if hostile else "gemini-1.5-pro"]
    return {
        "title": "Dashboard " + (XSS_SCRIPT if hostile else "test"),
        "bucket": "day",
        "window": {"start": "2026-10-01T00:00:00+00:00", "end": "2026-11-12T00:00:00+00:00"},
        "sources": ["sample_traces/traces.parquet"],
        "reports": [
            {"id": "route", "label": "route", "report": report_doc("route", routes, seed=1)},
            {
                "id": "model",
                "label": "model",
                "report": report_doc("model", models, seed=2, unpriced={models[-1]: 120.0}),
            },
            {
                "id": "customer_id",
                "label": "customer",
                "report": report_doc(
                    "customer_id",
                    [f"cust-{i}" for i in range(15)] + ([XSS_LINK] if hostile else []),
                    seed=3,
                ),
            },
            {
                "id": "feature",
                "label": "feature",
                "report": report_doc(
                    "feature", ["qa", "draft", XSS_SVG if hostile else "tags"], seed=4
                ),
            },
        ],
        "releases": releases_doc(routes, XSS_IMG if hostile else "v2.0.0"),
        "quality": eval_doc(routes),
        "drift": drift_doc(XSS_SVG if hostile else "de"),
        "notes": [XSS_LINK] if hostile else [],
    }
