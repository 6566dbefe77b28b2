"""Prices: the price table, usage normalisation and the cost of each call.

Contract (see ``docs/pricing.md``):

* The shipped table is ``configs/prices.yaml`` (USD per million tokens by usage kind:
  non-cached input, cached input, cache write, output; long-context tiers; an
  ``effective_from`` date; a source link; the date checked). ``--prices FILE`` and the
  ``prices:`` section of ``llmobs.yaml`` (``file`` and inline ``models``) extend it; an entry
  with the same ``model`` name as a shipped one replaces all of the shipped periods of that
  model. Precedence: ``--prices`` > ``prices.models`` > ``prices.file`` > shipped.
* Usage identities follow the record contract: ``cached_tokens ⊆ input_tokens``,
  ``cache_write_tokens ⊆ input_tokens``, ``reasoning_tokens ⊆ output_tokens``. A call costs
  ``(input − cached − cache_write)·p_in + cached·p_cached + cache_write·p_write + output·p_out``
  (per million); without a cached or cache-write price those tokens bill at ``p_in``. When
  ``reasoning_tokens > output_tokens`` the provider counted them apart (Gemini's
  "thoughts"), so they are added. :func:`normalize_usage` converts other providers'
  identities (Anthropic, Langfuse, Gemini) to the contract's.
* A long-context tier applies to the whole call when its input tokens exceed the tier's
  ``above_input_tokens`` (how Anthropic and Google bill).
* A record's own ``cost_usd`` wins over the table.
* A call with no ``cost_usd`` whose model matches no entry (or that carries no token
  counts) is **unpriced**: its cost is null, never a silent 0. Failed calls (``status``
  error) without tokens or cost cost 0: providers do not bill them.
* Matching happens once per distinct ``(model, provider)`` pair in Python (a handful), the
  per-row work is one join and arithmetic in Polars.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

if TYPE_CHECKING:
    from llmobs_cli.core.record.config import Config

from llmobs_cli.errors import ConfigError, UsageError
from llmobs_cli.resources import config_file

PER = 1_000_000.0

#: Columns the cost computation adds to a frame.
COST = "_cost"  # final cost of the call (record's own, else priced), null = unpriced
PRICED = "_priced_usd"  # the table's price of the call (null when it cannot be priced)
UNPRICED = "_unpriced"  # bool
PRICE_MODEL = "_price_model"  # the table entry that priced the call


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriceTier(_Strict):
    above_input_tokens: int = Field(ge=0)
    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)


class PriceEntry(_Strict):
    """One price period of one model (USD per million tokens)."""

    model: str
    match: str | None = None
    provider: str | None = None
    input: float = Field(ge=0)
    cached_input: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)
    tiers: list[PriceTier] = Field(default_factory=list)
    effective_from: date | None = None
    source: str | None = None
    checked: date | None = None
    notes: str | None = None
    #: request parameters the model refuses (reasoning models: temperature, top_p); the
    #: judge leaves them out of its requests for this model
    rejects_params: list[str] = Field(default_factory=list)

    @field_validator("match", "provider")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression ({exc})") from exc
        return v

    @cached_property
    def _model_re(self) -> re.Pattern[str]:
        return re.compile(self.match or re.escape(self.model.lower()), re.IGNORECASE)

    @cached_property
    def _provider_re(self) -> re.Pattern[str] | None:
        return re.compile(self.provider, re.IGNORECASE) if self.provider else None

    def matches(self, model: str, provider: str | None) -> bool:
        if self._provider_re is not None and not (
            provider and self._provider_re.fullmatch(provider.strip())
        ):
            return False
        name = normalize_model_name(model)
        return bool(
            self._model_re.fullmatch(name) or self._model_re.fullmatch(model.strip().lower())
        )

    @property
    def tier(self) -> PriceTier | None:
        """The (single) long-context tier; with several, the lowest threshold."""
        return min(self.tiers, key=lambda t: t.above_input_tokens) if self.tiers else None


_PREFIXES = re.compile(
    r"^(?:(?:[a-z0-9_.-]+/)+|(?:us|eu|apac|global)\.(?=[a-z]+\.)|"
    r"(?:anthropic|meta|mistral|amazon|cohere|deepseek|ai21)\.)",
    re.IGNORECASE,
)


def normalize_model_name(name: str) -> str:
    """``openai/gpt-4o`` → ``gpt-4o``; ``us.anthropic.claude-3-5-haiku-20241022-v1:0`` →
    ``claude-3-5-haiku-20241022``; ``claude-3-5-sonnet@20240620`` → ``claude-3-5-sonnet``;
    ``models/gemini-1.5-pro`` → ``gemini-1.5-pro``."""
    n = name.strip().lower()
    for _ in range(3):
        m = _PREFIXES.match(n)
        if not m or m.end() == len(n):
            break
        n = n[m.end() :]
    n = re.sub(r"@[\w.-]+$", "", n)  # Vertex: claude-3-5-sonnet@20240620
    n = re.sub(r"-v\d+(?::\d+)?$", "", n)  # Bedrock: ...-v1:0
    n = re.sub(r":[\w.-]+$", "", n)  # Ollama-style tags, Bedrock ':0'
    return n


@dataclass
class PriceTable:
    """Price entries in precedence order (first match wins among same-model periods)."""

    entries: list[PriceEntry]
    sources: list[str] = field(default_factory=list)

    def resolve(self, model: str | None, provider: str | None) -> list[PriceEntry]:
        """All price periods of the first entry name that matches ``model``, by date."""
        if not model:
            return []
        for e in self.entries:
            if e.matches(model, provider):
                periods = [p for p in self.entries if p.model == e.model]
                return sorted(periods, key=lambda p: p.effective_from or date.min)
        return []

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(e.model for e in self.entries))

    def lookup_frame(self, pairs: Iterable[tuple[str | None, str | None]]) -> pl.DataFrame:
        """One row per ``(model, provider, period)`` seen in the data that the table prices.

        ``_from``/``_to`` bound each period (the earliest is open at the start, so calls
        older than the table are priced at the earliest known price).
        """
        rows: list[dict[str, Any]] = []
        for model, provider in pairs:
            periods = self.resolve(model, provider)
            for i, p in enumerate(periods):
                start = p.effective_from if i > 0 else None
                nxt = periods[i + 1].effective_from if i + 1 < len(periods) else None
                tier = p.tier
                rows.append(
                    {
                        "model": model,
                        "provider": provider,
                        "_from": _day(start),
                        "_to": _day(nxt),
                        PRICE_MODEL: p.model,
                        "_p_in": p.input,
                        "_p_cached": p.cached_input,
                        "_p_cw": p.cache_write,
                        "_p_out": p.output,
                        "_t_above": tier.above_input_tokens if tier else None,
                        "_t_in": tier.input if tier else None,
                        "_t_cached": tier.cached_input if tier else None,
                        "_t_cw": tier.cache_write if tier else None,
                        "_t_out": tier.output if tier else None,
                    }
                )
        return pl.DataFrame(rows, schema=_LOOKUP_SCHEMA)


_LOOKUP_SCHEMA: dict[str, pl.DataType] = {
    "model": pl.String(),
    "provider": pl.String(),
    "_from": pl.Datetime("us", "UTC"),
    "_to": pl.Datetime("us", "UTC"),
    PRICE_MODEL: pl.String(),
    "_p_in": pl.Float64(),
    "_p_cached": pl.Float64(),
    "_p_cw": pl.Float64(),
    "_p_out": pl.Float64(),
    "_t_above": pl.Int64(),
    "_t_in": pl.Float64(),
    "_t_cached": pl.Float64(),
    "_t_cw": pl.Float64(),
    "_t_out": pl.Float64(),
}


def _day(d: date | None) -> datetime | None:
    return None if d is None else datetime(d.year, d.month, d.day, tzinfo=UTC)


# --- loading -------------------------------------------------------------------------


def parse_entries(data: Any, source: str) -> list[PriceEntry]:
    """Entries of a price document (``{models: [...]}`` or a bare list)."""
    if isinstance(data, dict):
        unknown = set(data) - {"version", "models"}
        if unknown:
            raise ConfigError(f"{source}: {sorted(unknown)[0]}: unknown key (expected 'models')")
        data = data.get("models") or []
    if not isinstance(data, list):
        raise ConfigError(f"{source}: expected a list of price entries under 'models'")
    out: list[PriceEntry] = []
    for i, item in enumerate(data):
        try:
            out.append(PriceEntry.model_validate(item))
        except ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else str(err["msg"])
            msg = msg.removeprefix("Value error, ")
            name = item.get("model") if isinstance(item, dict) else None
            who = f" ({name})" if name else ""
            raise ConfigError(f"{source}: models[{i}]{who}.{loc}: {msg}") from exc
    return out


def read_price_file(path: str | Path) -> list[PriceEntry]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: price file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read price file ({exc})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{p}{where}: invalid YAML ({getattr(exc, 'problem', None) or exc})"
        ) from exc
    return parse_entries(data, str(p))


def shipped_entries() -> list[PriceEntry]:
    """The shipped table (parsed once per process; entries are treated as immutable)."""
    return list(_shipped(str(config_file("prices.yaml"))))


@lru_cache(maxsize=2)
def _shipped(path: str) -> tuple[PriceEntry, ...]:
    return tuple(read_price_file(path))


def build_price_table(
    *,
    override_files: Sequence[str | Path] = (),
    config_file_path: str | Path | None = None,
    config_models: Sequence[dict[str, Any]] = (),
    config_source: str = "llmobs.yaml",
    shipped: bool = True,
) -> PriceTable:
    """The effective table: ``--prices`` files, then config models, config file, shipped."""
    layers: list[tuple[str, list[PriceEntry]]] = []
    for f in override_files:
        layers.append((str(f), read_price_file(f)))
    if config_models:
        layers.append(
            (
                f"{config_source}: prices.models",
                parse_entries(list(config_models), f"{config_source}: prices"),
            )
        )
    if config_file_path:
        layers.append((str(config_file_path), read_price_file(config_file_path)))
    if shipped:
        layers.append(("configs/prices.yaml", shipped_entries()))
    entries: list[PriceEntry] = []
    seen: set[str] = set()
    for _, layer in layers:
        names = {e.model for e in layer}
        entries.extend(e for e in layer if e.model not in seen)
        seen |= names
    return PriceTable(entries=entries, sources=[s for s, _ in layers])


def config_price_table(cfg: Config, override_files: Sequence[str | Path] = ()) -> PriceTable:
    """The effective table for a loaded configuration: ``override_files`` (``--prices``), then
    ``prices.models`` and ``prices.file`` of ``cfg``, then the shipped table."""
    return build_price_table(
        override_files=override_files,
        config_file_path=cfg.prices.file,
        config_models=cfg.prices.models,
        config_source=cfg.source or "llmobs.yaml",
    )


# --- usage normalisation -------------------------------------------------------------

Convention = Literal["openai", "otel", "anthropic", "langfuse", "google"]


def normalize_usage(frame: pl.LazyFrame | pl.DataFrame, convention: Convention) -> Any:
    """Convert a provider's token identities to the contract's (cached ⊆ input,
    cache_write ⊆ input, reasoning ⊆ output).

    * ``openai``/``otel``: already the contract's (cached inside prompt tokens, reasoning
      inside completion tokens).
    * ``anthropic``: ``input_tokens`` excludes cache reads and writes → add both.
    * ``langfuse``: its ``input`` excludes cache reads → add them.
    * ``google``: ``thoughts_token_count`` is counted apart from the candidates → add
      reasoning to output.
    """
    c = pl.col
    z = pl.lit(0, dtype=pl.Int64)
    if convention in ("openai", "otel"):
        return frame
    if convention == "anthropic":
        parts = [c("input_tokens"), c("cached_tokens"), c("cache_write_tokens")]
        return frame.with_columns(
            pl.when(pl.any_horizontal([p.is_not_null() for p in parts]))
            .then(pl.sum_horizontal([p.fill_null(z) for p in parts]))
            .alias("input_tokens")
        )
    if convention == "langfuse":
        return frame.with_columns(
            (c("input_tokens") + c("cached_tokens").fill_null(z)).alias("input_tokens")
        )
    if convention == "google":
        return frame.with_columns(
            (c("output_tokens") + c("reasoning_tokens").fill_null(z)).alias("output_tokens")
        )
    raise UsageError(f"unknown usage convention '{convention}'")


# --- cost ----------------------------------------------------------------------------

#: The record columns pricing a row reads (:func:`with_cost`).
PRICE_COLUMNS = (
    "model",
    "provider",
    "timestamp",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "status",
)


def price_pairs(frame: pl.LazyFrame) -> list[tuple[str | None, str | None]]:
    """Distinct ``(model, provider)`` pairs of rows that need the table."""
    pairs = (
        frame.filter(pl.col("cost_usd").is_null()).select("model", "provider").unique().collect()
    )
    return list(pairs.iter_rows())


def with_cost(
    frame: pl.LazyFrame,
    table: PriceTable | None,
    pairs: list[tuple[str | None, str | None]] | None = None,
) -> pl.LazyFrame:
    """Add :data:`COST`, :data:`PRICED`, :data:`UNPRICED` and :data:`PRICE_MODEL` columns."""
    c = pl.col
    if table is None:
        lookup = pl.DataFrame(schema=_LOOKUP_SCHEMA)
    else:
        lookup = table.lookup_frame(price_pairs(frame) if pairs is None else pairs)
    multi = lookup.height > lookup.select("model", "provider").unique().height
    out = frame.join(lookup.lazy(), on=["model", "provider"], how="left", nulls_equal=True)
    if multi:
        ts = c("timestamp")
        out = out.filter(
            (c("_from").is_null() | (ts >= c("_from"))) & (c("_to").is_null() | (ts < c("_to")))
        )
    zero = pl.lit(0, dtype=pl.Int64)
    inp = c("input_tokens").fill_null(zero)
    cached = c("cached_tokens").fill_null(zero).clip(0, inp)
    cw = c("cache_write_tokens").fill_null(zero).clip(0, inp - cached)
    uncached = inp - cached - cw
    out_t = c("output_tokens").fill_null(zero)
    reasoning = c("reasoning_tokens").fill_null(zero)
    billed_out = pl.when(reasoning > out_t).then(out_t + reasoning).otherwise(out_t)
    long = c("_t_above").is_not_null() & (inp > c("_t_above"))
    p_in = pl.when(long).then(c("_t_in")).otherwise(c("_p_in"))
    p_cached = pl.when(long).then(c("_t_cached")).otherwise(c("_p_cached")).fill_null(p_in)
    p_cw = pl.when(long).then(c("_t_cw")).otherwise(c("_p_cw")).fill_null(p_in)
    p_out = pl.when(long).then(c("_t_out")).otherwise(c("_p_out"))
    has_tokens = c("input_tokens").is_not_null() | c("output_tokens").is_not_null()
    priced = (
        pl.when(c("_p_in").is_not_null() & has_tokens)
        .then((uncached * p_in + cached * p_cached + cw * p_cw + billed_out * p_out) / PER)
        .otherwise(None)
    )
    failed_free = (c("status") == "error") & ~has_tokens
    out = out.with_columns(priced.alias(PRICED))
    out = out.with_columns(
        pl.coalesce(
            c("cost_usd"),
            c(PRICED),
            pl.when(failed_free).then(pl.lit(0.0)).otherwise(None),
        ).alias(COST)
    )
    return out.with_columns(c(COST).is_null().alias(UNPRICED)).drop(
        [k for k in _LOOKUP_SCHEMA if k not in ("model", "provider", PRICE_MODEL)]
    )
