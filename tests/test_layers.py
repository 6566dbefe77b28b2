"""The layers hold: nothing under ``llmobs_cli.core`` imports typer or rich, reads the
environment, prints or exits; the core imports neither the CLI nor the renderers
(an AST scan of the source, so a lazy import inside a function counts too)."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "src" / "llmobs_cli" / "core"
FORBIDDEN_MODULES = ("typer", "rich", "click", "llmobs_cli.cli", "llmobs_cli.render")


def _violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[str] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES):
                found.append(f"{path.name}:{node.lineno}: imports {name}")
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
            found.append(f"{path.name}:{node.lineno}: reads the environment (.{node.attr})")
        if isinstance(node, ast.ImportFrom) and node.module == "os":
            bad = [a.name for a in node.names if a.name in ("environ", "getenv")]
            if bad:
                found.append(f"{path.name}:{node.lineno}: imports os.{bad[0]}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("print", "exit", "quit")
        ):
            found.append(f"{path.name}:{node.lineno}: calls {node.func.id}()")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "exit"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "sys"
        ):
            found.append(f"{path.name}:{node.lineno}: calls sys.exit()")
    return found


def test_the_core_is_pure() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 40
    problems = [v for f in files for v in _violations(f)]
    assert problems == []


def test_the_scan_sees_what_it_forbids(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\nfrom rich.console import Console\n"
        "def f():\n    import typer\n    print(os.environ.get('X'), os.getenv('Y'))\n"
    )
    found = _violations(bad)
    assert len(found) == 5, found
