"""``llmobs init``: write a starter ``llmobs.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmobs_cli.cli import common
from llmobs_cli.core.record.initconfig import write_starter


def register(app: typer.Typer) -> None:
    app.command("init", help="Write a starter llmobs.yaml (the documented defaults).")(init_cmd)


def init_cmd(
    path: Annotated[Path, typer.Argument(help="Where to write it.")] = Path("llmobs.yaml"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Copy the commented default configuration to PATH."""
    write_starter(path, force=force)
    common.warn(f"wrote {path}; edit routes, alerts and the judge, then run: llmobs report TRACES")
