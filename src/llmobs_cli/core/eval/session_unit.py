"""``llmobs eval --unit session``: judge whole conversations instead of calls.

The calls are folded into one row per session (:func:`core.signals.sessions.session_rows`:
conversation in timestamp order, token budget, session weight) and the ordinary call
pipeline runs on those rows — the same stratified plan per route and window, judge, cache,
Hájek means with intervals, window/release regression tests and review queue. The
criteria are the session ones (``task_success``) and any custom criterion the user named;
call-level built-ins (relevance, faithfulness, completeness, reference, self-consistency)
do not apply to a conversation and are left out with a note. The cheap heuristics of
every session (not only the judged ones) go into ``summary.sessions``.

Files are read in two streaming passes (:mod:`core.eval.session_passes`); this module
holds what both that path and the whole-frame one (:func:`evaluate_sessions`) share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import polars as pl

from llmobs_cli.core.eval.options import EvalOptions, EvalRun
from llmobs_cli.core.signals.sessions import (
    SESSION_CRITERIA,
    TASK_SUCCESS,
    carried,
    heuristics_summary,
    session_rows,
)


def session_options(opts: EvalOptions) -> tuple[EvalOptions, list[str]]:
    """The call-pipeline options that judge sessions (``unit="call"``, session criteria)
    and the note naming the call-level evaluators left out."""
    names = [e for e in opts.evaluators if e in SESSION_CRITERIA or e in opts.criteria]
    left = [e for e in opts.evaluators if e not in names]
    notes: list[str] = []
    if not names:
        names = [TASK_SUCCESS]
    if left:
        notes.append(
            "sessions: call-level evaluators left out ("
            + ", ".join(left)
            + "); judged: "
            + ", ".join(names)
        )
    return replace(opts, unit="call", evaluators=names, self_consistency=False), notes


def attach_heuristics(
    run: EvalRun, sessions: pl.DataFrame, opts: EvalOptions, notes: list[str]
) -> EvalRun:
    """Add the notes and every session's heuristics (``sessions``: one row per session,
    text not needed) to ``run``'s summary."""
    run.summary.notes.extend(notes)
    by = [k for k in opts.by if k in sessions.columns]
    run.summary.sessions = heuristics_summary(sessions, by)
    return run


def evaluate_sessions(
    frame: pl.DataFrame,
    opts: EvalOptions,
    evaluate: Callable[[pl.DataFrame, EvalOptions], EvalRun],
) -> EvalRun:
    """Fold ``frame``'s calls into sessions and evaluate them with ``evaluate`` (the call
    pipeline, called with ``unit="call"`` options)."""
    rows = session_rows(frame, opts.session_tokens, carry=carried(opts.by))
    inner, notes = session_options(opts)
    run = evaluate(rows.frame, inner)
    return attach_heuristics(run, rows.frame, opts, [*rows.notes, *notes])
