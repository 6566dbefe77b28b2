"""The synthetic trace generator: determinism, canonical schema, rates, injected truths, CLI.

Every statistical expectation is recomputed here from first principles (the Zipf law, the
drift spec, the price list) with numpy/scipy on the generated rows, and compared with a
tolerance derived from the sample size, not with numbers copied from a run.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal
from scipy import stats

from llmobs_cli.core.ingest.convert import write_frame
from llmobs_cli.core.ingest.readers import load
from llmobs_cli.core.record.schema import SCHEMA, normalize
from llmobs_cli.core.synth import generate as gen
from llmobs_cli.core.synth.catalog import ROUTE_SPECS
from llmobs_cli.core.synth.generate import (
    DEFAULT_START,
    LANGUAGES,
    MODELS,
    ROUTE_RATES,
    ROUTES,
    DriftSpec,
    RegressionSpec,
    generate,
)
from llmobs_cli.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
AFTER = DEFAULT_START + timedelta(days=35)  # the last week of the default 42 days
DRIFT_LANG = {"en": 0.5, "es": 0.3, "de": 0.1, "fr": 0.1}


def labels(frame: pl.DataFrame) -> pl.DataFrame:
    """The generator's ground truth from ``metadata`` plus handy derived columns."""
    return frame.with_columns(
        pl.col("metadata").str.json_path_match("$.quality").alias("quality"),
        pl.col("metadata").str.json_path_match("$.lang").alias("lang"),
        pl.col("metadata").str.json_path_match("$.topic").alias("topic"),
        (pl.col("timestamp") >= AFTER).alias("post"),
        pl.col("response").str.len_chars().alias("rlen"),
        pl.col("prompt").str.len_chars().alias("plen"),
        pl.col("retrieved").list.first().struct.field("score").alias("top1"),
    )


@pytest.fixture(scope="module")
def base() -> pl.DataFrame:
    return generate(25_000, 11)


@pytest.fixture(scope="module")
def drifted() -> pl.DataFrame:
    return generate(
        25_000,
        11,
        drift=DriftSpec(after=AFTER, language=DRIFT_LANG),
        regression=RegressionSpec(after=AFTER, route="search_qa", release="v2.0.0", severity=0.4),
    )


# ---- determinism and shape ---------------------------------------------------------------


def test_same_seed_same_frame_other_seed_other_frame() -> None:
    a = generate(2_000, 3)
    assert_frame_equal(a, generate(2_000, 3))
    b = generate(2_000, 4)
    assert a.height == b.height == 2_000
    assert not a.equals(b)
    assert a["trace_id"].is_in(b["trace_id"].implode()).sum() == 0


def test_schema_is_canonical_and_normalize_finds_nothing(base: pl.DataFrame) -> None:
    assert base.schema == pl.Schema(SCHEMA)
    norm = normalize(base)
    assert norm.problems.height == 0, norm.problems.head()
    assert_frame_equal(norm.frame.drop("_row"), base)
    assert base["trace_id"].n_unique() == base.height
    assert base["timestamp"].is_sorted()
    ts = base["timestamp"]
    assert ts.min() >= DEFAULT_START and ts.max() < DEFAULT_START + timedelta(days=42)
    assert set(base["environment"].unique()) == {"production"}
    # params and metadata are JSON objects on every row.
    for col in ("params", "metadata"):
        decoded = base[col].str.json_decode(infer_schema_length=None)
        assert isinstance(decoded.dtype, pl.Struct) and decoded.null_count() == 0


def _semantic(frame: pl.DataFrame) -> pl.DataFrame:
    """JSON object columns compared as JSON values (the JSONL reader keeps each object's
    JSON text but may re-serialise it: key order, ``1.0`` written as ``1``)."""

    def num(v: object) -> object:
        if isinstance(v, bool) or v is None:
            return v
        if isinstance(v, (int, float)):
            return float(v)
        if isinstance(v, dict):
            return {k: num(x) for k, x in v.items()}
        if isinstance(v, list):
            return [num(x) for x in v]
        return v

    def canon(text: str | None) -> str | None:
        if text is None:
            return None
        return json.dumps(num(json.loads(text)), sort_keys=True)

    return frame.with_columns(
        pl.col(c).map_elements(canon, return_dtype=pl.String) for c in ("params", "metadata")
    )


