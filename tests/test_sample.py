"""``llmobs sample``: stable whole-trace selection, re-weighting, text dropping, streaming."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmobs_cli.cli.app import main
from llmobs_cli.core.eval.plan import scalar_uniform
from llmobs_cli.core.ingest.storage_sampling import (
    SAMPLE_SALT,
    SamplePlan,
    build_plan,
    parse_rates,
    sample,
)
from llmobs_cli.core.record.config import Config, RouteConfig, SampleConfig
from llmobs_cli.core.record.schema import FIELDS, SCHEMA, TEXT_FIELDS
from llmobs_cli.errors import UsageError

T0 = datetime(2026, 1, 5, tzinfo=UTC)


def population(n_traces: int, seed: int = 7) -> pl.DataFrame:
    """A canonical dump: traces of 1-3 calls, route per trace, heavy-tailed tokens."""
    rng = np.random.default_rng(seed)
    routes = np.array(["chat", "search_qa", "refunds"])
    route_of = routes[rng.choice(3, n_traces, p=[0.7, 0.25, 0.05])]
    calls = rng.integers(1, 4, n_traces)
    trace_idx = np.repeat(np.arange(n_traces), calls)
    n = trace_idx.size
    base_rate = np.where(route_of[trace_idx] == "chat", 0.5, 1.0)
    return pl.DataFrame(
        {
            "trace_id": [f"t{i:07d}" for i in trace_idx],
            "span_id": [f"s{i:08d}" for i in range(n)],
            "timestamp": [T0 + timedelta(seconds=int(s)) for s in rng.integers(0, 86400 * 7, n)],
            "latency_ms": rng.lognormal(6.5, 0.6, n),
            "route": route_of[trace_idx],
            "model": rng.choice(["gpt-4o", "gpt-4o-mini"], n),
            "prompt": [f"question {i}" for i in range(n)],
            "response": [f"answer {i}" for i in range(n)],
            "input_tokens": rng.lognormal(6, 1, n).astype(np.int64),
            "output_tokens": rng.integers(5, 400, n),
            "sample_rate": base_rate,
        }
    ).with_columns(pl.col("timestamp").cast(SCHEMA["timestamp"]))


def canonical(df: pl.DataFrame) -> pl.DataFrame:
    missing = [pl.lit(None, dtype=SCHEMA[c]).alias(c) for c in FIELDS if c not in df.columns]
    return (
        df.with_columns(missing)
        .with_columns(
            pl.col("span_id").fill_null(pl.col("trace_id")), pl.col("status").fill_null("ok")
        )
        .select(FIELDS)
        .cast(SCHEMA)
    )  # type: ignore[arg-type]


def test_parse_rates_and_plan_precedence() -> None:
    assert parse_rates(["chat=0.01", "a=b=0.5"]) == {"chat": 0.01, "a=b": 0.5}
    for bad in ("chat", "chat=0", "chat=1.5", "chat=x", "=0.5"):
        with pytest.raises(UsageError):
            parse_rates([bad])
    cfg = Config(
        routes={
            "refunds": RouteConfig(stakes="high", keep_rate=0.2),
            "chat": RouteConfig(keep_rate=0.05, drop_text=True),
        },
        sample=SampleConfig(default_rate=0.5),
    )
    plan = build_plan(cfg)
    assert plan.rates == {"refunds": 1.0, "chat": 0.05} and plan.default_rate == 0.5
    assert plan.drop_text_routes == {"chat"} and not plan.drop_text
    plan = build_plan(cfg, {"refunds": 0.3, "search_qa": 0.1}, 0.25, True)
    assert plan.rates == {"refunds": 0.3, "chat": 0.05, "search_qa": 0.1}
    assert plan.default_rate == 0.25 and plan.drop_text
    with pytest.raises(UsageError):
        build_plan(cfg, None, 0.0)


@pytest.mark.parametrize("source", ["parquet", "jsonl"])
def test_whole_traces_stable_hash_and_weights(tmp_path: Path, source: str) -> None:
    pop = canonical(population(3000))
    src = tmp_path / f"in.{source}"
    if source == "parquet":
        pop.write_parquet(src)
    else:
        from llmobs_cli.core.ingest.convert import to_jsonl_bytes

        src.write_bytes(to_jsonl_bytes(pop))
    plan = SamplePlan(
        rates={"chat": 0.1, "search_qa": 0.5},
        default_rate=1.0,
        high_stakes={"refunds"},
        drop_text=True,
    )
    out = tmp_path / "out.parquet"
    res = sample([str(src)], out, plan)
    assert res.streamed
    got = pl.read_parquet(out)
    # independent selection: u from the scalar reference, rate by route
    rate = {"chat": 0.1, "search_qa": 0.5, "refunds": 1.0}
    keep = {
        t
        for t, r in pop.select("trace_id", "route").unique().iter_rows()
        if scalar_uniform(t, SAMPLE_SALT) < rate[r]
    }
    want = pop.filter(pl.col("trace_id").is_in(sorted(keep)))
    assert sorted(got["span_id"].to_list()) == sorted(want["span_id"].to_list())
    # weights multiplied by the keep rate
    joined = got.join(
        pop.select("span_id", pl.col("sample_rate").alias("sr0"), "route"), on="span_id"
    )
    expect = joined["sr0"] * joined["route"].replace_strict(rate, return_dtype=pl.Float64)
    assert np.allclose(joined["sample_rate"].to_numpy(), expect.to_numpy())
    # text dropped for routine routes only; numbers kept everywhere
    routine = got.filter(pl.col("route") != "refunds")
    assert all(routine[c].null_count() == routine.height for c in ("prompt", "response"))
    high = got.filter(pl.col("route") == "refunds")
    assert high.height and high["prompt"].null_count() == 0
    assert got["input_tokens"].null_count() == 0
    # summary
    by_route = {r["route"]: r for r in res.routes}
    assert by_route["chat"]["rows_out"] == got.filter(pl.col("route") == "chat").height
    assert res.rows_in == pop.height and res.rows_out == got.height


def test_mixed_route_trace_stays_whole(tmp_path: Path) -> None:
    ids = [f"m{i:05d}" for i in range(400)]
    df = canonical(
        pl.DataFrame(
            {
                "trace_id": ids * 2,
                "span_id": [f"a{i}" for i in range(400)] + [f"b{i}" for i in range(400)],
                "timestamp": [T0] * 800,
                "latency_ms": [10.0] * 800,
                "route": ["chat"] * 400 + ["search_qa"] * 400,
                "model": ["m"] * 800,
            }
        ).with_columns(pl.col("timestamp").cast(SCHEMA["timestamp"]))
    )
    src = tmp_path / "mixed.parquet"
    df.write_parquet(src)
    out = tmp_path / "o.parquet"
    sample([str(src)], out, SamplePlan(rates={"chat": 0.05, "search_qa": 0.4}))
    got = pl.read_parquet(out)
    counts = got.group_by("trace_id").len()
    assert (counts["len"] == 2).all()  # both calls of every kept trace
    want = {t for t in ids if scalar_uniform(t, SAMPLE_SALT) < 0.4}
    assert set(got["trace_id"]) == want
    assert np.allclose(got["sample_rate"].to_numpy(), 0.4)  # the trace's largest rate


@pytest.mark.slow
def test_weighted_figures_match_within_sampling_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bar: report on the sampled dump estimates the unsampled dump's totals."""
    pop = canonical(population(20000, seed=11))
    src = tmp_path / "full.parquet"
    pop.write_parquet(src)
    out = tmp_path / "sampled.parquet"
    rates = {"chat": 0.05, "search_qa": 0.2}
    code = _cli(
        [
            "sample",
            str(src),
            "-o",
            str(out),
            "--rate",
            "chat=0.05",
            "--rate",
            "search_qa=0.2",
            "--format",
            "json",
        ],
        capsys,
    )
    assert code == 0
    capsys.readouterr()
    reports = {}
    for name, path in (("full", src), ("sampled", out)):
        assert _cli(["report", str(path), "--format", "json"], capsys) == 0
        reports[name] = json.loads(capsys.readouterr().out)["overall"]
    # Poisson sampling of traces: Var(HT total) = Σ_traces (1-p)/p · y_t², y_t the trace's
    # weighted total; estimated here from the population itself (numpy, independent).
    w = (1.0 / pop["sample_rate"]).to_numpy()
    p = pop["route"].replace_strict({**rates, "refunds": 1.0}, return_dtype=pl.Float64).to_numpy()
    per_trace = (
        pl.DataFrame(
            {
                "t": pop["trace_id"],
                "p": p,
                "calls": w,
                "inp": w * pop["input_tokens"].to_numpy(),
            }
        )
        .group_by("t")
        .agg(pl.col("p").first(), pl.col("calls").sum(), pl.col("inp").sum())
    )
    pt = per_trace["p"].to_numpy()
    for metric, col in (("calls", "calls"), ("input_tokens", "inp")):
        truth = per_trace[col].sum()
        se = float(np.sqrt(((1 - pt) / pt * per_trace[col].to_numpy() ** 2).sum()))
        assert reports["full"][metric] == pytest.approx(truth, rel=1e-9)
        assert abs(reports["sampled"][metric] - truth) < 4 * se, (
            metric,
            reports["sampled"][metric],
            truth,
            se,
        )
        assert se > 0
    assert reports["sampled"]["sampled"] < 0.3 * reports["full"]["sampled"]


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_outputs_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pop = canonical(population(300))
    src = tmp_path / "in.parquet"
    pop.write_parquet(src)
    out = tmp_path / "out.jsonl"
    code = _cli(
        ["sample", str(src), "-o", str(out), "--default-rate", "0.5", "--format", "json"], capsys
    )
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows_out"] == len(out.read_text().splitlines())
    assert {r["route"] for r in doc["routes"]} == set(pop["route"])
    # the output is a valid canonical dump with the re-weighted rows
    back = pl.read_ndjson(out)
    assert set(back["sample_rate"].unique().to_list()) <= {0.25, 0.5}
    assert _cli(["sample", str(src), "-o", str(out), "--rate", "chat"], capsys) == 2
    assert "--rate: expected ROUTE=RATE" in capsys.readouterr().err
    assert _cli(["sample", str(src), "-o", str(tmp_path / "none" / "x.parquet")], capsys) == 2
    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text(
        "routes:\n  chat:\n    keep_rate: 0.1\n    drop_text: true\nsample:\n  default_rate: 0.5\n"
    )
    assert (
        _cli(
            [
                "sample",
                str(src),
                "-o",
                str(tmp_path / "c.parquet"),
                "--config",
                str(cfg),
                "--format",
                "json",
            ],
            capsys,
        )
        == 0
    )
    doc = json.loads(capsys.readouterr().out)
    rates = {r["route"]: (r["keep_rate"], r["text_dropped"]) for r in doc["routes"]}
    assert rates["chat"] == (0.1, True) and rates["search_qa"] == (0.5, False)
    kept = pl.read_parquet(tmp_path / "c.parquet")
    assert (
        kept.filter(pl.col("route") == "chat")["response"].null_count()
        == kept.filter(pl.col("route") == "chat").height
    )
    assert all(c in kept.columns for c in TEXT_FIELDS)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".jsonl.gz"])
