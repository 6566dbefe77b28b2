"""Regenerate docs/cli.md, the CLI reference, from the commands' own --help.

Run ``python scripts/cli_reference.py`` after changing any option or help text;
``tests/test_cli_reference.py`` fails when docs/cli.md is stale.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]


def commands() -> list[list[str]]:
    """The root, then every command in the order ``llmobs --help`` lists them, with
    ``eval summarize`` after ``eval``."""
    from llmobs_cli.cli.helpfmt import ORDER

    out: list[list[str]] = [[]]
    for name in ORDER:
        out.append([name])
        if name == "eval":
            out.append(["eval", "summarize"])
    return out


def help_text(args: list[str]) -> str:
    from llmobs_cli.cli.app import app

    runner = CliRunner()
    env = {
        "COLUMNS": "100",
        "NO_COLOR": "1",
        "TERM": "dumb",
        "_TYPER_FORCE_DISABLE_TERMINAL": "1",
    }
    from llmobs_cli.cli.helpfmt import help_args

    result = runner.invoke(app, help_args([*args, "--help"]), env=env, prog_name="llmobs")
    return "\n".join(line.rstrip() for line in result.output.splitlines()).strip()


def render() -> str:
    parts = [
        "# CLI reference",
        "",
        "Generated from each command's `--help` by `scripts/cli_reference.py`;"
        " do not edit by hand.",
        "",
    ]
    for args in commands():
        title = "llmobs " + " ".join(args) if args else "llmobs"
        parts += [f"## `{title.strip()}`", "", "```text", help_text(args), "```", ""]
    return "\n".join(parts)


def main() -> None:
    os.environ.setdefault("COLUMNS", "100")
    out = ROOT / "docs" / "cli.md"
    out.write_text(render(), encoding="utf-8")
    sys.stderr.write(f"wrote {out}\n")


if __name__ == "__main__":
    main()
