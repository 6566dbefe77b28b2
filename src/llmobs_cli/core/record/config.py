"""``llmobs.yaml``: loading and validation.

The file is optional; ``--config PATH`` names one, else ``./llmobs.yaml`` is used when it
exists, else the built-in defaults (identical to ``configs/llmobs.yaml``). Every section is
a strict model: an unknown key or a wrong type is a :class:`ConfigError` naming the file,
the key path and what was expected.

Each command owns its section (``report``, ``eval``/``judge``, ``drift``, ``sample``,
``dashboard``); ``routes`` says what is high-stakes and how routes are sampled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmobs_cli.errors import ConfigError

DEFAULT_NAME = "llmobs.yaml"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class RouteConfig(Section):
    """Per-route facts: stakes decide review queues, judge coverage and storage sampling."""

    stakes: Literal["high", "normal", "low"] = "normal"
    keep_rate: float | None = Field(default=None, gt=0, le=1)
    eval_budget: int | None = Field(default=None, ge=0)
    drop_text: bool = False


class AlertRule(Section):
    rule: str
    name: str | None = None


class ReportConfig(Section):
    """``llmobs report`` defaults: grouping, percentiles (each in (0, 1)), time series."""

    by: list[str] = Field(default_factory=lambda: ["route"], min_length=1)
    percentiles: list[Annotated[float, Field(gt=0, lt=1)]] = Field(
        default_factory=lambda: [0.5, 0.95, 0.99], min_length=1
    )
    bucket: Literal["hour", "day", "week"] | None = None


class PricesConfig(Section):
    file: str | None = None
    models: list[dict[str, Any]] = Field(default_factory=list)


class RefusalsConfig(Section):
    patterns: list[str] | None = None
    extra_patterns: list[str] = Field(default_factory=list)


class JudgeConfig(Section):
    """The LLM judge: endpoint, model, concurrency, retries (backoff in seconds), prices."""

    model: str = "gpt-4o-mini"
    base_url: str | None = None
    concurrency: int = Field(default=8, ge=1, le=256)
    timeout_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=20)
    backoff_base_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    # total wait between the attempts of one judgment (rate limits, backoff), seconds
    wait_budget_s: float = Field(default=120.0, ge=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    # circuit breaker: this many unreachable attempts in a row (or breaker_s seconds of
    # nothing else) stop the run with exit 3
    breaker_failures: int = Field(default=5, ge=1)
    breaker_s: float = Field(default=30.0, gt=0)
    # stop (exit 3) when all of the first fail_first judgments fail, or more than
    # max_failure_rate of them once fail_first are done
    fail_first: int = Field(default=10, ge=1)
    max_failure_rate: float = Field(default=0.2, ge=0, le=1)
    max_cost_usd: float | None = Field(default=None, ge=0)
    input_price_per_million: float | None = Field(default=None, ge=0)
    output_price_per_million: float | None = Field(default=None, ge=0)


class SelfConsistencyConfig(Section):
    enabled: bool = False
    samples: int = Field(default=3, ge=2, le=20)
    temperature: float = Field(default=0.7, gt=0, le=2)
    model: str | None = None
    base_url: str | None = None
    disagreement_threshold: float = Field(default=0.5, ge=0, le=1)


class ReferenceConfig(Section):
    method: Literal["exact", "token_f1", "fuzzy", "numeric", "json"] = "token_f1"
    numeric_tolerance: float = Field(default=0.01, ge=0)


class CriterionConfig(Section):
    """A user judge criterion: a prompt file (.yaml or .md with front matter), relative
    to the configuration file; ``applies_to`` overrides the file's own value."""

    prompt: str
    applies_to: Literal["all", "retrieved", "reference"] | None = None


class EvalConfig(Section):
    budget: int = Field(default=200, ge=1)
    by: list[str] = Field(default_factory=lambda: ["route"])
    allocation: Literal["equal", "neyman"] = "equal"
    min_drop: float = Field(default=0.05, ge=0, le=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)
    evaluators: list[str] = Field(
        default_factory=lambda: ["relevance", "faithfulness", "completeness", "reference"]
    )
    criteria: dict[str, CriterionConfig] = Field(default_factory=dict)
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)
    self_consistency: SelfConsistencyConfig = Field(default_factory=SelfConsistencyConfig)
    borderline: tuple[float, float] = (0.4, 0.6)
    bucket: Literal["hour", "day", "week"] | None = None


class FeatureThreshold(Section):
    effect: float | None = Field(default=None, ge=0)
    alpha: float | None = Field(default=None, gt=0, lt=1)


class DriftConfig(Section):
    """``llmobs drift``: a feature drifts when its BH-adjusted p < ``alpha`` AND its effect
    reaches the floor (``thresholds.FEATURE.effect``, else the kind's default) AND both
    windows have ``n_eff >= min_n_eff``. ``language_sample`` rows per window (whole
    sessions) fit the text features (topics, vocabulary), which are then applied to every
    row up to ``text_rows`` rows per window (the language: ``language_rows``; past the
    cap, an equal-probability hash sample of sessions).
    ``bootstrap`` replicates fix the KS null scale. Windows of up to ``sample_rows`` rows
    in all are tested row by row; larger ones from merged partials, with clustering
    effects measured on a sample of that many rows of whole sessions."""

    alpha: float = Field(default=0.01, gt=0, lt=1)
    min_n_eff: float = Field(default=100.0, ge=1)
    features: list[str] | None = None
    #: slice dimensions tested by default (None: route and model; [] or [none]: no slices)
    slices: list[str] | None = None
    thresholds: dict[str, FeatureThreshold] = Field(default_factory=dict)
    language_sample: int = Field(default=10000, ge=100)
    #: Rows per window whose language is detected (above: a hash sample of sessions).
    language_rows: int = Field(default=250_000, ge=100)
    #: Rows per window given their topics and word counts (above: a hash sample).
    text_rows: int = Field(default=500_000, ge=100)
    topics: int = Field(default=8, ge=2, le=64)
    bootstrap: int = Field(default=200, ge=20)
    seed: int = 0
    sample_rows: int = Field(default=250_000, ge=1000)


