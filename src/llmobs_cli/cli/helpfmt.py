"""Help that reads like the README.

Typer prints Python types (``<list[str]>``, ``<bool>``) and a braced usage line
(``{traces}...``). :func:`install` adjusts how parameters describe themselves, once, for
every command: arguments are named in capitals (``TRACES...``, ``[TRACES]...``), flags
show no type, values show a word (``TEXT``, ``PATH``, ``INTEGER``, ``NUMBER``) or their
choices. :data:`EXAMPLES` gives every command an "Examples" epilog, and
:data:`ORDER` lists the commands by importance.

This touches Typer's parameter classes (not its behaviour: only what help prints), so
it is kept in this one module and checked by ``tests/test_help.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer import core as tcore

from llmobs_cli.cli import common

#: The commands in the order ``llmobs --help`` lists them (most used first).
ORDER = (
    "report",
    "eval",
    "drift",
    "dashboard",
    "calls",
    "show",
    "validate",
    "convert",
    "sample",
    "generate",
    "review",
    "export",
    "init",
)

_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "NUMBER",
    "Path": "PATH",
    "path": "PATH",
    "file": "FILE",
    "directory": "DIR",
    "datetime": "TIME",
}


def _friendly(label: str | None) -> str | None:
    """``<list[str]>`` → ``TEXT``; ``<a|b>`` → ``[a|b]``; ``<int range>`` → ``INTEGER``."""
    if label is None:
        return None
    inner = label[1:-1] if label.startswith("<") and label.endswith(">") else label
    while inner.startswith("list[") and inner.endswith("]"):
        inner = inner[5:-1]
    inner = inner.removesuffix(" range")
    if "|" in inner:
        return f"[{inner}]"
    return _WORDS.get(inner, inner.upper())


def install() -> None:
    """Make every Typer parameter describe itself in words (idempotent)."""
    if getattr(tcore, "_llmobs_help", False):
        return
    base_display = tcore._TyperParameter.display_type
    option_rich = tcore.TyperOption.display_type_rich

    def display_type(self: Any, ctx: Any) -> str | None:
        if getattr(self, "is_flag", False) and not getattr(self, "count", False):
            return None
        return _friendly(base_display(self, ctx))

    def option_display_rich(self: Any, ctx: Any) -> str | None:
        if self.metavar is not None:
            return option_rich(self, ctx)
        return display_type(self, ctx)

    def argument_display_rich(self: Any, ctx: Any) -> str | None:
        return None  # the capitalised name says it

    def usage_name(self: Any) -> str:
        name = self.display_name_raw.upper().removesuffix("...")
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def display_name_raw(self: Any) -> str:
        return self.metavar if self.metavar is not None else str(self.name).upper()

    tcore._TyperParameter.display_type = display_type  # type: ignore[method-assign]
    tcore.TyperOption.display_type_rich = option_display_rich  # type: ignore[method-assign]
    tcore.TyperArgument.display_type_rich = argument_display_rich  # type: ignore[method-assign]
    tcore.TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    tcore.TyperArgument.display_name_raw = property(display_name_raw)  # type: ignore[assignment,method-assign]
    tcore._llmobs_help = True  # type: ignore[attr-defined]


EXAMPLES: dict[str, str] = {
    "report": """\
  llmobs report traces.parquet
  llmobs report traces.parquet --by route,model --since 7d
  llmobs report traces.parquet --by customer_id --sort cost --top 10
  llmobs report traces.parquet --bucket day -o report.html
  llmobs report traces.parquet --fail-on "latency_ms.p99 > 2000"   # exit 1 in CI""",
    "eval": """\
  llmobs eval traces.parquet --dry-run                  # plan and cost, no judge call
  llmobs eval traces.parquet --budget 200 -o evals.parquet
  llmobs eval traces.parquet --baseline last_month --current last_week
  llmobs eval summarize evals.parquet --by route,model""",
    "drift": """\
  llmobs drift traces.parquet                           # last week vs the month before
  llmobs drift traces.parquet --features prompt_length,language,topic
  llmobs drift traces.parquet --baseline 2026-10-01..2026-11-01 --current 7d
  llmobs drift traces.parquet --by route -f markdown""",
    "dashboard": """\
  llmobs dashboard traces.parquet -o dashboard.html
  llmobs dashboard traces.parquet --evals evals.parquet -o dashboard.html""",
    "validate": """\
  llmobs validate traces.jsonl
  llmobs validate 'dumps/*.jsonl.gz' --on-error skip""",
    "convert": """\
  llmobs convert langfuse-export.json -o traces.parquet
  llmobs convert otel-spans.json --route-from gen_ai.agent.name -o traces.jsonl""",
    "sample": """\
  llmobs sample traces.parquet -o kept.parquet --default-rate 0.1 --rate refunds=1
  llmobs sample traces.parquet -o small.parquet --default-rate 0.01 --drop-text""",
    "generate": """\
  llmobs generate demo.parquet --rows 100000 --seed 7
  llmobs generate demo.jsonl --rows 5000 --drift-after 2026-11-16""",
    "review": """\
  llmobs review export evals.parquet -o queue.jsonl
  llmobs review import queue.jsonl evals.parquet""",
    "export": """\
  llmobs export evals.parquet --to otlp --dry-run -o events.json
  llmobs export evals.parquet --to langfuse""",
    "init": """\
  llmobs init                 # writes ./llmobs.yaml with the documented defaults""",
}


