"""Pricing of each usage kind, tiers, dates, overrides, normalisation, and the table itself."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from llmobs_cli.core.report import pricing
from llmobs_cli.core.report.pricing import (
    PriceEntry,
    PriceTable,
    build_price_table,
    normalize_model_name,
    normalize_usage,
    with_cost,
)
from llmobs_cli.errors import ConfigError
from llmobs_cli.resources import config_file

T = datetime(2025, 10, 1, tzinfo=UTC)
ENTRY = PriceEntry(
    model="m",
    input=2.0,
    cached_input=0.5,
    cache_write=2.5,
    output=8.0,
    tiers=[
        {
            "above_input_tokens": 100_000,
            "input": 4.0,
            "cached_input": 1.0,
            "cache_write": 5.0,
            "output": 12.0,
        }
    ],
)


def cost_of(table: PriceTable, **row: object) -> tuple[float | None, bool]:
    base = {
        "model": "m",
        "provider": None,
        "timestamp": T,
        "input_tokens": None,
        "output_tokens": None,
        "cached_tokens": None,
        "cache_write_tokens": None,
        "reasoning_tokens": None,
        "cost_usd": None,
        "status": "ok",
    }
    base.update(row)
    schema = {
        "model": pl.String,
        "provider": pl.String,
        "timestamp": pl.Datetime("us", "UTC"),
        "input_tokens": pl.Int64,
        "output_tokens": pl.Int64,
        "cached_tokens": pl.Int64,
        "cache_write_tokens": pl.Int64,
        "reasoning_tokens": pl.Int64,
        "cost_usd": pl.Float64,
        "status": pl.String,
    }
    df = pl.DataFrame([base], schema=schema)
    out = with_cost(df.lazy(), table).collect()
    return out[pricing.COST].item(), out[pricing.UNPRICED].item()


TABLE = PriceTable([ENTRY])


def test_non_cached_input_and_output() -> None:
    assert cost_of(TABLE, input_tokens=1000, output_tokens=100)[0] == pytest.approx(
        (1000 * 2 + 100 * 8) / 1e6
    )


def test_cached_input_is_within_input_and_discounted() -> None:
    c, _ = cost_of(TABLE, input_tokens=1000, cached_tokens=600, output_tokens=0)
    assert c == pytest.approx((400 * 2.0 + 600 * 0.5) / 1e6)  # not double-billed


def test_cache_write_priced_apart() -> None:
    c, _ = cost_of(
        TABLE, input_tokens=1000, cached_tokens=200, cache_write_tokens=300, output_tokens=10
    )
    assert c == pytest.approx((500 * 2.0 + 200 * 0.5 + 300 * 2.5 + 10 * 8.0) / 1e6)


def test_missing_cache_prices_bill_as_input() -> None:
    table = PriceTable([PriceEntry(model="m", input=1.0, output=2.0)])
    c, _ = cost_of(
        table, input_tokens=1000, cached_tokens=500, cache_write_tokens=100, output_tokens=0
    )
    assert c == pytest.approx(1000 * 1.0 / 1e6)


def test_reasoning_within_output_is_not_added() -> None:
    c, _ = cost_of(TABLE, input_tokens=0, output_tokens=500, reasoning_tokens=300)
    assert c == pytest.approx(500 * 8.0 / 1e6)


def test_reasoning_counted_apart_is_added() -> None:
    # Gemini-style: thoughts (700) not included in the candidates' 100 output tokens.
    c, _ = cost_of(TABLE, input_tokens=0, output_tokens=100, reasoning_tokens=700)
    assert c == pytest.approx(800 * 8.0 / 1e6)


def test_long_context_tier_applies_to_whole_call() -> None:
    c, _ = cost_of(TABLE, input_tokens=150_000, cached_tokens=50_000, output_tokens=1000)
    assert c == pytest.approx((100_000 * 4.0 + 50_000 * 1.0 + 1000 * 12.0) / 1e6)
    at_threshold, _ = cost_of(TABLE, input_tokens=100_000, output_tokens=0)
    assert at_threshold == pytest.approx(100_000 * 2.0 / 1e6)


def test_record_cost_wins() -> None:
    assert cost_of(TABLE, input_tokens=10**6, output_tokens=10**6, cost_usd=0.123) == (0.123, False)
    # ...even for a model the table does not know.
    assert cost_of(TABLE, model="unknown-x", cost_usd=0.5) == (0.5, False)


def test_unpriced_model_is_null_not_zero() -> None:
    assert cost_of(TABLE, model="unknown-x", input_tokens=10, output_tokens=1) == (None, True)


def test_no_tokens_is_unpriced_unless_failed() -> None:
    assert cost_of(TABLE) == (None, True)
    assert cost_of(TABLE, status="error") == (0.0, False)


def test_effective_dates_price_by_timestamp() -> None:
    table = build_price_table()
    before = cost_of(
        table,
        model="deepseek-chat",
        timestamp=datetime(2025, 8, 1, tzinfo=UTC),
        input_tokens=10**6,
        output_tokens=10**6,
    )[0]
    after = cost_of(
        table,
        model="deepseek-chat",
        timestamp=datetime(2025, 10, 1, tzinfo=UTC),
        input_tokens=10**6,
        output_tokens=10**6,
    )[0]
    assert before == pytest.approx(0.27 + 1.10)
    assert after == pytest.approx(0.28 + 0.42)
    # Older than the first period: priced at the earliest known price.
    old = cost_of(
        table, model="deepseek-chat", timestamp=datetime(2024, 1, 1, tzinfo=UTC), input_tokens=10**6
    )[0]
    assert old == pytest.approx(0.27)


def test_provider_specific_price() -> None:
    table = build_price_table()
    groq = cost_of(
        table, model="llama-3.3-70b-versatile", provider="groq", input_tokens=10**6, output_tokens=0
    )[0]
    assert groq == pytest.approx(0.59)
    together = cost_of(
        table,
        model="meta-llama/Llama-3.3-70B-Instruct-Turbo",
        provider="together",
        input_tokens=10**6,
    )[0]
    assert together == pytest.approx(0.88)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("openai/gpt-4o", "gpt-4o"),
        ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku-20241022"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet"),
        ("models/gemini-1.5-pro", "gemini-1.5-pro"),
        ("GPT-4o-mini", "gpt-4o-mini"),
    ],
)
def test_model_name_normalisation(name: str, canonical: str) -> None:
    assert normalize_model_name(name) == canonical


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("openai/gpt-4.1-nano", "gpt-4.1-nano"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("gemini-2.5-pro", "gemini-2.5-pro"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("mistral-large-latest", "mistral-large"),
        ("deepseek-reasoner", "deepseek-reasoner"),
        ("o3-mini", "o3-mini"),
        ("grok-4", "grok-4"),
    ],
)
def test_shipped_table_matches_real_model_names(model: str, expected: str) -> None:
    (first, *_) = build_price_table().resolve(model, None)
    assert first.model == expected


def test_shipped_table_is_complete_and_documented() -> None:
    data = yaml.safe_load(config_file("prices.yaml").read_text())
    entries = pricing.parse_entries(data, "prices.yaml")
    models = {e.model for e in entries}
    assert len(models) >= 40
    text = config_file("prices.yaml").read_text().lower()
    for vendor in ("openai", "anthropic", "google", "mistral", "llama", "deepseek"):
        assert vendor in text
    for e in entries:
        assert e.source and e.source.startswith("https://"), e.model
        assert e.checked is not None and e.effective_from is not None, e.model
    assert any(e.tiers for e in entries)
    assert any(e.cache_write is not None for e in entries)


def test_overrides_replace_and_extend(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "models:\n  - {model: gpt-4o, input: 1, output: 1}\n"
        "  - {model: house-llm, match: 'house-.*', input: 3, output: 4}\n"
    )
    table = build_price_table(override_files=[f])
    assert cost_of(table, model="gpt-4o", input_tokens=10**6)[0] == pytest.approx(1.0)
    assert cost_of(table, model="house-7b", output_tokens=10**6)[0] == pytest.approx(4.0)
    assert cost_of(table, model="gpt-4o-mini", input_tokens=10**6)[0] == pytest.approx(0.15)
    # Precedence: --prices over config models over config file over shipped.
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "models: [{model: gpt-4o, input: 7, output: 7},"
        " {model: gpt-4o-mini, input: 5, output: 5}]\n"
    )
    layered = build_price_table(
        override_files=[f],
        config_file_path=cfg,
        config_models=[{"model": "gpt-4o-mini", "input": 6, "output": 6}],
    )
    assert cost_of(layered, model="gpt-4o", input_tokens=10**6)[0] == pytest.approx(1.0)
    assert cost_of(layered, model="gpt-4o-mini", input_tokens=10**6)[0] == pytest.approx(6.0)


def test_bad_price_file_names_file_entry_and_key(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("models:\n  - {model: x, input: -1, output: 1}\n")
    with pytest.raises(
        ConfigError,
        match=r"bad.yaml: models\[0\] \(x\)\.input: Input should be greater than or equal to 0",
    ):
        build_price_table(override_files=[f])
    f.write_text("models:\n  - {model: x, input: 1, output: 1, colour: red}\n")
    with pytest.raises(ConfigError, match=r"models\[0\] \(x\)\.colour: unknown key"):
        build_price_table(override_files=[f])
    f.write_text("models:\n  - {model: x, match: '(', input: 1, output: 1}\n")
    with pytest.raises(ConfigError, match=r"models\[0\] \(x\)\.match: invalid regular expression"):
        build_price_table(override_files=[f])
    with pytest.raises(ConfigError, match="price file not found"):
        build_price_table(override_files=[tmp_path / "missing.yaml"])


def _usage_frame(**cols: list[int | None]) -> pl.DataFrame:
    names = (
        "input_tokens",
        "output_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "cache_write_tokens",
    )
    return pl.DataFrame(
        {n: cols.get(n, [None]) for n in names}, schema={n: pl.Int64 for n in names}
    )


def test_normalize_usage_per_provider_convention() -> None:
    # Anthropic: input_tokens excludes cache reads and writes.
    a = normalize_usage(
        _usage_frame(
            input_tokens=[20], cached_tokens=[5000], cache_write_tokens=[300], output_tokens=[10]
        ),
        "anthropic",
    )
    assert a["input_tokens"].item() == 5320
    # Langfuse: input excludes cache reads.
    lf = normalize_usage(_usage_frame(input_tokens=[100], cached_tokens=[400]), "langfuse")
    assert lf["input_tokens"].item() == 500
    # Gemini: thoughts apart from candidates.
    g = normalize_usage(_usage_frame(output_tokens=[50], reasoning_tokens=[200]), "google")
    assert g["output_tokens"].item() == 250
    # OpenAI is already the contract's identity.
    o = _usage_frame(input_tokens=[100], cached_tokens=[40])
    assert normalize_usage(o, "openai").equals(o)
