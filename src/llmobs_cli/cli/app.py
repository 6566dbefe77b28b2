"""The ``llmobs`` command line: one Typer app, one module per command, one error boundary.

Every command module exposes ``register(app)``. :func:`main` is the console script: it
runs the app and turns typed errors into an exit code and one clear line on stderr
(``--debug`` or ``LLMOBS_DEBUG=1`` shows the traceback instead).
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from llmobs_cli import __version__
from llmobs_cli.cli import (
    calls,
    convert,
    dashboard,
    drift,
    evaluate,
    export,
    generate,
    helpfmt,
    init,
    plan,
    report,
    review,
    sample,
    show,
    validate,
)
from llmobs_cli.errors import InputError, InputWarning, LlmobsError

#: Exit code for a bug in llmobs itself (not a gate, not bad input): BSD's EX_SOFTWARE.
EXIT_INTERNAL = 70
#: Exit code after SIGINT or SIGTERM (128 + SIGINT, as shells report Ctrl-C).
EXIT_INTERRUPTED = 130
INTERRUPTED = "llmobs: interrupted; nothing was half-written (every output is complete or absent)"

app = typer.Typer(
    name="llmobs",
    help=(
        "LLM observability over trace files: cost and latency, eval-in-prod, drift and a "
        "dashboard, weighted by each call's sample rate. Runs in cron or CI; no server."
    ),
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llmobs {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show tracebacks instead of one-line errors.")
    ] = False,
) -> None:
    """Exit codes: 0 ran, nothing fired; 1 a gate, alert, drift or regression fired;
    2 bad usage, configuration or input; 3 an external service failed after retries;
    130 interrupted (SIGINT/SIGTERM); 70 a bug in llmobs (please report it)."""


for _module in (
    validate,
    convert,
    generate,
    init,
    report,
    evaluate,
    plan,
    review,
    drift,
    sample,
    dashboard,
    calls,
    show,
    export,
):
    _module.register(app)

helpfmt.register_summarize_help(app)
helpfmt.install()
helpfmt.add_epilogs(app)
helpfmt.order(app)


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM (cron timeouts, ``kill``, CI cancellation) behaves exactly as Ctrl-C: the
    same unwinding, so temporary files are removed and nothing is left half-written."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Install :func:`_terminate` for the run (main thread only), then restore."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding application): leave it alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_input_warnings() -> None:
    """Input warnings from the core become ``warning: …`` lines on stderr, every time."""
    import warnings

    shown = warnings.showwarning
    if getattr(shown, "_llmobs", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if isinstance(category, type) and issubclass(category, InputWarning):
            sys.stderr.write(f"warning: {message}\n")
            return
        shown(message, category, filename, lineno, file, line)

    show._llmobs = True  # type: ignore[attr-defined]
    warnings.simplefilter("always", InputWarning)
    warnings.showwarning = show


def _os_error_line(exc: OSError) -> str:
    """``FILE: reason`` of an operating-system error, with what to do when a disk is full."""
    import errno

    where = f"{exc.filename}: " if exc.filename else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        reason += (
            " (large inputs keep temporary files under TMPDIR, removed at the end: point "
            "TMPDIR at a disk with room)"
        )
    return where + reason


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point with the single error boundary."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = os.environ.get("LLMOBS_DEBUG", "") not in ("", "0", "false") or "--debug" in args
    args = helpfmt.help_args([a for a in args if a != "--debug"])
    _print_input_warnings()
    try:
        with _sigterm_as_interrupt():
            # Outside standalone mode click returns (not raises) the code of typer.Exit(n);
            # Typer turns a KeyboardInterrupt inside a command into Exit(130), silently.
            code = app(args=args, prog_name="llmobs", standalone_mode=False)
        if code == EXIT_INTERRUPTED:
            sys.stderr.write(INTERRUPTED + "\n")
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:
        # Bad usage (unknown option, missing argument, invalid choice): exit 2.
        if debug:
            traceback.print_exc()
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            sys.stderr.write(f"llmobs: {exc.format_message()}\n")
        sys.exit(2)
    except LlmobsError as exc:
        if debug:
            traceback.print_exc()
        # Input problems read like compiler errors (file:line: field: problem); the rest
        # say who is speaking.
        prefix = "" if isinstance(exc, InputError) else "llmobs: "
        for line in exc.cli_lines():  # a parameter's name shown as its --flag
            sys.stderr.write(f"{prefix}{line}\n")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED + "\n")
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error of ours.
        sys.stderr.close()
        sys.exit(0)
    except OSError as exc:
        # The machine said no (a full disk under TMPDIR while spilling, a file that cannot
        # be written): one line naming the file and the reason, not an internal error.
        if debug:
            traceback.print_exc()
        sys.stderr.write(f"llmobs: {_os_error_line(exc)}\n")
        sys.exit(2)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        else:
            sys.stderr.write(
                f"llmobs: internal error: {type(exc).__name__}: {exc} "
                "(rerun with --debug for the traceback, and please report it)\n"
            )
        sys.exit(EXIT_INTERNAL)
    sys.exit(0)
