"""llmobs: LLM observability over trace files (JSONL, Parquet, OTLP, Langfuse, ...).

The public Python API (see ``docs/python-api.md``)::

    import llmobs_cli as L

    traces = L.load("traces.parquet")
    rep = L.report(traces, by="route,model")
    print(rep.overall["cost_usd"], rep.to_frame())

Every entry point takes ``(source, *, config=None, window=None, ...)`` with the CLI's
defaults and returns a typed result (:mod:`llmobs_cli.api`). Names are imported on first
use, so ``import llmobs_cli`` stays fast.

The package is split into a pure core (``llmobs_cli.core``: no typer, rich, print,
exit or environment reads), renderers (``llmobs_cli.render``) and a thin Typer CLI
(``llmobs_cli.cli``) that parses options, makes one core call and renders the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

__all__ = [
    "Config",
    "ConfigError",
    "DashboardResult",
    "DriftResult",
    "DriftSpec",
    "EvalResult",
    "EvalSummaryResult",
    "InputError",
    "LlmobsError",
    "RegressionSpec",
    "ReportResult",
    "SampleResult",
    "ServiceError",
    "Traces",
    "UsageError",
    "Window",
    "__version__",
    "dashboard",
    "drift",
    "evaluate",
    "generate",
    "load",
    "report",
    "sample",
    "summarize_evals",
]

#: Where each lazily imported public name lives.
_HOME = {
    "ConfigError": "llmobs_cli.errors",
    "InputError": "llmobs_cli.errors",
    "LlmobsError": "llmobs_cli.errors",
    "ServiceError": "llmobs_cli.errors",
    "UsageError": "llmobs_cli.errors",
    "DriftSpec": "llmobs_cli.core.synth.generate",
    "RegressionSpec": "llmobs_cli.core.synth.generate",
}

if TYPE_CHECKING:
    from llmobs_cli.api import (
        Config,
        DashboardResult,
        DriftResult,
        EvalResult,
        EvalSummaryResult,
        ReportResult,
        SampleResult,
        Traces,
        Window,
        dashboard,
        drift,
        evaluate,
        generate,
        load,
        report,
        sample,
        summarize_evals,
    )
    from llmobs_cli.core.synth.generate import DriftSpec, RegressionSpec
    from llmobs_cli.errors import (
        ConfigError,
        InputError,
        LlmobsError,
        ServiceError,
        UsageError,
    )


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'llmobs_cli' has no attribute '{name}'")
    import importlib

    module = importlib.import_module(_HOME.get(name, "llmobs_cli.api"))
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