def test_batched_jsonl_matches_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    from llmobs_cli.core.ingest.convert import to_jsonl_bytes
    from llmobs_cli.core.ingest.readers import load
    from llmobs_cli.errors import InputError

    pop = canonical(population(400))
    src = tmp_path / "in.jsonl"
    src.write_bytes(to_jsonl_bytes(pop))
    plan = SamplePlan(
        rates={"chat": 0.2, "search_qa": 0.5}, drop_text=True, high_stakes={"refunds"}
    )
    whole = sample([str(src)], tmp_path / f"whole{suffix}", plan)
    # chunks of about 20 KB: many batches, cut mid-file at newlines
    parts = sample([str(src)], tmp_path / f"parts{suffix}", plan, chunk_bytes=20_000)
    assert src.stat().st_size > 5 * 20_000
    a = load([str(tmp_path / f"whole{suffix}")]).frame.sort("span_id")
    b = load([str(tmp_path / f"parts{suffix}")]).frame.sort("span_id")
    assert a.equals(b) and a.height == whole.rows_out == parts.rows_out
    assert whole.routes == parts.routes
    # a bad line deep in the file is named by its line in the source, not in a batch
    lines = src.read_text().splitlines()
    lines[250] = '{"trace_id": "x", "timestamp": "nope", "model": "m", "latency_ms": 1}'
    src.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as exc:
        sample([str(src)], tmp_path / f"bad{suffix}", plan, chunk_bytes=20_000)
    assert exc.value.problems[0].startswith(f"{src}:251: timestamp: not an RFC 3339 time")
