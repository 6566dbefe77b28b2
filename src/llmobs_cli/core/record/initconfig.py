"""The starter ``llmobs.yaml`` (a copy of the documented default ``configs/llmobs.yaml``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from llmobs_cli.core import atomic
from llmobs_cli.core.record.config import parse_config
from llmobs_cli.errors import UsageError
from llmobs_cli.resources import config_file


def starter_text() -> str:
    return config_file("llmobs.yaml").read_text(encoding="utf-8")


def write_starter(path: Path, force: bool = False) -> None:
    from llmobs_cli.core.outputs import check_file_output

    check_file_output(
        Path(path), example="llmobs.yaml"
    )  # a directory (init --force .) is exit 2, not a crash
    if path.exists() and not force:
        raise UsageError(f"{path}: already exists (use --force to overwrite)")
    text = starter_text()
    parse_config(yaml.safe_load(text), str(path))  # the shipped default must stay valid
    atomic.write_text(path, text)
