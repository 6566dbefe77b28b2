"""Typed errors. The CLI's single error boundary turns them into an exit code and one line.

* :class:`UsageError`, :class:`ConfigError`, :class:`InputError` → exit 2
* :class:`ServiceError` → exit 3 (an external service failed after retries; partial work kept)
* :class:`Interrupted` → exit 130 (SIGINT/SIGTERM; complete work written, nothing half-written)

Anything else escaping a command is a bug in llmobs: exit 70 with one line asking for a
report (``--debug`` shows the traceback).

Core code raises these and never prints or exits; messages are complete sentences a
user can act on, naming the file, the line (JSONL) and the field where there is one.

An error about an argument names it the way the Python API does: ``param`` holds the
parameter's name (``"since"``, ``"max_cost"``) and the message starts with ``"<param>: "``.
The CLI's error boundary shows that prefix as the command-line flag instead
(:func:`flag_for`: ``since`` → ``--since``), so a library user reads the name they passed
and a CLI user the flag they typed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


class LlmobsError(Exception):
    """Base of every error llmobs reports to a user without a traceback."""

    exit_code: int = 2

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        #: The parameter at fault (its message starts with ``"<param>: "``), if any.
        self.param = param

    def lines(self) -> list[str]:
        """The lines to print on stderr (the first is the headline)."""
        return [str(self)]

    def cli_lines(self) -> list[str]:
        """:meth:`lines` with the parameter prefix shown as its command-line flag."""
        out = self.lines()
        if self.param and out and out[0].startswith(self.param):
            out[0] = flag_for(self.param) + out[0][len(self.param) :]
        return out


class UsageError(LlmobsError):
    """Bad command-line usage: an option value that cannot work."""


class ConfigError(LlmobsError):
    """A configuration file that is missing, unreadable or invalid."""


class InputError(LlmobsError):
    """Trace input that cannot be read or does not follow the record contract.

    ``problems`` holds one ``file:line: field: problem`` string per problem found (the
    caller keeps at most the first few); ``total`` counts all of them.
    """

    def __init__(
        self, problems: Sequence[str], total: int | None = None, *, param: str | None = None
    ) -> None:
        self.problems = list(problems)
        self.total = len(self.problems) if total is None else total
        super().__init__(self.problems[0] if self.problems else "invalid input", param=param)

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


#: Parameters whose command-line flag is not ``--`` + the name with dashes.
FLAGS: dict[str, str] = {
    "format": "--from",  # the input format (``--format`` is the output format)
    "fmt": "--from",
    "rates": "--rate",
}
_PARAM = re.compile(r"[a-z][a-z0-9_]*")


def flag_for(param: str) -> str:
    """The command-line flag of a parameter name (``max_cost`` → ``--max-cost``).

    A prefix that is not a plain name (a configuration key such as ``eval.by``, or a name
    followed by a qualifier such as ``rate chat``) keeps its qualifier after the flag."""
    name, sep, rest = param.partition(" ")
    name, slash, alias = name.partition("/")  # ``evaluators/eval.evaluators``
    if not _PARAM.fullmatch(name):
        return param
    flag = FLAGS.get(name, "--" + name.replace("_", "-"))
    return flag + slash + alias + sep + rest


class InputWarning(UserWarning):
    """Input read, but with something a user should know (a file that gave no record,
    the same call read twice and counted once, unfinished span copies skipped).

    Core code issues it with :func:`warnings.warn`; the CLI prints it as one
    ``warning: …`` line on stderr, a notebook shows it as any other warning.
    """
