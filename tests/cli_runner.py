"""The CLI run in-process through its console entry point (error boundary included), for
tests that check exit codes and output without a subprocess."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from llmobs_cli.cli.app import main


def run_cli(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``llmobs ARGS...`` run in ``cwd`` (restored after); a
    ``SystemExit`` with a message counts as exit 1, as it does for a real process."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()