def add_epilogs(app: typer.Typer) -> None:
    """An "Examples" epilog on every registered command that has none of its own."""
    for info in app.registered_commands:
        name = info.name or (info.callback.__name__ if info.callback else "")
        if info.epilog is None and name in EXAMPLES:
            info.epilog = "Examples:\n\n" + EXAMPLES[name]
    for group in app.registered_groups:
        if group.name in EXAMPLES and not isinstance(group.epilog, str):
            group.epilog = "Examples:\n\n" + EXAMPLES[group.name]


def order(app: typer.Typer) -> None:
    """Registered commands in :data:`ORDER`; unknown ones keep their place at the end."""
    rank = {n: i for i, n in enumerate(ORDER)}
    app.registered_commands.sort(key=lambda info: rank.get(info.name or "", len(ORDER)))


#: ``llmobs eval summarize`` is dispatched inside ``eval`` (its first argument), so
#: ``--help`` would show eval's help. This hidden command carries summarize's own help;
#: :func:`help_args` routes ``eval summarize ... --help`` to it.
SUMMARIZE = "eval summarize"


def register_summarize_help(app: typer.Typer) -> None:
    def summarize_help(
        evals: Annotated[
            list[Path],
            typer.Argument(
                metavar="EVALS...",
                help="Judgment files written by llmobs eval -o (Parquet).",
                show_default=False,
            ),
        ],
        by: Annotated[
            str | None,
            typer.Option("--by", help="Group by FIELD[,FIELD...] (default: eval.by, route)."),
        ] = None,
        bucket: Annotated[
            str | None,
            typer.Option("--bucket", help="Add a quality time series per hour, day or week."),
        ] = None,
        min_drop: Annotated[
            float | None,
            typer.Option(
                "--min-drop", help="Smallest score drop that counts as a regression (0.05)."
            ),
        ] = None,
        output: Annotated[
            Path | None,
            typer.Option("--output", "-o", help="Also write the summary (.json or .html)."),
        ] = None,
        fmt: common.FormatOpt = common.Format.table,
        config: common.ConfigOpt = None,
        top: common.TopOpt = None,
        sort: common.SortOpt = None,
        wide: common.WideOpt = False,
    ) -> None:
        raise typer.Exit(0)  # only its --help is ever shown

    app.command(
        SUMMARIZE,
        hidden=True,
        help=(
            "Re-aggregate saved judgments without calling a judge: weighted scores with 95 % "
            "intervals per group, regression tests between the windows or releases in the "
            "file (exit 1 on a regression), judge-human agreement."
        ),
        epilog="Examples:\n\n"
        "  llmobs eval summarize evals.parquet\n"
        "  llmobs eval summarize evals.parquet --by route,model --bucket day\n"
        "  llmobs eval summarize old.parquet new.parquet -f markdown",
    )(summarize_help)


def help_args(args: list[str]) -> list[str]:
    """``eval summarize ... --help`` → the hidden summarize command's help."""
    if args[:2] == ["eval", "summarize"] and any(a in ("--help", "-h") for a in args[2:]):
        return [SUMMARIZE, "--help"]
    return args
