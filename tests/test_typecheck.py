"""mypy passes: strict on ``llmobs_cli.core``, normal elsewhere (``[tool.mypy]`` in
pyproject.toml). Runs mypy's own entry point on the package, with its incremental cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml")])
    assert status == 0, out + err
