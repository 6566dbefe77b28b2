"""Report options: ``llmobs.yaml``'s ``report``/``prices``/``refusals``/``alerts`` sections
merged with per-call overrides, in one place for the CLI and the Python API.

:meth:`ReportOptions.from_config` resolves everything a report needs before any row is
read (grouping fields, time step, gate rules, the price table, refusal patterns,
percentiles), so bad options fail fast; :meth:`ReportOptions.run_kwargs` gives the keyword
arguments of :func:`llmobs_cli.core.report.engine.run_report` /
:func:`~llmobs_cli.core.report.engine.build_report`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmobs_cli.core.record.config import Config
    from llmobs_cli.core.report.gates import Rule
    from llmobs_cli.core.report.pricing import PriceTable


@dataclass
class ReportOptions:
    """What a report computes (see :meth:`from_config`)."""

    by: list[str]
    bucket: str | None
    rules: list[Rule]
    prices: PriceTable
    refusal_patterns: list[str]
    quantiles: tuple[float, ...]

    @classmethod
    def from_config(
        cls,
        cfg: Config,
        *,
        by: str | Sequence[str] | None = None,
        bucket: str | None = None,
        fail_on: Sequence[str] = (),
        prices: Sequence[str | Path] = (),
    ) -> ReportOptions:
        """``by`` (a list or ``"route,model"``) defaults to ``report.by``; ``bucket`` to
        ``report.bucket``; ``fail_on`` rules come before the configured ``alerts``; price
        files in ``prices`` override the configured and shipped prices."""
        from llmobs_cli.core.record.fields import parse_fields
        from llmobs_cli.core.report import gates, pricing
        from llmobs_cli.core.report.refusals import patterns_from_config

        source = cfg.source or "llmobs.yaml"
        if by is None:
            fields = parse_fields(",".join(cfg.report.by), "report.by")
        elif isinstance(by, str):
            fields = parse_fields(by, "by")
        else:
            fields = parse_fields(",".join(by), "by")
        rules = gates.parse_rules(fail_on, cfg.alerts, source)
        table = pricing.config_price_table(cfg, list(prices))
        return cls(
            by=fields,
            bucket=bucket if bucket is not None else cfg.report.bucket,
            rules=rules,
            prices=table,
            refusal_patterns=patterns_from_config(cfg.refusals, source),
            quantiles=tuple(cfg.report.percentiles),
        )

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by ``run_report`` and ``build_report``."""
        return {
            "by": self.by,
            "bucket": self.bucket,
            "prices": self.prices,
            "refusal_patterns": self.refusal_patterns,
            "quantiles": self.quantiles,
            "rules": self.rules,
        }
