"""Help reads like the README: capitalised arguments, no Python types, option panels, an
Examples epilog on every command, commands by importance, summarize's own help."""

from __future__ import annotations

import re

import pytest

from llmobs_cli.cli.helpfmt import ORDER
from test_eval_support import run_cli

COMMANDS = [[name] for name in ORDER] + [["eval", "summarize"]]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_help_has_no_python_types_and_has_examples(args: list[str]) -> None:
    res = run_cli(*args, "--help", env={"COLUMNS": "100"})
    assert res.returncode == 0, res.stderr
    out = res.stdout
    for bad in ("<bool>", "<str>", "list[", "<path>", "<int>", "<float>"):
        assert bad not in out, f"{bad} in llmobs {' '.join(args)} --help"
    usage = next(ln for ln in out.splitlines() if "Usage:" in ln)
    assert "{" not in usage
    assert "Examples:" in out
    assert re.search(r"llmobs " + re.escape(args[0]), out.split("Examples:")[1])


def test_usage_lines_and_panels() -> None:
    out = run_cli("report", "--help", env={"COLUMNS": "100"}).stdout
    assert "Usage: llmobs report [OPTIONS] TRACES..." in out
    for panel in ("Input", "Window", "Output", "Table"):
        assert f"─ {panel} ─" in out
    show = run_cli("show", "--help", env={"COLUMNS": "100"}).stdout
    assert "Usage: llmobs show [OPTIONS] TRACE_ID [TRACES]..." in show


def test_commands_listed_by_importance() -> None:
    out = run_cli("--help", env={"COLUMNS": "100"}).stdout
    listed = re.findall(r"^│ (\w+) ", out, flags=re.M)
    names = [n for n in listed if n in ORDER]
    assert names[:6] == ["report", "eval", "drift", "dashboard", "calls", "show"]
    assert "--install-completion" in out


def test_eval_summarize_help_is_its_own() -> None:
    out = run_cli("eval", "summarize", "x.parquet", "--help", env={"COLUMNS": "100"}).stdout
    assert "Usage: llmobs eval summarize [OPTIONS] EVALS..." in out
    assert "--budget" not in out and "--min-drop" in out


@pytest.mark.parametrize("command", ["report", "drift", "dashboard", "sample"])
def test_engine_help_names_the_extras_with_their_brackets(command: str) -> None:
    """Square brackets in help text are Rich markup unless escaped: the extras' names
    (``llmobs[spark]``) must reach the reader whole."""
    res = run_cli(command, "--help", env={"COLUMNS": "250"})
    text = " ".join(res.stdout.split())
    assert 'pip install "llmobs[spark]" / "llmobs[ray]"' in text