@pytest.mark.parametrize("name", ["t.parquet", "t.jsonl", "t.jsonl.gz", "t.jsonl.zst"])
def test_round_trip_through_write_frame_and_load(tmp_path: Path, name: str) -> None:
    frame = generate(1_500, 5, drift=DriftSpec(after=AFTER), regression=RegressionSpec(after=AFTER))
    out = tmp_path / name
    write_frame(frame, out, "parquet" if name.endswith(".parquet") else "jsonl")
    back = load([out]).frame
    if name.endswith(".parquet"):
        assert_frame_equal(back, frame)
    else:
        assert_frame_equal(_semantic(back), _semantic(frame))


def test_rows_zero_and_bad_arguments() -> None:
    empty = generate(0, 1)
    assert empty.height == 0 and empty.schema == pl.Schema(SCHEMA)
    with pytest.raises(UsageError, match="rows must be >= 0"):
        generate(-1)
    with pytest.raises(UsageError, match="seed must be >= 0"):
        generate(10, -5)
    with pytest.raises(UsageError, match="days must be >= 1"):
        generate(10, days=0)
    with pytest.raises(UsageError, match="unknown route 'nope'"):
        generate(10, route_rates={"nope": 0.5})
    with pytest.raises(UsageError, match=r"sample rate must be in \(0, 1\]"):
        generate(10, route_rates={"chat": 0})
    with pytest.raises(UsageError, match="--regression-route: unknown route"):
        generate(10, regression=RegressionSpec(after=AFTER, route="nope"))
    with pytest.raises(UsageError, match="unknown language 'xx'"):
        generate(10, drift=DriftSpec(after=AFTER, language={"xx": 1.0}))
    with pytest.raises(UsageError, match="--drift-kinds: unknown drift kind 'colour'"):
        generate(10, drift=DriftSpec(after=AFTER), drift_kinds=["colour"])


# ---- rates, population, sessions ---------------------------------------------------------


def zipf_population() -> np.ndarray:
    """The documented law, computed independently: volume ∝ 1 / rank^s over the routes."""
    ranks = np.arange(1, len(ROUTES) + 1, dtype=float)
    w = ranks**-gen.ZIPF_EXPONENT
    return w / w.sum()


@pytest.mark.parametrize("overrides", [None, {"chat": 0.02, "refunds": 0.5}])
def test_sample_rates_and_implied_population_shares(overrides: dict[str, float] | None) -> None:
    frame = generate(20_000, 8, route_rates=overrides)
    rates = {**ROUTE_RATES, **(overrides or {})}
    per = frame.group_by("route").agg(
        pl.len().alias("n"),
        pl.col("sample_rate").unique().alias("rates"),
        (1 / pl.col("sample_rate")).sum().alias("pop"),
    )
    got = {r["route"]: r for r in per.to_dicts()}
    assert set(got) == set(ROUTES)
    for r in ROUTES:
        assert got[r]["rates"] == [rates[r]]
    pop = np.array([got[r]["pop"] for r in ROUTES])
    expected = zipf_population()
    # Row counts per route are multinomial: compare the implied population shares with
    # tolerances from the rows' binomial standard errors, mapped through 1/rate.
    n = np.array([got[r]["n"] for r in ROUTES], dtype=float)
    row_p = expected * np.array([rates[r] for r in ROUTES])
    row_p /= row_p.sum()
    z = (n - frame.height * row_p) / np.sqrt(frame.height * row_p * (1 - row_p))
    assert np.all(np.abs(z) < 4.5), z
    share = pop / pop.sum()
    assert np.allclose(share, expected, rtol=0.12), (share, expected)
    assert share.argmax() == ROUTES.index("chat") and share.argmin() == ROUTES.index("refunds")


def test_sessions_customers_and_users(base: pl.DataFrame) -> None:
    sess = base.group_by("session_id").agg(
        pl.len().alias("calls"),
        pl.col("route").n_unique().alias("routes"),
        pl.col("customer_id").n_unique().alias("customers"),
        pl.col("user_id").n_unique().alias("users"),
        pl.col("route").first(),
    )
    assert (
        (sess["routes"] == 1).all()
        and (sess["customers"] == 1).all()
        and (sess["users"] == 1).all()
    )
    # Chat conversations have several calls on average; most sessions elsewhere are short.
    mean_calls = dict(sess.group_by("route").agg(pl.col("calls").mean()).iter_rows())
    assert mean_calls["chat"] > 2.5 and mean_calls["chat"] > mean_calls["search_qa"]
    # Customers are Zipf-skewed: the top customer has far more sessions than the median one.
    per_customer = sess.join(base.select("session_id", "customer_id").unique(), on="session_id")[
        "customer_id"
    ].value_counts()["count"]
    assert per_customer.max() > 10 * per_customer.median()
    assert base["user_id"].str.starts_with("user-").all()
    assert base["feature"].null_count() == 0


