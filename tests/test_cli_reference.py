"""docs/cli.md is generated from --help; it must not go stale."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_cli_reference_is_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location(
        "cli_reference", ROOT / "scripts" / "cli_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == module.render(), "docs/cli.md is stale: run python scripts/cli_reference.py"


def test_every_command_is_documented() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    for cmd in (
        "validate",
        "convert",
        "generate",
        "init",
        "report",
        "eval",
        "review",
        "drift",
        "sample",
        "dashboard",
    ):
        assert f"## `llmobs {cmd}`" in text
