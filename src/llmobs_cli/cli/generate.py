"""``llmobs generate``: realistic synthetic traces for demos, tests and benchmarks.

Thin shell over :func:`llmobs_cli.core.synth.generate.write_generated`: parse the options into a
:class:`DriftSpec` / :class:`RegressionSpec`, make one core call, say what was written on
stderr. The output format follows the extension (.parquet, .jsonl, .jsonl.gz, .jsonl.zst)
and is written atomically.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from llmobs_cli.cli import common
from llmobs_cli.core.synth.generate import (
    DEFAULT_DRIFT_LANGUAGE,
    DEFAULT_START,
    DRIFT_KINDS,
    LANGUAGES,
    ROUTES,
    DriftSpec,
    RegressionSpec,
    write_generated,
)
from llmobs_cli.core.synth.signals import SignalSpec
from llmobs_cli.errors import UsageError

#: ``--drift-language`` default: the mix the generator injects.
_DEFAULT_LANGUAGE_MIX = ",".join(f"{k}={v}" for k, v in DEFAULT_DRIFT_LANGUAGE.items())


def register(app: typer.Typer) -> None:
    app.command(
        "generate",
        help="Write realistic synthetic traces (with optional drift and regression) for demos.",
    )(generate_cmd)


def _date(value: str | None, option: str, end: datetime | None = None) -> datetime | None:
    """A date / RFC 3339 time, or (when ``end`` is given) a duration back from it (7d, 36h)."""
    if value is None:
        return None
    text = value.strip()
    back = re.fullmatch(r"(\d+)([dh])", text)
    if back and end is not None:
        n = int(back.group(1))
        try:
            return end - (timedelta(days=n) if back.group(2) == "d" else timedelta(hours=n))
        except OverflowError:
            raise UsageError(f"{option}: '{value}' reaches back before the year 1") from None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        hint = " or a duration like 7d" if end is not None else ""
        raise UsageError(f"{option}: not a date, RFC 3339 time{hint} ('{value}')") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _pairs(values: list[str], option: str, keys: tuple[str, ...]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values:
        for part in item.split(","):
            part = part.strip()
            if not part:
                continue
            key, sep, num = part.partition("=")
            key = key.strip()
            if not sep:
                raise UsageError(
                    f"{option}: expected NAME=NUMBER, NAME one of {', '.join(keys)}; got '{part}'"
                )
            if key not in keys:
                from llmobs_cli.core.record.names import unknown

                raise unknown(option, "name", key, keys)
            try:
                out[key] = float(num)
            except ValueError:
                raise UsageError(f"{option}: '{num}' is not a number (in '{part}')") from None
    return out


def generate_cmd(
    out: Annotated[
        Path,
        typer.Argument(
            help="Output file: .parquet, .jsonl, .jsonl.gz or .jsonl.zst.", show_default=False
        ),
    ],
    rows: Annotated[
        int, typer.Option("--rows", "-n", min=0, help="Sampled rows to write.")
    ] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", "-s", min=0, help="Random seed (same seed, same file).")
    ] = 0,
    days: Annotated[int, typer.Option("--days", min=1, help="Length of the period in days.")] = 42,
    start: Annotated[
        str | None,
        typer.Option(
            "--start",
            help=f"Start of the period (date or RFC 3339; default {DEFAULT_START.date()}).",
            show_default=False,
        ),
    ] = None,
    drift_after: Annotated[
        str | None,
        typer.Option(
            "--drift-after",
            help="Inject drift from this date/time on (or a duration before the end: 7d).",
            show_default=False,
        ),
    ] = None,
    drift_kinds: Annotated[
        str,
        typer.Option(
            "--drift-kinds", help=f"Comma list of drift kinds ({', '.join(DRIFT_KINDS)})."
        ),
    ] = ",".join(DRIFT_KINDS),
    drift_length: Annotated[
        float, typer.Option("--drift-length", help="Drift: multiplier on response length.")
    ] = 1.3,
    drift_refusals: Annotated[
        float,
        typer.Option("--drift-refusals", help="Drift: absolute increase of the refusal rate."),
    ] = 0.06,
    drift_language: Annotated[
        str,
        typer.Option("--drift-language", help="Drift: new language mix, LANG=SHARE,..."),
    ] = _DEFAULT_LANGUAGE_MIX,
    drift_retrieval: Annotated[
        float, typer.Option("--drift-retrieval", help="Drift: shift of retrieval scores.")
    ] = -0.15,
    drift_topic: Annotated[
        float,
        typer.Option("--drift-topic", help="Drift: share of calls moved to a hot topic (0 = off)."),
    ] = 0.0,
    drift_routes: Annotated[
        str | None,
        typer.Option(
            "--drift-routes",
            help="Drift: only these routes (comma list; default all).",
            show_default=False,
        ),
    ] = None,
    regression_after: Annotated[
        str | None,
        typer.Option(
            "--regression-after",
            help="Inject a release-tied regression from this date/time on (or 7d before the end).",
            show_default=False,
        ),
    ] = None,
    regression_route: Annotated[
        str, typer.Option("--regression-route", help=f"Regression route ({', '.join(ROUTES)}).")
    ] = "search_qa",
    regression_release: Annotated[
        str, typer.Option("--regression-release", help="Release name of the regressed version.")
    ] = "v2.0.0",
    regression_severity: Annotated[
        float,
        typer.Option(
            "--regression-severity", help="Share of answers made wrong / off-topic / truncated."
        ),
    ] = 0.35,
    rate: Annotated[
        list[str] | None,
        typer.Option(
            "--rate", help="Storage sample rate override, ROUTE=R (repeatable).", show_default=False
        ),
    ] = None,
    logprobs: Annotated[
        bool,
        typer.Option(
            "--logprobs", help="Add token log-probs (capped at 256 per call) to every answer."
        ),
    ] = False,
    drift_confidence: Annotated[
        float,
        typer.Option(
            "--drift-confidence",
            help="Drift: multiplier on token surprisal after --drift-after (needs --logprobs; "
            "1 = off).",
        ),
    ] = 1.0,
    drift_cited_rank: Annotated[
        float,
        typer.Option(
            "--drift-cited-rank",
            help="Drift: share of answers citing the top document whose document moves to "
            "rank 2 after --drift-after (0 = off).",
        ),
    ] = 0.0,
    session_repeats: Annotated[
        float,
        typer.Option(
            "--session-repeats",
            help="Share of calls after a failed call in a session that repeat its question "
            "(0 = off).",
        ),
    ] = 0.0,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Output format: parquet or jsonl (default: from the extension).",
            show_default=False,
        ),
    ] = None,
    no_progress: common.NoProgressOpt = False,
) -> None:
    """Generate ROWS sampled trace rows over DAYS days and write them to OUT."""
    kinds = [k.strip() for k in drift_kinds.split(",") if k.strip()]
    start_dt = _date(start, "--start") or DEFAULT_START
    try:
        end = start_dt + timedelta(days=days)
    except OverflowError:
        raise UsageError("--start/--days: the period would end after the year 9999") from None
    drift = None
    if drift_after is not None:
        routes = [r.strip() for r in drift_routes.split(",") if r.strip()] if drift_routes else None
        drift = DriftSpec(
            after=_date(drift_after, "--drift-after", end),  # type: ignore[arg-type]
            response_length=drift_length,
            refusal_rate=drift_refusals,
            language=_pairs([drift_language], "--drift-language", LANGUAGES) or None,
            retrieval_score=drift_retrieval,
            routes=routes,
            topic_shift=drift_topic,
        )
    regression = None
    if regression_after is not None:
        regression = RegressionSpec(
            after=_date(regression_after, "--regression-after", end),  # type: ignore[arg-type]
            route=regression_route,
            release=regression_release,
            severity=regression_severity,
        )
    signals = None
    if logprobs or drift_confidence != 1.0 or drift_cited_rank > 0 or session_repeats > 0:
        signals = SignalSpec(
            logprobs=logprobs,
            after=drift.after if drift is not None else None,
            routes=drift.routes if drift is not None else None,
            confidence=drift_confidence,
            cited_rank=drift_cited_rank,
            repeats=session_repeats,
        )
    outcome = f"{out} was not written or changed (partial output removed)"
    with common.interruptible(outcome), common.progress_bar("generate", not no_progress) as bar:
        done = write_generated(
            out,
            rows,
            seed,
            start=start_dt,
            days=days,
            drift=drift,
            regression=regression,
            route_rates=_pairs(rate or [], "--rate", ROUTES),
            drift_kinds=kinds,
            to=to,
            progress=bar,
            signals=signals,
        )
    common.warn(f"wrote {done.rows:,} sampled row(s) (about {done.calls:,.0f} calls) to {out}")
    end_text = f"{start_dt:%Y-%m-%d} .. {end - timedelta(microseconds=1):%Y-%m-%d}"
    common.warn(f"period {end_text} (UTC)")
    if drift is not None:
        active = [k for k in kinds if k != "topic" or drift.topic_shift > 0]
        if drift.language is None:
            active = [k for k in active if k != "language"]
        where = ", ".join(drift.routes) if drift.routes else "all routes"
        common.warn(f"drift from {drift.after:%Y-%m-%dT%H:%MZ} on {where}: {', '.join(active)}")
    if regression is not None:
        common.warn(
            f"regression from {regression.after:%Y-%m-%dT%H:%MZ} on {regression.route}: "
            f"release {regression.release}, severity {regression.severity:g}"
        )