# ---- models, tokens, cost, latency -------------------------------------------------------


def test_token_identities_and_providers(base: pl.DataFrame) -> None:
    ok = base.filter(pl.col("status") == "ok")
    assert (ok["cached_tokens"].fill_null(0) <= ok["input_tokens"]).all()
    assert (
        ok["cached_tokens"].fill_null(0) + ok["cache_write_tokens"].fill_null(0)
        <= ok["input_tokens"]
    ).all()
    assert (ok["reasoning_tokens"].fill_null(0) <= ok["output_tokens"]).all()
    # Output fits in the requested max tokens, and uses all of them exactly when cut off.
    params = ok["params"].str.json_decode(infer_schema_length=None)
    cap = params.struct.field("max_tokens").fill_null(params.struct.field("max_completion_tokens"))
    assert cap.null_count() == 0 and (ok["output_tokens"] <= cap).all()
    assert ((ok["output_tokens"] == cap) == (ok["finish_reason"] == "length")).all()
    provider = {m.name: m.provider for m in MODELS}
    pairs = dict(base.select("model", "provider").unique().iter_rows())
    assert pairs == {m: provider[m] for m in pairs} and len(pairs) >= 6
    by_model = ok.group_by("model").agg(
        (pl.col("reasoning_tokens").fill_null(0) > 0).mean().alias("reasoning"),
        pl.col("cache_write_tokens").is_not_null().mean().alias("writes"),
        (pl.col("cached_tokens").fill_null(0) > 0).mean().alias("hits"),
        pl.col("input_tokens").median().alias("input"),
    )
    rows = {r["model"]: r for r in by_model.to_dicts()}
    assert rows["o3-mini"]["reasoning"] > 0.99
    assert all(rows[m]["reasoning"] == 0 for m in rows if m != "o3-mini")
    assert all((rows[m]["writes"] == 1.0) == (provider[m] == "anthropic") for m in rows)
    assert rows["claude-3-5-sonnet-20241022"]["hits"] > 0.2
    assert all(200 < rows[m]["input"] < 10_000 for m in rows)
    # OpenAI caches in 128-token blocks, from 1024 input tokens on.
    oa = ok.filter((pl.col("provider") == "openai") & (pl.col("cached_tokens") > 0))
    assert (
        oa.height > 0
        and (oa["cached_tokens"] % 128 == 0).all()
        and (oa["input_tokens"] >= 1024).all()
    )


def test_cost_only_on_refunds_and_equal_to_discounted_list_price(base: pl.DataFrame) -> None:
    has = base.filter(pl.col("cost_usd").is_not_null())
    assert set(has["route"].unique()) == {"refunds"}
    assert base.filter(pl.col("cost_usd").is_null()).height > base.height / 2
    price = {m.name: (m.price_in, m.price_cached, m.price_cache_write, m.price_out) for m in MODELS}
    p = np.array([price[m] for m in has["model"]])
    cached = has["cached_tokens"].fill_null(0).to_numpy()
    write = has["cache_write_tokens"].fill_null(0).to_numpy()
    fresh = has["input_tokens"].to_numpy() - cached - write
    expected = (
        0.9
        * (
            fresh * p[:, 0]
            + cached * p[:, 1]
            + write * p[:, 2]
            + has["output_tokens"].to_numpy() * p[:, 3]
        )
        / 1e6
    )
    assert np.allclose(has["cost_usd"].to_numpy(), expected, rtol=1e-6, atol=1e-8)


def test_latency_heavy_tail_ttft_and_timeouts(base: pl.DataFrame) -> None:
    ok = base.filter(pl.col("status") == "ok")
    lat = ok["latency_ms"].to_numpy()
    assert (ok["ttft_ms"].to_numpy() <= lat).all()
    # Heavy right tail: log-latency is right-skewed... at least lognormal-like, p99 ≫ p50.
    assert np.percentile(lat, 99) > 4 * np.percentile(lat, 50)
    # Latency grows with output tokens (same model, same route).
    sub = ok.filter((pl.col("model") == "gpt-4o") & (pl.col("route") == "support_agent"))
    rho = stats.spearmanr(sub["output_tokens"], sub["latency_ms"]).statistic
    assert rho > 0.3
    errors = base.filter(pl.col("status") == "error")
    assert errors.height > 0 and errors["error"].null_count() == 0
    assert errors["response"].null_count() == errors.height
    timeouts = base.filter(pl.col("error") == "timeout")
    assert timeouts.height > 0
    cap = {r: ROUTE_SPECS[r].timeout_ms for r in ROUTES}
    assert all(row["latency_ms"] == cap[row["route"]] for row in timeouts.iter_rows(named=True))
    assert set(base.filter(pl.col("status") == "ok")["error"].unique().to_list()) == {None}
    # end_time is consistent with timestamp + latency.
    d = (base["end_time"] - base["timestamp"]).dt.total_microseconds() / 1000
    assert np.allclose(d.to_numpy(), base["latency_ms"].to_numpy(), atol=0.01)