class SampleConfig(Section):
    default_rate: float = Field(default=1.0, gt=0, le=1)
    drop_text: bool = False


class DashboardConfig(Section):
    """``llmobs dashboard``: what the one HTML file shows by default."""

    title: str = "llmobs dashboard"
    bucket: Literal["hour", "day", "week"] = "day"
    drift: bool = True
    drift_current: str = "last_week"
    drift_baseline: str = "last_month"
    release_window_days: float = Field(default=7.0, gt=0, le=365)


class NotifyConfig(Section):
    """``notify:``: where ``report``, ``eval`` and ``drift`` post when something fires.

    ``url`` may name an environment variable instead (``url_env``), so that a webhook
    secret stays out of the file; ``include_text`` adds prompt/response excerpts that a
    finding carries (off by default: a chat channel is not the place for user text)."""

    url: str | None = None
    url_env: str | None = None
    format: Literal["slack", "json"] = "slack"
    include_text: bool = False
    commands: list[Literal["report", "eval", "drift"]] = Field(
        default_factory=lambda: ["report", "eval", "drift"]  # type: ignore[arg-type]
    )


class MonitorConfig(Section):
    """``monitor:``: anytime-valid nightly monitoring of ``eval`` and ``drift``."""

    state_dir: str | None = None
    alpha: float = Field(default=0.01, gt=0, lt=1)


class EngineConfig(Section):
    """``engine:``: where aggregating commands run (see docs/engines.md)."""

    name: Literal["local", "spark", "ray"] = "local"
    spark_master: str | None = None
    spark_remote: str | None = None
    ray_address: str | None = None


class Config(Section):
    """The whole ``llmobs.yaml``."""

    version: int = 1
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    report: ReportConfig = Field(default_factory=ReportConfig)
    prices: PricesConfig = Field(default_factory=PricesConfig)
    refusals: RefusalsConfig = Field(default_factory=RefusalsConfig)
    alerts: list[str | AlertRule] = Field(default_factory=list)
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    sample: SampleConfig = Field(default_factory=SampleConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)
    engine: EngineConfig = Field(default_factory=EngineConfig)

    source: str | None = Field(default=None, exclude=True)

    @classmethod
    def load(cls, path: str | Path | None = None) -> Config:
        """``path`` (a ``llmobs.yaml``), else ``./llmobs.yaml`` when present, else the
        defaults — what every command does with ``--config``. Raises :class:`ConfigError`."""
        return load_config(path)

    def high_stakes_routes(self) -> set[str]:
        return {name for name, r in self.routes.items() if r.stakes == "high"}

    def alert_rules(self) -> list[str]:
        return [a if isinstance(a, str) else a.rule for a in self.alerts]


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys the section at ``loc`` (a path of keys) accepts, for "did you mean"."""
    import typing

    model: Any = Config
    for part in loc:
        fields = getattr(model, "model_fields", None)
        if fields is None:
            # dict[str, Model] or list[Model]: this part is a user key or an index.
            args = [a for a in typing.get_args(model) if hasattr(a, "model_fields")]
            model = args[-1] if args else None
            if model is None:
                return []
            continue
        if part not in fields:
            return []
        model = fields[part].annotation
    fields = getattr(model, "model_fields", {}) or {}
    return [k for k, f in fields.items() if not f.exclude]


def _describe(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        loc = tuple(err.get("loc") or ())
        known = _keys_at(loc[:-1])
        if not known:
            return "unknown key"
        from llmobs_cli.core.record.names import suggestions

        close = suggestions(str(loc[-1]), known)
        hint = ("did you mean " + " or ".join(f"'{c}'" for c in close) + "? ") if close else ""
        return f"unknown key ({hint}known: {', '.join(known)})"
    msg = str(err.get("msg", "invalid value"))
    value = err.get("input")
    if kind != "missing" and not isinstance(value, (dict, list)):
        return f"{msg[0].lower()}{msg[1:]} (got {value!r})"
    return msg[0].lower() + msg[1:]


def parse_config(data: Any, source: str) -> Config:
    """Validate a parsed YAML document; ``source`` names the file in messages."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("function-", "str")))
        loc = loc.replace(".AlertRule", "")
        extra = len(exc.errors()) - 1
        more = f" (and {extra} more problem(s))" if extra else ""
        raise ConfigError(f"{source}: {loc or '(top)'}: {_describe(dict(first))}{more}") from exc
    cfg.source = source
    return cfg


def load_config(path: str | Path | None, cwd: Path | None = None) -> Config:
    """Load ``path``, else ``./llmobs.yaml`` if present, else the defaults."""
    if path is None:
        candidate = (cwd or Path.cwd()) / DEFAULT_NAME
        if not candidate.exists():
            return Config()
        path = candidate
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: configuration file not found")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read configuration ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{p}{where}: invalid YAML ({problem})") from exc
    return parse_config(data, str(p))
