"""``docs/python-api.md`` is executed: every ```python block runs, in order, in one
namespace (in a scratch directory holding the sample traces and the test helpers), and a
```text block right after a python block must be exactly what that block printed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "python-api.md"
BLOCK = re.compile(r"```(python|text)\n(.*?)```", re.S)


def blocks() -> list[tuple[str, str | None]]:
    """``(code, expected output or None)`` per python block."""
    found = BLOCK.findall(DOC.read_text(encoding="utf-8"))
    out: list[tuple[str, str | None]] = []
    for i, (kind, body) in enumerate(found):
        if kind != "python":
            continue
        nxt = found[i + 1] if i + 1 < len(found) else None
        out.append((body, nxt[1] if nxt and nxt[0] == "text" else None))
    return out


def test_every_python_example_runs_and_prints_what_the_page_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sample_traces").symlink_to(ROOT / "sample_traces")
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setattr("sys.path", list(__import__("sys").path))
    examples = blocks()
    assert len(examples) >= 7
    namespace: dict[str, object] = {"__name__": "docs_example"}
    for n, (code, expected) in enumerate(examples, start=1):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"{DOC.name} example {n}", "exec"), namespace)
        if expected is not None:
            assert buf.getvalue() == expected, f"example {n} printed:\n{buf.getvalue()}"
    assert (tmp_path / "dashboard.html").stat().st_size > 100_000