# ---- content: languages, refusals, RAG, references ----------------------------------------


def test_languages_are_real_and_detectable(base: pl.DataFrame) -> None:
    import py3langid

    lab = labels(base)
    shares = dict(lab.group_by("lang").len().with_columns(pl.col("len") / lab.height).iter_rows())
    assert set(shares) == set(LANGUAGES) and shares["en"] > 0.75
    sample = lab.filter(pl.col("status") == "ok").sample(400, seed=1)
    for col in ("prompt", "response"):
        rows = [(t, lang) for t, lang in zip(sample[col], sample["lang"], strict=True) if t]
        hit = np.mean([py3langid.classify(t)[0] == lang for t, lang in rows])
        assert hit > 0.95, (col, hit)
    # Non-English rows are detected as such too (not just the English majority).
    other = lab.filter((pl.col("lang") != "en") & (pl.col("status") == "ok")).head(200)
    assert (
        np.mean(
            [
                py3langid.classify(t)[0] == g
                for t, g in zip(other["prompt"], other["lang"], strict=True)
            ]
        )
        > 0.9
    )


def test_refusals_and_finish_reasons(base: pl.DataFrame) -> None:
    from llmobs_cli.core.report.refusals import is_refusal

    lab = labels(base)
    ref = lab.filter(pl.col("quality") == "refusal")
    ok = lab.filter(pl.col("status") == "ok")
    rate = ref.height / ok.height
    assert 0.005 < rate < 0.05
    # The shipped detector recognises (nearly all) of them and no good answer.
    assert np.mean([is_refusal(t) for t in ref["response"]]) > 0.8
    good = lab.filter(pl.col("quality") == "good").head(2_000)
    assert not any(is_refusal(t) for t in good["response"])
    fr = dict(ok.group_by("finish_reason").len().iter_rows())
    assert fr["stop"] > 0.9 * ok.height and fr["length"] > 0 and fr["content_filter"] > 0
    assert (lab.filter(pl.col("quality") == "truncated")["finish_reason"] == "length").all()
    assert (lab.filter(pl.col("quality") == "filtered")["response"] == "").all()


def test_retrieval_citations_and_references(base: pl.DataFrame) -> None:
    lab = labels(base)
    rag = {"search_qa", "support_agent"}
    has_docs = lab.filter(pl.col("retrieved").is_not_null())
    assert set(has_docs["route"].unique()) == rag
    assert lab.filter(pl.col("route").is_in(list(rag)))["retrieved"].null_count() == 0
    scores = has_docs["retrieved"].list.eval(pl.element().struct.field("score"))
    assert scores.list.eval(pl.element().diff().drop_nulls() <= 0).list.all().all()  # best first
    assert has_docs["retrieved"].list.len().min() >= 2
    # Citations name a retrieved document on (almost) every good RAG answer that cites.
    good = lab.filter((pl.col("quality") == "good") & pl.col("route").is_in(list(rag)))
    cited = good.with_columns(pl.col("response").str.extract(r"\[(doc-\d+)\]", 1).alias("cite"))
    share_cited = cited["cite"].is_not_null().mean()
    assert share_cited > 0.5
    c = cited.filter(pl.col("cite").is_not_null())
    in_docs = c.select(
        pl.col("retrieved").list.eval(pl.element().struct.field("id")).list.contains(pl.col("cite"))
    ).to_series()
    assert in_docs.all()
    # References on search_qa and refunds only; a good answer states the reference's facts.
    with_ref = lab.filter(pl.col("reference").is_not_null())
    assert set(with_ref["route"].unique()) == {"search_qa", "refunds"}
    g = with_ref.filter(pl.col("quality") == "good")
    assert (
        g.select(pl.col("response").str.contains(pl.col("reference"), literal=True))
        .to_series()
        .all()
    )
    w = with_ref.filter(pl.col("quality") == "wrong")
    assert w.height > 0

    def number(text: str) -> set[str]:
        return set(re.findall(r"\d[\d.,]*\d|\d", text))

    # A wrong answer contradicts the reference's number (the judge and a numeric check see it).
    assert all(
        not number(ref) <= number(resp)
        for ref, resp in zip(w["reference"], w["response"], strict=True)
    )


