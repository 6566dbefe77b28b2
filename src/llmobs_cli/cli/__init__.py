"""The command line (Typer). Importing it tunes Polars' allocator for this process
(:func:`llmobs_cli.environment.tune_allocator`) before any module imports Polars."""

from llmobs_cli.environment import tune_allocator

tune_allocator()
