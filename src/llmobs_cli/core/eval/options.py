"""Eval options and results: what a run is asked to do (:class:`EvalOptions`, built from
``llmobs.yaml`` plus overrides by :meth:`EvalOptions.from_config`) and what it returns
(:class:`EvalRun`, :class:`EvalSummary`, :class:`JudgeStats`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from llmobs_cli.core.eval import regression as reg
from llmobs_cli.core.eval.judges.capabilities import ModelCatalog
from llmobs_cli.core.eval.judges.client import ClientSettings
from llmobs_cli.core.eval.judges.prompts import BUILTIN, Criterion, builtin_criterion
from llmobs_cli.core.eval.judgments import HUMAN, REFERENCE, SELF_CONSISTENCY
from llmobs_cli.core.eval.plan import Plan
from llmobs_cli.core.signals.sessions import SESSION_CRITERIA
from llmobs_cli.errors import UsageError

if TYPE_CHECKING:
    from llmobs_cli.core.record.config import Config
    from llmobs_cli.core.report.pricing import PriceTable


@dataclass
class EvalOptions:
    by: list[str] = field(default_factory=lambda: ["route"])
    budget: int = 200
    route_budgets: dict[str, int] = field(default_factory=dict)
    high_stakes: set[str] = field(default_factory=set)
    allocation: Literal["equal", "neyman"] = "equal"
    evaluators: list[str] = field(
        default_factory=lambda: ["relevance", "faithfulness", "completeness", REFERENCE]
    )
    criteria: dict[str, Criterion] = field(default_factory=dict)  # custom + overrides
    reference_method: str = "token_f1"
    numeric_tolerance: float = 0.01
    self_consistency: bool = False
    sc_samples: int = 3
    sc_temperature: float = 0.7
    sc_model: str | None = None
    sc_base_url: str | None = None
    sc_threshold: float = 0.5
    judge_model: str = "gpt-4o-mini"
    client: ClientSettings = field(default_factory=ClientSettings)
    current: str | None = None
    baseline: str | None = None
    since: str | None = None
    until: str | None = None
    now: str | None = None
    min_drop: float = 0.05
    alpha: float = 0.05
    bucket: str | None = None
    borderline: tuple[float, float] = (0.4, 0.6)
    dry_run: bool = False
    keep_text: bool = True
    #: ``call`` judges calls; ``session`` whole conversations (core/eval/session_unit)
    unit: Literal["call", "session"] = "call"
    #: token budget of a judged conversation (oldest turns dropped beyond it)
    session_tokens: int = 6000
    #: prices and refused parameters per model (None: the shipped price table)
    catalog: ModelCatalog | None = None

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        by: Sequence[str] | None = None,
        budget: int | None = None,
        max_cost: float | None = None,
        dry_run: bool = False,
        current: str | None = None,
        baseline: str | None = None,
        base_url: str | None = None,
        judge_model: str | None = None,
        concurrency: int | None = None,
        evaluators: str | Sequence[str] | None = None,
        self_consistency: bool | None = None,
        allocation: Literal["equal", "neyman"] | None = None,
        min_drop: float | None = None,
        bucket: str | None = None,
        since: str | None = None,
        until: str | None = None,
        now: str | None = None,
        fallback_base_url: str | None = None,
    ) -> EvalOptions:
        """Options from ``llmobs.yaml``'s ``judge``/``eval`` sections, each overridden by the
        argument of the same name when it is not ``None``.

        ``by`` defaults to ``eval.by``; ``evaluators`` (a list or a comma-separated string)
        to ``eval.evaluators`` plus every criterion configured under ``eval.criteria``.
        Judge prices come from ``judge.*_price_per_million``, else the price table; a
        ``max_cost`` without a price is a :class:`UsageError`. The judge endpoint is
        ``base_url``, else ``judge.base_url``, else ``fallback_base_url`` (the CLI passes
        ``OPENAI_BASE_URL`` there: the core reads no environment). Relative criterion prompt
        paths resolve against the configuration file's directory.
        """
        from llmobs_cli.core.eval.judges.prompts import load_criterion
        from llmobs_cli.core.record.fields import parse_fields
        from llmobs_cli.core.report import pricing

        j, e = cfg.judge, cfg.eval
        fields = (list(by) if by is not None else parse_fields(",".join(e.by), "eval.by")) or [
            "route"
        ]
        model = judge_model or j.model
        table = pricing.config_price_table(cfg)
        pin, pout = judge_prices(cfg, model, table)
        cap = max_cost if max_cost is not None else j.max_cost_usd
        if (pin is None or pout is None) and cap is not None:
            raise UsageError(
                f"max_cost: no price for judge model '{model}' (set "
                "judge.input_price_per_million and judge.output_price_per_million in llmobs.yaml)",
                param="max_cost",
            )
        base = Path(cfg.source).parent if cfg.source else Path.cwd()
        criteria = {
            name: load_criterion(
                (base / c.prompt) if not Path(c.prompt).is_absolute() else Path(c.prompt),
                name=name,
                applies_to=c.applies_to,
            )
            for name, c in e.criteria.items()
        }
        if not evaluators:
            names = list(e.evaluators)
        elif isinstance(evaluators, str):
            names = [s.strip() for s in evaluators.split(",") if s.strip()]
        else:
            names = [str(s) for s in evaluators]
        for name in criteria:
            if name not in names and evaluators is None:
                names.append(name)  # a criterion configured in eval.criteria is used by default
        sc = e.self_consistency
        return cls(
            by=fields,
            budget=budget or e.budget,
            route_budgets={
                r: rc.eval_budget for r, rc in cfg.routes.items() if rc.eval_budget is not None
            },
            high_stakes=cfg.high_stakes_routes(),
            allocation=allocation or e.allocation,
            evaluators=names,
            criteria=criteria,
            reference_method=e.reference.method,
            numeric_tolerance=e.reference.numeric_tolerance,
            self_consistency=sc.enabled if self_consistency is None else self_consistency,
            sc_samples=sc.samples,
            sc_temperature=sc.temperature,
            sc_model=sc.model,
            sc_base_url=sc.base_url,
            sc_threshold=sc.disagreement_threshold,
            judge_model=model,
            client=ClientSettings(
                # resolved here (not left to the openai client) so the cache key names the
                # endpoint without creating a client
                base_url=base_url or j.base_url or fallback_base_url or None,
                timeout_s=j.timeout_s,
                max_retries=j.max_retries,
                concurrency=concurrency or j.concurrency,
                backoff_base_s=j.backoff_base_s,
                backoff_max_s=j.backoff_max_s,
                wait_budget_s=j.wait_budget_s,
                connect_timeout_s=j.connect_timeout_s,
                breaker_failures=j.breaker_failures,
                breaker_s=j.breaker_s,
                fail_first=j.fail_first,
                max_failure_rate=j.max_failure_rate,
                input_price_per_million=pin or 0.0,
                output_price_per_million=pout or 0.0,
                max_cost_usd=cap,
            ),
            current=current,
            baseline=baseline,
            since=since,
            until=until,
            now=now,
            min_drop=min_drop if min_drop is not None else e.min_drop,
            alpha=e.alpha,
            bucket=bucket or e.bucket,
            borderline=e.borderline,
            dry_run=dry_run,
            catalog=ModelCatalog(table),
        )


def judge_prices(
    cfg: Config, model: str, table: PriceTable | None = None
) -> tuple[float | None, float | None]:
    """USD per million input and output tokens of the judge ``model``: ``judge.*_price_per_million``
    of ``cfg``, each missing one from the price table (``table``, else the one ``cfg`` makes)."""
    from llmobs_cli.core.report import pricing

    j = cfg.judge
    pin, pout = j.input_price_per_million, j.output_price_per_million
    if pin is None or pout is None:
        prices = table if table is not None else pricing.config_price_table(cfg)
        entries = prices.resolve(model, None)
        if entries:
            pin = entries[-1].input if pin is None else pin
            pout = entries[-1].output if pout is None else pout
    return pin, pout


@dataclass
class JudgeStats:
    calls: int = 0
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    cost_usd: float = 0.0
    model: str = ""
    mode: str = "json_schema"
    #: the judge model has no price: its calls count as $0 in ``cost_usd``
    unpriced: bool = False
    #: every model called without a price (the judge, self-consistency models)
    unpriced_models: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "cached": self.cached,
            "failed": self.failed,
            "skipped": self.skipped,
            "cost_usd": round(self.cost_usd, 6),
            "model": self.model,
            "response_format": self.mode,
            "unpriced": self.unpriced,
            "unpriced_models": list(self.unpriced_models),
        }


@dataclass
class EvalSummary:
    by: list[str]
    groups: list[dict[str, Any]]
    baseline_groups: list[dict[str, Any]] = field(default_factory=list)
    overall: list[dict[str, Any]] = field(default_factory=list)
    tests: list[reg.Comparison] = field(default_factory=list)
    buckets: list[dict[str, Any]] = field(default_factory=list)
    agreement: list[dict[str, Any]] = field(default_factory=list)
    judge: JudgeStats = field(default_factory=JudgeStats)
    windows: dict[str, Any] = field(default_factory=dict)
    plan: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: session heuristics per group (``--unit session`` only)
    sessions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regressions(self) -> list[reg.Comparison]:
        return [t for t in self.tests if t.regression]

    def as_dict(self) -> dict[str, Any]:
        return {
            "windows": self.windows,
            "by": self.by,
            "groups": self.groups,
            "baseline_groups": self.baseline_groups,
            "overall": self.overall,
            "regressions": [t.as_dict() for t in self.regressions],
            "tests": [t.as_dict() for t in self.tests],
            "buckets": self.buckets,
            "agreement": self.agreement,
            "judge": self.judge.as_dict(),
            "plan": self.plan,
            "notes": self.notes,
        } | ({"sessions": self.sessions} if self.sessions else {})


@dataclass
class EvalRun:
    frame: pl.DataFrame  # one row per judgment (JUDGMENT_SCHEMA)
    summary: EvalSummary
    plans: list[Plan]
    fatal: str | None = None  # the judge endpoint failed for good (exit 3)
    stopped: str | None = None  # stopped early by the cost cap (max_cost)
    dry_run: bool = False
    skipped: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    price_known: bool = True
    interrupted: bool = False  # SIGINT/SIGTERM: the judgments so far, the rest not made
    cache_dir: str | None = None  # where the judgments are cached (a rerun resumes)
    kept: int = 0  # successful judgments of this run, all in the cache


# --- criteria ----------------------------------------------------------------------------


def resolve_criteria(
    evaluators: Sequence[str], custom: dict[str, Criterion]
) -> dict[str, Criterion]:
    """The LLM criteria among ``evaluators`` (custom ones override the shipped ones)."""
    out: dict[str, Criterion] = {}
    for name in evaluators:
        if name in (REFERENCE, SELF_CONSISTENCY, HUMAN):
            continue
        if name in custom:
            out[name] = custom[name]
        elif name in BUILTIN or name in SESSION_CRITERIA:
            out[name] = builtin_criterion(name)
        else:
            from llmobs_cli.core.record.names import unknown

            known = [*BUILTIN, *SESSION_CRITERIA, REFERENCE, SELF_CONSISTENCY, *custom]
            raise unknown(
                "evaluators/eval.evaluators",
                "evaluator",
                name,
                known,
                extra="add your own under eval.criteria",
                limit=len(known),
            )
    return out