# ---- drift and regression ------------------------------------------------------------------


def test_rows_before_the_injection_are_untouched(base: pl.DataFrame, drifted: pl.DataFrame) -> None:
    before = pl.col("timestamp") < AFTER
    assert_frame_equal(base.filter(before), drifted.filter(before))
    assert not base.filter(~before).equals(drifted.filter(~before))


def test_drift_is_present_after_and_absent_before(
    base: pl.DataFrame, drifted: pl.DataFrame
) -> None:
    spec = DriftSpec(after=AFTER, language=DRIFT_LANG)
    lab = labels(drifted).filter(pl.col("route") != "search_qa")  # leave the regression aside
    pre, post = lab.filter(~pl.col("post")), lab.filter(pl.col("post"))
    # Longer answers: the mean length of good answers grows by the multiplier.
    good = pl.col("quality") == "good"
    ratio = post.filter(good)["rlen"].mean() / pre.filter(good)["rlen"].mean()
    assert abs(ratio - spec.response_length) < 0.08, ratio
    # The same comparison without drift shows no change (absent before / without injection).
    lab0 = labels(base).filter(pl.col("route") != "search_qa")
    r0 = (
        lab0.filter(pl.col("post") & good)["rlen"].mean()
        / lab0.filter(~pl.col("post") & good)["rlen"].mean()
    )
    assert abs(r0 - 1) < 0.05, r0
    # More refusals: +refusal_rate (absolute), within 4 binomial standard errors.
    ok = pl.col("status") == "ok"
    p_pre = (pre.filter(ok)["quality"] == "refusal").mean()
    p_post = (post.filter(ok)["quality"] == "refusal").mean()
    n_post = post.filter(ok).height
    se = np.sqrt(p_post * (1 - p_post) / n_post + p_pre * (1 - p_pre) / pre.filter(ok).height)
    assert abs((p_post - p_pre) - spec.refusal_rate) < 4 * se + 0.005, (p_pre, p_post)
    # Another language mix (by session, so compare shares loosely).
    lang_post = post["lang"].value_counts(normalize=True)
    share = dict(zip(lang_post["lang"], lang_post["proportion"], strict=True))
    assert abs(share["en"] - DRIFT_LANG["en"]) < 0.06 and abs(share["es"] - DRIFT_LANG["es"]) < 0.06
    assert (pre["lang"] == "en").mean() > 0.8
    # Weaker retrieval: top-1 scores shift by retrieval_score.
    shift = post["top1"].mean() - pre["top1"].mean()
    assert abs(shift - spec.retrieval_score) < 0.02, shift
    # Prompt length must NOT drift (same construction, length-matched translations).
    ks = stats.ks_2samp(pre["plen"].to_numpy(), post["plen"].to_numpy())
    assert ks.statistic < 0.05, ks
    assert abs(post["plen"].median() / pre["plen"].median() - 1) < 0.05


def test_drift_limited_to_kinds_and_routes() -> None:
    spec = DriftSpec(after=AFTER, language=DRIFT_LANG, routes=["chat"])
    a = labels(generate(12_000, 2, drift=spec, drift_kinds=["language"]))
    b = labels(generate(12_000, 2))
    chat = pl.col("route") == "chat"
    # Other routes are untouched, and chat keeps everything but its language (and what the
    # language decides: the text and its token counts).
    assert_frame_equal(a.filter(~chat), b.filter(~chat))
    fixed = [
        "trace_id",
        "timestamp",
        "session_id",
        "customer_id",
        "model",
        "release",
        "sample_rate",
        "retrieved",
    ]
    assert_frame_equal(a.filter(chat).select(fixed), b.filter(chat).select(fixed))
    assert (a.filter(chat & pl.col("post"))["lang"] == "en").mean() < 0.65
    assert (b.filter(chat & pl.col("post"))["lang"] == "en").mean() > 0.75
    # The kinds left out did not happen: the refusal share stays at its base rate.
    ok = a.filter(chat & (pl.col("status") == "ok"))
    assert (ok.filter(pl.col("post"))["quality"] == "refusal").mean() < 0.05


