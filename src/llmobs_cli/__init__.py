"""llmobs: LLM observability over trace files (JSONL, Parquet, OTLP, Langfuse, ...).

The package is split into a pure core (``llmobs_cli.core``: no typer, rich, print,
exit or environment reads), renderers (``llmobs_cli.render``) and a thin Typer CLI
(``llmobs_cli.cli``) that parses options, makes one core call and renders the result.
"""

__version__ = "0.1.0"
