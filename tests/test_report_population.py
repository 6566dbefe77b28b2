"""The bar: a storage-sampled dump whose unsampled population is known.

A population of calls is made with known per-route behaviour, then sampled per route
at known rates (chat 2 %, search 20 %, refunds 100 %), written to Parquet and JSONL
without ``cost_usd``, and reported through the real reader. Calls, P50/P95/P99, cost
(from the shipped price table), cache hit rate, error and refusal rates must match the
population within sampling error (4 standard errors, so a correct estimator fails about
once in 16 000 checks; the seed is fixed anyway).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from json_diff import json_diffs
from llmobs_cli.core.ingest.convert import output_format, write_frame
from llmobs_cli.core.record.schema import SCHEMA
from llmobs_cli.core.report.engine import run_report

RATES = {"chat": 0.02, "search": 0.2, "refunds": 1.0}
SIZES = {"chat": 60_000, "search": 12_000, "refunds": 1_500}
#: (input, cached input, cache write, output) USD per million, as in configs/prices.yaml.
PRICES = {
    "gpt-4o-mini": (0.15, 0.075, 0.15, 0.60),
    "claude-3-5-haiku-20241022": (0.80, 0.08, 1.00, 4.00),
}
REFUSAL = "I'm sorry, but I can't assist with that request."
Z = 4.0


def make_population(seed: int = 2024) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    parts = []
    for i, (route, n) in enumerate(SIZES.items()):
        model = np.where(rng.random(n) < 0.6, "gpt-4o-mini", "claude-3-5-haiku-20241022")
        inp = rng.integers(100, 6000, n)
        cached = (inp * rng.uniform(0, 0.9, n) * (rng.random(n) < 0.4 + 0.2 * i)).astype(np.int64)
        cwrite = np.where(model == "claude-3-5-haiku-20241022", (inp - cached) // 4, 0)
        status = np.where(rng.random(n) < [0.01, 0.04, 0.10][i], "error", "ok")
        refusal = rng.random(n) < [0.03, 0.01, 0.08][i]
        parts.append(
            pl.DataFrame(
                {
                    "route": [route] * n,
                    "model": model,
                    "latency_ms": np.round(rng.lognormal(6.0 + 0.5 * i, 0.6 + 0.2 * i, n), 2),
                    "ttft_ms": np.round(rng.lognormal(5.0 + 0.3 * i, 0.5, n), 2),
                    "input_tokens": inp,
                    "cached_tokens": cached,
                    "cache_write_tokens": cwrite.astype(np.int64),
                    "output_tokens": rng.integers(5, 900, n),
                    "status": status,
                    "response": np.where(refusal, REFUSAL, "Here is what I found: it works."),
                    "u": rng.random(n),
                }
            )
        )
    pop = pl.concat(parts)
    n = pop.height
    t0 = datetime(2026, 5, 4, tzinfo=UTC)
    return pop.with_columns(
        pl.Series("trace_id", [f"t{i}" for i in range(n)]),
        pl.Series(
            "timestamp", [t0 + timedelta(seconds=int(s)) for s in rng.integers(0, 7 * 86400, n)]
        ),
        pl.col("route").replace_strict(RATES, return_dtype=pl.Float64).alias("sample_rate"),
    )


def true_cost(pop: pl.DataFrame) -> np.ndarray:
    out = np.zeros(pop.height)
    for model, (pi, pc, pw, po) in PRICES.items():
        m = (pop["model"] == model).to_numpy()
        inp = pop["input_tokens"].to_numpy()[m]
        c = pop["cached_tokens"].to_numpy()[m]
        w = pop["cache_write_tokens"].to_numpy()[m]
        o = pop["output_tokens"].to_numpy()[m]
        out[m] = ((inp - c - w) * pi + c * pc + w * pw + o * po) / 1e6
    return out


@pytest.fixture(scope="module")
def dumps(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, Path]]:
    pop = make_population()
    pop = pop.with_columns(pl.Series("_cost", true_cost(pop)))
    sample = pop.filter(pl.col("u") < pl.col("sample_rate"))
    dump = (
        sample.drop("u", "_cost")
        .with_columns(
            *(pl.lit(None, dtype=d).alias(c) for c, d in SCHEMA.items() if c not in sample.columns)
        )
        .select(list(SCHEMA))
        .cast(SCHEMA)
    )
    base = tmp_path_factory.mktemp("population")
    paths = {}
    for ext in ("parquet", "jsonl"):
        p = base / f"dump.{ext}"
        write_frame(dump, p, output_format(p))
        paths[ext] = p
    return pop, sample, paths


def _quantile_band(values: np.ndarray, q: float, n_eff: float) -> tuple[float, float]:
    """Population quantiles at q ± Z·sqrt(q(1−q)/n_eff): where a sample quantile lands."""
    d = Z * math.sqrt(q * (1 - q) / n_eff)
    lo = np.percentile(values, max(q - d, 0) * 100, method="inverted_cdf")
    hi = np.percentile(values, min(q + d, 1) * 100, method="inverted_cdf")
    return float(lo), float(hi)


def _rate_tol(p: float, n_eff: float) -> float:
    return Z * math.sqrt(max(p * (1 - p), 1e-4) / n_eff)


def _check(m: dict, pop: pl.DataFrame, sample: pl.DataFrame) -> None:
    n = pop.height
    w = 1 / sample["sample_rate"].to_numpy()
    n_eff = w.sum() ** 2 / (w**2).sum()
    # calls: HT total of 1; SE from the Poisson-sampling variance Σ (1−π)/π².
    se_calls = math.sqrt(float(np.sum((1 - 1 / w) * w**2)))
    assert abs(m["calls"] - n) <= Z * se_calls + 1e-9
    assert m["sampled"] == sample.height
    for col in ("latency_ms", "ttft_ms"):
        vals = pop[col].to_numpy()
        for q in (0.5, 0.95, 0.99):
            lo, hi = _quantile_band(vals, q, n_eff)
            got = m[col][f"p{q * 100:g}"]
            assert lo <= got <= hi, (col, q, lo, got, hi)
    cost = pop["_cost"].to_numpy()
    y = sample["_cost"].to_numpy()
    se_cost = math.sqrt(float(np.sum((1 - 1 / w) * (w * y) ** 2)))
    assert abs(m["cost_usd"] - cost.sum()) <= Z * se_cost + 1e-9
    assert m["cost_complete"] and m["unpriced_calls"] == 0
    hit = pop["cached_tokens"].sum() / pop["input_tokens"].sum()
    assert m["cache_hit_rate"] == pytest.approx(hit, abs=_rate_tol(hit, n_eff))
    err = float((pop["status"] == "error").mean())
    assert m["error_rate"] == pytest.approx(err, abs=_rate_tol(err, n_eff))
    ok = pop.filter(pl.col("status") == "ok")
    ref = float((ok["response"] == REFUSAL).mean())
    assert m["refusal_rate"] == pytest.approx(ref, abs=_rate_tol(ref, n_eff))


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_population_recovered_from_sampled_dump(fmt: str, dumps: tuple) -> None:
    pop, sample, paths = dumps
    rep = run_report([paths[fmt]], by=["route"]).report
    _check(rep.overall, pop, sample)
    assert {g["key"]["route"] for g in rep.groups} == set(RATES)
    for g in rep.groups:
        r = g["key"]["route"]
        _check(g, pop.filter(pl.col("route") == r), sample.filter(pl.col("route") == r))


def test_parquet_and_jsonl_agree_exactly(dumps: tuple) -> None:
    _, _, paths = dumps
    a = run_report([paths["parquet"]], by=["route", "model"]).report.as_dict()
    b = run_report([paths["jsonl"]], by=["route", "model"]).report.as_dict()
    assert a["overall"]["calls"] == pytest.approx(b["overall"]["calls"]) and b["groups"]
    for x, y in zip(a["groups"], b["groups"], strict=True):
        assert x["key"] == y["key"]
        for k in ("calls", "cost_usd", "error_rate", "refusal_rate", "cache_hit_rate"):
            assert x[k] == pytest.approx(y[k], rel=1e-9)
        assert x["latency_ms"] == pytest.approx(y["latency_ms"], rel=1e-9)


def test_unweighted_figures_would_fail_the_bar(dumps: tuple) -> None:
    """The test can fail: treating sampled rows as the population misses badly."""
    pop, sample, _ = dumps
    raw_p50 = np.percentile(sample["latency_ms"].to_numpy(), 50, method="inverted_cdf")
    w = 1 / sample["sample_rate"].to_numpy()
    lo, hi = _quantile_band(pop["latency_ms"].to_numpy(), 0.5, w.sum() ** 2 / (w**2).sum())
    assert not (lo <= raw_p50 <= hi)
    assert abs(sample.height - pop.height) > 10 * math.sqrt(pop.height)


def test_sessions_spilled_to_disk_give_the_same_report(monkeypatch, tmp_path) -> None:
    """With the session rows forced to disk after a few hundred (the path a dump with tens
    of millions of sessions takes), the report equals the all-in-memory one, sessions
    included, and no spill file is left behind."""
    import importlib
    import json

    # The package exports a function named ``merge``: fetch the module itself.
    merge_mod = importlib.import_module("llmobs_cli.core.partials.merge")

    sample = Path(__file__).parent.parent / "sample_traces" / "traces.parquet"

    from llmobs_cli.core.report.engine import build_report

    frame = pl.read_parquet(sample)

    def run(batch_rows: int = 1 << 20) -> dict:
        r = build_report(frame, by=("route", "model"), bucket="day", batch_rows=batch_rows)
        return json.loads(json.dumps(r.as_dict(), default=str))

    want = run()
    monkeypatch.setattr(merge_mod, "SPILL_ROWS", 200)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    spilled: list[int] = []
    real_to_disk = merge_mod.Merger._to_disk

    def counting(self, part):  # type: ignore[no-untyped-def]
        spilled.append(self._held(part))
        return real_to_disk(self, part)

    monkeypatch.setattr(merge_mod.Merger, "_to_disk", counting)
    got = run(batch_rows=40)
    assert spilled, "the session rows never went to disk"
    assert list(tmp_path.iterdir()) == []
    assert got["overall"]["sessions"] == pytest.approx(want["overall"]["sessions"], rel=1e-12)
    assert json_diffs(got, want) == []


def test_report_cli_with_sketch_bins_spilled_equals_in_memory(monkeypatch, tmp_path) -> None:
    """``llmobs report`` with the sketch bins and sessions forced to disk (bins reduced to
    each group's quantiles partition by partition) prints the JSON of the all-in-memory
    run, on a dump with null customers (their own group) and null routes (read as
    ``default``), a route of one call, and a route whose calls carry no TTFT: grouped,
    bucketed, and with p95 alert rules scoped to routes."""
    import importlib
    import json

    from cli_runner import run_cli

    merge_mod = importlib.import_module("llmobs_cli.core.partials.merge")
    stream_mod = importlib.import_module("llmobs_cli.core.ingest.readers.stream")
    sample = Path(__file__).parent.parent / "sample_traces" / "traces.parquet"
    i = pl.int_range(pl.len())
    df = pl.read_parquet(sample).with_columns(
        pl.when(i == 5)
        .then(pl.lit("solo"))
        .when(i % 41 == 1)
        .then(pl.lit("nottft"))
        .when(i % 37 == 0)
        .then(None)
        .otherwise(pl.col("route"))
        .alias("route"),
        pl.when(i % 53 == 0).then(None).otherwise(pl.col("customer_id")).alias("customer_id"),
    )
    df = df.with_columns(
        pl.when(pl.col("route") == "nottft")
        .then(None)
        .otherwise(pl.col("ttft_ms"))
        .alias("ttft_ms")
    )
    path = tmp_path / "edge.parquet"
    df.write_parquet(path)
    config = tmp_path / "alerts.yaml"
    config.write_text(
        "alerts:\n  - rule: 'route=chat:latency_ms.p95 > 1'\n"
        "  - rule: 'route=solo:latency_ms.p50 > 0'\n"
    )
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))
    spilled: list[str] = []
    real_to_disk = merge_mod.Merger._to_disk

    def counting(self, part):  # type: ignore[no-untyped-def]
        spilled.append(part)
        return real_to_disk(self, part)

    monkeypatch.setattr(merge_mod.Merger, "_to_disk", counting)
    cases = [
        ["--by", "route,model", "--bucket", "day"],
        ["--by", "customer_id"],
        ["--by", "model", "--config", str(config), "--fail-on", "route=nottft:ttft_ms.p95 > 0"],
    ]
    for args in cases:
        monkeypatch.setattr(merge_mod, "SPILL_ROWS", 500_000)
        want_code, want, err = run_cli("report", str(path), *args, "-f", "json")
        assert want_code in (0, 1), err
        spilled.clear()
        monkeypatch.setattr(merge_mod, "SPILL_ROWS", 300)
        monkeypatch.setattr(stream_mod, "MIN_BATCH", 200)
        code, got, err = run_cli("report", str(path), *args, "-f", "json", "--memory", "1MB")
        assert code == want_code, err
        assert {"q", "sess"} <= set(spilled), args
        assert list(spill_dir.iterdir()) == []
        a, b = json.loads(want), json.loads(got)
        assert json_diffs(a, b) == [], args
        if args[1] == "customer_id":  # a null key is a group of its own
            assert None in {g["key"]["customer_id"] for g in b["groups"]}
    # The figures themselves: the route of one call has that call's latency as every
    # percentile (clamped to its min/max), the route without TTFT none, and the alerts
    # scoped to routes fire on the reduced quantiles.
    row = df.filter(pl.col("route") == "solo").row(0, named=True)
    code, out, _ = run_cli("report", str(path), "--by", "route", "-f", "json", "--memory", "1MB")
    assert code == 0 and spilled
    groups = {g["key"]["route"]: g for g in json.loads(out)["groups"]}
    assert set(groups["solo"]["latency_ms"].values()) >= {row["latency_ms"]}
    assert groups["solo"]["latency_ms"]["p95"] == pytest.approx(row["latency_ms"], rel=1e-12)
    assert groups["nottft"]["ttft_ms"]["p50"] is None
    assert groups["nottft"]["latency_ms"]["p50"] is not None
    alerts = json.loads(got)["alerts"]
    assert {a["key"].get("route") for a in alerts} >= {"chat", "solo"}