def test_regression_only_on_route_and_release_after_date(drifted: pl.DataFrame) -> None:
    lab = labels(drifted)
    v2 = lab.filter(pl.col("release") == "v2.0.0")
    assert set(v2["route"].unique()) == {"search_qa"} and v2["post"].all()
    sq_post = lab.filter((pl.col("route") == "search_qa") & pl.col("post"))
    assert (sq_post["release"] == "v2.0.0").all()
    # Releases before: v1.0.0 → v1.1.0 → v1.2.0 in time order on every route.
    for route in ROUTES:
        rel = (
            lab.filter((pl.col("route") == route) & ~pl.col("post"))
            .group_by("release")
            .agg(pl.col("timestamp").min().alias("first"), pl.col("timestamp").max().alias("last"))
            .sort("first")
        )
        assert rel["release"].to_list() == ["v1.0.0", "v1.1.0", "v1.2.0"]
        assert (rel["last"].head(2) < rel["first"].tail(2)).all()
    answered = pl.col("quality").is_in(["good", "wrong", "offtopic", "truncated"])
    bad = pl.col("quality").is_in(["wrong", "offtopic", "truncated"])

    def bad_share(frame: pl.DataFrame) -> float:
        a = frame.filter(answered)
        return float((a["quality"] != "good").mean())

    sq_pre = lab.filter((pl.col("route") == "search_qa") & ~pl.col("post"))
    other_post = lab.filter((pl.col("route") != "search_qa") & pl.col("post"))
    assert bad_share(sq_pre) < 0.1 and bad_share(other_post) < 0.1
    # Severity 0.4 plus the background rate of the untouched 60 %.
    expected = 0.4 + 0.6 * bad_share(sq_pre)
    n = sq_post.filter(answered).height
    assert abs(bad_share(sq_post) - expected) < 4 * np.sqrt(expected * (1 - expected) / n) + 0.01
    kinds = sq_post.filter(bad)["quality"].value_counts()
    assert set(kinds["quality"]) == {"wrong", "offtopic", "truncated"}

    # The reference comparison sees it: exact-reference agreement drops after the release.
    def agree(frame: pl.DataFrame) -> float:
        f = frame.filter(pl.col("reference").is_not_null() & pl.col("response").is_not_null())
        return float(
            f.select(pl.col("response").str.contains(pl.col("reference"), literal=True))
            .to_series()
            .mean()
        )

    assert agree(sq_pre) - agree(sq_post) > 0.25
    # The new release also changed the system prompt and the temperature (its root cause).
    assert (
        sq_post["system"].n_unique() == 1 and sq_post["system"][0] not in sq_pre["system"].to_list()
    )
    assert sq_post["params"].str.json_path_match("$.temperature").cast(pl.Float64).min() == 1.0


