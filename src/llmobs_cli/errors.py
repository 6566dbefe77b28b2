"""Typed errors. The CLI's single error boundary turns them into an exit code and one line.

* :class:`UsageError`, :class:`ConfigError`, :class:`InputError` → exit 2
* :class:`ServiceError` → exit 3 (an external service failed after retries; partial work kept)
* :class:`Interrupted` → exit 130 (SIGINT/SIGTERM; complete work written, nothing half-written)

Anything else escaping a command is a bug in llmobs: exit 70 with one line asking for a
report (``--debug`` shows the traceback).

Core code raises these and never prints or exits; messages are complete sentences a
user can act on, naming the file, the line (JSONL) and the field where there is one.
"""

from __future__ import annotations

from collections.abc import Sequence


class LlmobsError(Exception):
    """Base of every error llmobs reports to a user without a traceback."""

    exit_code: int = 2

    def lines(self) -> list[str]:
        """The lines to print on stderr (the first is the headline)."""
        return [str(self)]


class UsageError(LlmobsError):
    """Bad command-line usage: an option value that cannot work."""


class ConfigError(LlmobsError):
    """A configuration file that is missing, unreadable or invalid."""


class InputError(LlmobsError):
    """Trace input that cannot be read or does not follow the record contract.

    ``problems`` holds one ``file:line: field: problem`` string per problem found (the
    caller keeps at most the first few); ``total`` counts all of them.
    """

    def __init__(self, problems: Sequence[str], total: int | None = None) -> None:
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        super().__init__(self.problems[0] if self.problems else "invalid input")

    def lines(self) -> list[str]:
        out = list(self.problems)
        hidden = self.total - len(self.problems)
        if hidden > 0:
            out.append(f"... and {hidden} more problem(s)")
        return out


class ServiceError(LlmobsError):
    """An external service (the judge endpoint) failed after retries."""

    exit_code = 3


class Interrupted(LlmobsError):
    """The run was interrupted (SIGINT/SIGTERM) and stopped cleanly: exit 130.

    Raise it (instead of letting ``KeyboardInterrupt`` through) when there is more to say
    than the default line, e.g. where partial work was kept and how to resume.
    """

    exit_code = 130


class InputWarning(UserWarning):
    """Input read, but with something a user should know (a file that gave no record,
    the same call read twice and counted once, unfinished span copies skipped).

    Core code issues it with :func:`warnings.warn`; the CLI prints it as one
    ``warning: …`` line on stderr, a notebook shows it as any other warning.
    """
