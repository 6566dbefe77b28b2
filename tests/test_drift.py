"""``llmobs drift`` end to end: generated shifts are flagged, identical and re-sampled
windows are not, small/empty windows say "not enough data", missing features are skipped
with a note; the CLI's formats, outputs and exit codes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmobs_cli.cli.app import main
from llmobs_cli.core.drift import COLUMNS, run_drift
from llmobs_cli.core.record.config import DriftConfig, FeatureThreshold
from llmobs_cli.core.record.windows import EmptyWindowError
from llmobs_cli.core.synth.generate import DriftSpec, generate
from llmobs_cli.errors import UsageError
from llmobs_cli.render.drift import line

START = datetime(2026, 1, 1, tzinfo=UTC)
CUT = START + timedelta(days=30)
SHIFTS = ["response_length", "refusal_rate", "language", "retrieval_top1_score"]
CHECK = ["prompt_length", *SHIFTS]
SAMPLE = Path(__file__).parent.parent / "sample_traces" / "traces.parquet"


def _gen(seed: int, drift: bool = False, rows: int = 14_000) -> pl.DataFrame:
    spec = (
        DriftSpec(after=CUT, language={"en": 0.6, "es": 0.25, "de": 0.1, "fr": 0.05})
        if drift
        else None
    )
    return generate(rows, seed=seed, start=START, days=37, drift=spec)


@pytest.fixture(scope="module")
def drifted() -> pl.DataFrame:
    return _gen(1, drift=True)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _row(res: object, feature: str, group: dict[str, str] | None = None) -> dict:
    return next(r for r in res.features if r["feature"] == feature and r["group"] == group)  # type: ignore[attr-defined]


# --- detection and calibration on generated traffic ------------------------------------


@pytest.mark.slow
def test_injected_shifts_are_flagged_and_prompt_length_is_not(drifted: pl.DataFrame) -> None:
    res = run_drift(drifted, features=CHECK)
    flagged = set(res.drifted)
    assert set(SHIFTS) <= flagged, [line(r) for r in res.features]
    assert "prompt_length" not in flagged
    rl = _row(res, "response_length")
    assert rl["extras"]["median_ratio"] == pytest.approx(1.3, abs=0.12)
    assert "median" in rl["summary"] and "chars" in rl["summary"]
    assert (
        _row(res, "retrieval_top1_score")["current"]["median"]
        < _row(res, "retrieval_top1_score")["baseline"]["median"]
    )


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_identically_distributed_windows_flag_nothing(seed: int) -> None:
    res = run_drift(_gen(seed), features=[*CHECK, "output_tokens", "finish_reason"])
    assert res.drifted == [], [line(r) for r in res.features]
    # every overall test has the data to be decided (a thin route slice may not)
    assert all(r["status"] in ("ok", "small effect") for r in res.features if not r["slice"])
    assert any(r["slice"] for r in res.features)  # the route slices were tested too


@pytest.mark.slow
def test_a_storage_rate_change_is_absorbed_by_the_weights() -> None:
    """support_agent's and search_qa's rates double in the current window (half their
    baseline rows dropped, their rate halved there): the weighted tests stay quiet; the
    same rows unweighted see a significant change (the route mix of the rows moved)."""
    df = _gen(4, rows=16_000)
    keep = pl.Series(np.random.default_rng(0).random(df.height) < 0.5)
    old = pl.col("route").is_in(["support_agent", "search_qa"]) & (pl.col("timestamp") < CUT)
    df = (
        df.with_columns(keep.alias("_k"))
        .filter(~(old & ~pl.col("_k")))
        .drop("_k")
        .with_columns(
            pl.when(old).then(pl.col("sample_rate") * 0.5).otherwise(pl.col("sample_rate"))
        )
    )
    feats = ["prompt_length", "response_length", "language"]
    weighted = run_drift(df, features=feats)
    assert weighted.drifted == [], [line(r) for r in weighted.features]
    unweighted = run_drift(df.with_columns(pl.lit(1.0).alias("sample_rate")), features=feats)
    assert min(r["p_adjusted"] for r in unweighted.features) < 1e-3
    assert min(r["p_adjusted"] for r in weighted.features) > 0.01


# --- small, empty, missing ------------------------------------------------------------


def test_small_windows_say_not_enough_data() -> None:
    res = run_drift(_gen(5, drift=True, rows=400), features=CHECK)
    assert res.drifted == []
    assert all(r["status"] == "not enough data" for r in res.features)
    assert all(r["p_adjusted"] is None for r in res.features)


def test_empty_current_window_is_an_error_naming_it_and_the_data_span(
    drifted: pl.DataFrame,
) -> None:
    # Reading nothing is never "no drift": the window and the data's span are named.
    with pytest.raises(EmptyWindowError) as err:
        run_drift(
            drifted, current="2020-01-01..2020-01-08", features=["response_length", "language"]
        )
    msg = str(err.value)
    assert msg.startswith("--current 2020-01-01..2020-01-08: no call in the window")
    first = drifted["timestamp"].min().isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]
    assert f"spans {first} .. " in msg and f"({drifted.height:,} rows)" in msg


def test_missing_features_are_skipped_with_a_note(drifted: pl.DataFrame) -> None:
    df = drifted.drop("retrieved", "finish_reason")
    res = run_drift(df, features=["retrieval_top1_score", "finish_reason", "response_length"])
    assert {r["feature"] for r in res.features} == {"response_length"}
    assert any(n.startswith("retrieval_top1_score: skipped") for n in res.notes)
    assert any(n.startswith("finish_reason: skipped") for n in res.notes)
    nulls = drifted.with_columns(pl.lit(None, dtype=pl.Float64).alias("latency_ms"))
    res2 = run_drift(nulls, features=["latency_ms"])
    assert res2.features == [] and "no values" in res2.notes[0]


def test_effect_floor_and_thresholds_from_config(drifted: pl.DataFrame) -> None:
    cfg = DriftConfig(thresholds={"response_length": FeatureThreshold(effect=0.9)})
    row = _row(run_drift(drifted, features=["response_length"], config=cfg), "response_length")
    assert row["p_adjusted"] < 0.01 and not row["drifted"] and row["status"] == "small effect"
    assert row["threshold"] == 0.9


def test_unknown_feature_is_a_usage_error(drifted: pl.DataFrame) -> None:
    with pytest.raises(UsageError, match="--features: unknown feature 'nope'"):
        run_drift(drifted, features=["nope"])


# --- groups, custom features, topics, calibration --------------------------------------


def test_by_route_tests_each_group(drifted: pl.DataFrame) -> None:
    res = run_drift(drifted, features=["refusal_rate"], by="route")
    groups = [r["group"] for r in res.features]
    assert groups[0] is None
    assert {g["route"] for g in groups[1:]} == set(drifted["route"].unique())
    chat = _row(res, "refusal_rate", {"route": "chat"})
    assert (
        chat["sampled_baseline"]
        == drifted.filter(
            (pl.col("route") == "chat")
            & (pl.col("timestamp") < res.current.start)
            & (pl.col("timestamp") >= res.baseline.start)
            & (pl.col("status") == "ok")
            & pl.col("response").is_not_null()
        ).height
    )


def test_custom_fields_and_metadata_keys(drifted: pl.DataFrame) -> None:
    df = drifted.with_columns(
        pl.format('{{"tier": "{}", "score": {}}}', pl.col("route"), pl.col("latency_ms")).alias(
            "metadata"
        )
    )
    res = run_drift(df, features=["metadata.tier", "metadata.score", "model", "ttft_ms"])
    kinds = {r["feature"]: r["kind"] for r in res.features}
    assert kinds == {
        "metadata.tier": "categorical",
        "metadata.score": "numeric",
        "model": "categorical",
        "ttft_ms": "numeric",
    }


def test_topics_name_the_topic_that_grew(drifted: pl.DataFrame) -> None:
    res = run_drift(drifted, features=["topic"])
    row = _row(res, "topic")
    assert row["summary"].startswith("grew: '")
    assert row["drifted"]  # the language shift moves prompts into other-language topics
    dist = res.distributions["topic"]
    assert len(dist["categories"]) == len(dist["baseline"]) == len(dist["current"])
    assert sum(dist["baseline"]) == pytest.approx(1.0)


def test_precomputed_embeddings_are_used() -> None:
    r = np.random.default_rng(0)
    n = 3000
    ts = [START + timedelta(hours=float(h)) for h in r.uniform(0, 37 * 24, n)]
    late = np.array([t >= CUT for t in ts])
    centre = np.where(late & (r.random(n) < 0.5), 1, 0)
    emb = np.eye(4)[centre * 2] + r.normal(0, 0.05, (n, 4))
    df = pl.DataFrame(
        {
            "timestamp": ts,
            "sample_rate": [1.0] * n,
            "prompt": ["same text everywhere"] * n,
            "embedding": emb.tolist(),
        },
        schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
    )
    res = run_drift(df, features=["topic"])
    assert any("precomputed embedding" in n for n in res.notes)
    assert res.drifted == ["topic"]


def test_score_calibration_with_evals(drifted: pl.DataFrame) -> None:
    frame = drifted.filter(pl.col("retrieved").list.len() > 0)
    top1 = frame.select(
        "trace_id",
        "timestamp",
        pl.col("retrieved").list.first().struct.field("score").alias("x"),
    )
    r = np.random.default_rng(1)
    late = (top1["timestamp"] >= CUT).to_numpy()
    x = top1["x"].to_numpy()
    score = np.clip(np.where(late, 0.5 + 0.0 * x, 0.1 + 0.8 * x) + r.normal(0, 0.05, x.size), 0, 1)
    evals = pl.DataFrame(
        {"trace_id": top1["trace_id"], "evaluator": "relevance", "score": score, "weight": 1.0}
    )
    res = run_drift(drifted, features=["response_length"], evals=evals)
    row = _row(res, "retrieval_calibration.relevance")
    assert row["drifted"] and row["baseline"]["slope"] == pytest.approx(0.8, abs=0.1)


def test_columns_cover_the_default_features() -> None:
    for c in ("prompt", "messages", "response", "retrieved", "latency_ms", "sample_rate"):
        assert c in COLUMNS


# --- CLI --------------------------------------------------------------------------------


def test_cli_json_contract_and_exit_1_on_the_sample(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _err = run(
        ["drift", str(SAMPLE), "-f", "json", "--features", "retrieval_top1_score,prompt_length"],
        capsys,
    )
    assert code == 1
    doc = json.loads(out)
    assert set(doc) >= {"current", "baseline", "features", "drifted"}
    for w in ("current", "baseline"):
        assert set(doc[w]) >= {"start", "end", "sampled", "calls"}
    for r in doc["features"]:
        assert set(r) >= {
            "feature",
            "group",
            "kind",
            "test",
            "statistic",
            "p_value",
            "effect_size",
            "drifted",
        }
    assert doc["drifted"] == ["retrieval_top1_score"]


def test_cli_table_lines_and_outputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pq, js = tmp_path / "d.parquet", tmp_path / "d.json"
    code, out, _ = run(
        ["drift", str(SAMPLE), "--features", "retrieval_top1_score", "-o", str(pq)], capsys
    )
    assert code == 1
    assert "retrieval_top1_score" in out and "KS D=" in out and "DRIFT" in out
    saved = pl.read_parquet(pq)  # the overall test first, then one per route slice
    assert saved["drifted"][0] is True and saved["group"][0] is None
    assert saved.height > 1 and saved["group"][1:].null_count() == 0
    code, out, _ = run(
        [
            "drift",
            str(SAMPLE),
            "--features",
            "retrieval_top1_score",
            "-o",
            str(js),
            "-f",
            "markdown",
        ],
        capsys,
    )
    assert out.startswith("### llmobs drift") and json.loads(js.read_text())["drifted"]
    code, out, _ = run(
        ["drift", str(SAMPLE), "--features", "retrieval_top1_score", "-f", "csv"], capsys
    )
    assert out.splitlines()[0].startswith("feature,group,kind,test,statistic,p_value")


def test_cli_baseline_from_a_file_and_not_enough_data_is_exit_0(
    tmp_path: Path, drifted: pl.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "golden.parquet"
    cur = tmp_path / "now.parquet"
    drifted.filter(pl.col("timestamp") < CUT).write_parquet(base)
    drifted.filter(pl.col("timestamp") >= CUT).write_parquet(cur)
    code, out, _ = run(
        [
            "drift",
            str(cur),
            "--baseline",
            str(base),
            "--current",
            "7d",
            "--features",
            "response_length",
            "-f",
            "json",
        ],
        capsys,
    )
    doc = json.loads(out)
    assert code == 1 and doc["baseline"]["source"] == str(base)
    assert doc["drifted"] == ["response_length"]
    # A few rows in each window: not enough data to test, which is exit 0 ...
    few = tmp_path / "few.parquet"
    late = drifted.sort("timestamp").tail(30)
    early = drifted.sort("timestamp").filter(pl.col("timestamp") < CUT).tail(30)
    pl.concat([early, late]).write_parquet(few)
    code, out, _ = run(
        ["drift", str(few), "--current", "3d", "--features", "response_length"], capsys
    )
    assert code == 0 and "not enough data" in out
    # ... but a window with no row at all is exit 2 naming it (never a green "no drift").
    small = tmp_path / "small.parquet"
    drifted.sort("timestamp").tail(60).write_parquet(small)
    code, out, err = run(
        ["drift", str(small), "--current", "3d", "--features", "response_length"], capsys
    )
    assert code == 2 and out == ""
    assert err.startswith("llmobs: --baseline last_month: no call in the window [")
    assert "small.parquet spans " in err and "(60 rows)" in err and len(err.splitlines()) == 1


def test_cli_errors_are_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["drift", str(SAMPLE), "--features", "bogus"], capsys)
    assert code == 2 and err.startswith("llmobs: --features: unknown feature 'bogus'")
    code, _, err = run(["drift", str(SAMPLE), "--current", "yesterdayish"], capsys)
    assert code == 2 and "--current: expected a window name" in err
    code, _, err = run(["drift", str(SAMPLE), "-o", "x.txt"], capsys)
    assert code == 2 and "--output: unknown extension" in err


def test_numeric_distribution_for_charts_matches_numpy_histogram() -> None:
    from llmobs_cli.core.drift.engine import _histogram

    r = np.random.default_rng(0)
    x, w = r.normal(size=1000), r.random(1000)
    hist = _histogram(x, w, x + 0.1, w)
    edges = np.array(hist["edges"])
    ref, _ = np.histogram(np.clip(x, edges[0], edges[-1]), bins=edges, weights=w)
    assert np.array(hist["baseline"]) == pytest.approx(ref / ref.sum())
    assert len(hist["current"]) == len(edges) - 1


@pytest.mark.slow
def test_longer_answers_on_one_route_are_found_by_default_in_that_slice() -> None:
    """Answers 25 % longer on route chat only: diluted overall, found in the chat slice by
    the default drift (route slices), which also says where the change comes from."""
    df = _gen(6, rows=16_000)
    longer = (pl.col("route") == "chat") & (pl.col("timestamp") >= CUT)
    df = df.with_columns(
        pl.when(longer)
        .then(
            pl.concat_str(
                pl.col("response"),
                pl.col("response").str.slice(0, pl.col("response").str.len_chars() // 4),
            )
        )
        .otherwise(pl.col("response"))
        .alias("response")
    )
    res = run_drift(df, features=["response_length", "prompt_length"])
    fired = [r for r in res.features if r["drifted"]]
    assert fired and all(r["feature"] == "response_length" for r in fired), [
        line(r) for r in res.features
    ]
    assert any(r["group"] == {"route": "chat"} for r in fired)
    assert res.where and res.where[0]["slice"] == {"route": "chat"} and res.where[0]["drifted"]
    quiet = run_drift(df, features=["response_length"], slices="none")
    assert quiet.where == []