# ---- sample_traces and the CLI ----------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The real console script in a subprocess (used once: the entry point end to end)."""
    return subprocess.run(
        [sys.executable, "-m", "llmobs_cli", *args], capture_output=True, text=True, timeout=120
    )


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``llmobs`` in-process through the same ``main`` (and error boundary) as the script."""
    from llmobs_cli.cli.app import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    code = exit_info.value.code
    return subprocess.CompletedProcess(list(args), int(code or 0), out.out, out.err)


def generate_args(text: str) -> list[str]:
    """The ``llmobs generate`` arguments in a shell snippet (after the output path)."""
    joined = text.replace("\\\n", " ")
    line = next(ln for ln in joined.splitlines() if "llmobs generate" in ln)
    return shlex.split(line.split("llmobs generate", 1)[1])[1:]


def readme_command() -> list[str]:
    """The arguments documented in sample_traces/README.md, which make.sh must also use."""
    text = (ROOT / "sample_traces" / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README has no sh block"
    args = generate_args(block.group(1))
    assert generate_args((ROOT / "sample_traces" / "make.sh").read_text()) == args
    return args


def test_sample_traces_match_the_documented_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pq = load([ROOT / "sample_traces" / "traces.parquet"]).frame
    js = load([ROOT / "sample_traces" / "traces.jsonl"]).frame
    assert_frame_equal(_semantic(pq), _semantic(js))
    assert (ROOT / "sample_traces" / "traces.jsonl").stat().st_size <= 4 * 1024 * 1024
    out = tmp_path / "again.parquet"
    res = cli(capsys, "generate", str(out), *readme_command())
    assert res.returncode == 0, res.stderr
    assert_frame_equal(load([out]).frame, pq)
    # The documented shape: six weeks ending 2026-11-22, drift and a v2.0.0 regression on
    # search_qa in the last week.
    assert pq["timestamp"].max().date() == datetime(2026, 11, 22).date()
    assert (pq["timestamp"].max() - pq["timestamp"].min()) > timedelta(days=40)
    v2 = pq.filter(pl.col("release") == "v2.0.0")
    assert set(v2["route"]) == {"search_qa"} and v2["timestamp"].min() >= datetime(
        2026, 11, 16, tzinfo=UTC
    )


def test_cli_writes_files_and_reports(tmp_path: Path) -> None:
    out = tmp_path / "g.jsonl.gz"
    res = run(
        "generate", str(out), "--rows", "500", "--seed", "3",
        "--days", "10", "--start", "2026-01-01",
        "--drift-after", "3d",  # 3 days before the end: 2026-01-08
        "--drift-kinds", "length,refusals",
        "--regression-after", "2026-01-08T00:00:00Z", "--regression-route", "refunds",
        "--rate", "chat=0.05",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    assert "wrote 500 sampled row(s)" in res.stderr
    assert "period 2026-01-01 .. 2026-01-10 (UTC)" in res.stderr
    assert "drift from 2026-01-08T00:00Z on all routes: length, refusals" in res.stderr
    assert (
        "regression from 2026-01-08T00:00Z on refunds: release v2.0.0, severity 0.35" in res.stderr
    )
    frame = load([out]).frame
    assert frame.height == 500
    assert frame["timestamp"].min() >= datetime(2026, 1, 1, tzinfo=UTC)
    assert frame["timestamp"].max() < datetime(2026, 1, 11, tzinfo=UTC)
    assert set(frame.filter(pl.col("release") == "v2.0.0")["route"]) == {"refunds"}
    assert set(frame.filter(pl.col("route") == "chat")["sample_rate"]) == {0.05}
    # The same command through the library gives the same rows.
    same = generate(
        500, 3, start=datetime(2026, 1, 1, tzinfo=UTC), days=10,
        drift=DriftSpec(
            after=datetime(2026, 1, 8, tzinfo=UTC), language=gen.DEFAULT_DRIFT_LANGUAGE
        ),
        drift_kinds=["length", "refusals"],
        regression=RegressionSpec(after=datetime(2026, 1, 8, tzinfo=UTC), route="refunds"),
        route_rates={"chat": 0.05},
    )  # fmt: skip
    assert_frame_equal(_semantic(frame), _semantic(same))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rows", "x"], "Invalid value for '--rows'"),
        (["--rate", "nope=0.5"], "--rate: unknown name 'nope' (known: chat, "),
        (["--rate", "chatt=0.5"], "--rate: unknown name 'chatt' (did you mean 'chat'?"),
        (["--rate", "chat=2"], "sample rate must be in (0, 1]"),
        (
            ["--drift-after", "yesterday"],
            "--drift-after: not a date, RFC 3339 time or a duration like 7d ('yesterday')",
        ),
        (["--start", "soon"], "--start: not a date, RFC 3339 time ('soon')"),
        (
            ["--regression-after", "2026-11-16", "--regression-route", "nope"],
            "--regression-route: unknown route 'nope'",
        ),
        (
            ["--drift-after", "2026-11-16", "--drift-kinds", "colour"],
            "--drift-kinds: unknown drift kind 'colour'",
        ),
        (
            ["--drift-after", "2026-11-16", "--drift-language", "xx=1"],
            "--drift-language: unknown name 'xx'",
        ),
        (["--bogus"], "No such option"),
    ],
)
def test_cli_bad_usage_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "x.parquet"
    res = cli(capsys, "generate", str(out), *args)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()


def test_cli_missing_directory_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = cli(capsys, "generate", str(tmp_path / "nope" / "x.parquet"), "--rows", "10")
    assert res.returncode == 2 and "does not exist" in res.stderr


def test_topic_surge_is_opt_in_and_sized() -> None:
    base_rows = labels(generate(15_000, 6))
    spec = DriftSpec(after=AFTER, topic_shift=0.3)
    surged = labels(generate(15_000, 6, drift=spec, drift_kinds=["topic"]))
    assert_frame_equal(surged.filter(~pl.col("post")), base_rows.filter(~pl.col("post")))
    # The default drift leaves topics alone (topic_shift is 0 unless asked for).
    default = labels(generate(15_000, 6, drift=DriftSpec(after=AFTER)))
    assert_frame_equal(default.select("topic"), base_rows.select("topic"))
    sq = pl.col("route") == "search_qa"
    post = surged.filter(sq & pl.col("post"))
    n_topics = len(gen.KB_TOPICS)
    # A call moves to the hot topic with probability 0.3, else keeps a uniform topic.
    expected = 0.3 + 0.7 / n_topics
    share = float((post["topic"] == "password_reset").mean())
    assert abs(share - expected) < 4 * np.sqrt(expected * (1 - expected) / post.height)
    before = float((surged.filter(sq & ~pl.col("post"))["topic"] == "password_reset").mean())
    assert abs(before - 1 / n_topics) < 0.03


# ---- properties over arbitrary arguments -----------------------------------------------


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(1, 400),
    seed=st.integers(0, 2**40),
    days=st.integers(1, 60),
    rates=st.dictionaries(st.sampled_from(ROUTES), st.floats(0.001, 1.0), max_size=3),
    after_day=st.integers(0, 60),
    length=st.floats(0.5, 2.0),
    refusals=st.floats(-0.02, 0.5),
    retrieval=st.floats(-0.5, 0.5),
    severity=st.floats(0.0, 1.0),
    fmt=st.sampled_from(["parquet", "jsonl"]),
)
def test_any_arguments_give_valid_records_that_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    rows: int,
    seed: int,
    days: int,
    rates: dict[str, float],
    after_day: int,
    length: float,
    refusals: float,
    retrieval: float,
    severity: float,
    fmt: str,
) -> None:
    after = DEFAULT_START + timedelta(days=after_day)
    frame = generate(
        rows,
        seed,
        days=days,
        route_rates=rates,
        drift=DriftSpec(
            after=after,
            response_length=length,
            refusal_rate=refusals,
            retrieval_score=retrieval,
            language=DRIFT_LANG,
        ),
        regression=RegressionSpec(after=after, severity=severity),
    )
    assert frame.height == rows
    assert normalize(frame).problems.height == 0
    ok = frame.filter(pl.col("status") == "ok")
    assert (ok["cached_tokens"].fill_null(0) <= ok["input_tokens"]).all()
    assert (ok["reasoning_tokens"].fill_null(0) <= ok["output_tokens"]).all()
    scores = frame["retrieved"].list.eval(pl.element().struct.field("score")).explode().drop_nulls()
    assert scores.is_empty() or (scores.min() >= 0 and scores.max() <= 1)
    for route, rate in rates.items():
        assert set(frame.filter(pl.col("route") == route)["sample_rate"]) <= {rate}
    out = tmp_path_factory.mktemp("rt") / f"t.{fmt}"
    write_frame(frame, out, fmt)  # type: ignore[arg-type]
    back = load([out]).frame
    assert_frame_equal(_semantic(back), _semantic(frame))


# Fingerprints of the generator's output, recorded before the generator was split into one
# stage per column family: the same arguments must keep giving the same rows, byte for
# byte (values, types and order), whatever the code's arrangement.
GOLDEN = {
    "plain": "5ed4a414e2e2655b5f53576638e73a2ec078b58484a7c9d6c89fb96eee367ab7",
    "drift": "85d94e19f005ba0723a5ad60ef95416393d098543f04484562ded882b8769916",
    "regression": "05657f5ab381ee787c241ac49899640f379657048aeb858f92cc34d256513dea",
}


def _fingerprint(frame: pl.DataFrame) -> str:
    import hashlib
    import json

    h = hashlib.sha256()
    h.update(json.dumps(frame.schema, default=str).encode())
    for row in frame.iter_rows():
        h.update(json.dumps(row, default=str, ensure_ascii=False).encode())
    return h.hexdigest()


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_output_is_unchanged_for_a_seed(case: str) -> None:
    args: dict = {
        "plain": {"rows": 3000, "seed": 0},
        "drift": {
            "rows": 3000,
            "seed": 3,
            "drift": DriftSpec(
                after=datetime(2026, 11, 1, tzinfo=UTC),
                language=gen.DEFAULT_DRIFT_LANGUAGE,
                topic_shift=0.3,
            ),
        },
        "regression": {
            "rows": 3000,
            "seed": 5,
            "regression": RegressionSpec(
                after=datetime(2026, 11, 5, tzinfo=UTC), route="refunds", severity=0.5
            ),
            "route_rates": {"chat": 0.02},
        },
    }[case]
    assert _fingerprint(generate(**args)) == GOLDEN[case]
