"""``llmobs eval --unit session``: judge whole conversations instead of calls.

The calls are folded into one row per session (:func:`core.signals.sessions.session_rows`:
conversation in timestamp order, token budget, session weight) and the ordinary call
pipeline runs on those rows — the same stratified plan per route and window, judge, cache,
Hájek means with intervals, window/release regression tests and review queue. The
criteria are the session ones (``task_success``) and any custom criterion the user named;
call-level built-ins (relevance, faithfulness, completeness, reference, self-consistency)
do not apply to a conversation and are left out with a note. The cheap heuristics of
every session (not only the judged ones) go into ``summary.sessions``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import polars as pl

from llmobs_cli.core.eval.options import EvalOptions, EvalRun
from llmobs_cli.core.signals.sessions import (
    SESSION_CRITERIA,
    TASK_SUCCESS,
    heuristics_summary,
    session_rows,
)


def evaluate_sessions(
    frame: pl.DataFrame,
    opts: EvalOptions,
    evaluate: Callable[[pl.DataFrame, EvalOptions], EvalRun],
) -> EvalRun:
    """Fold ``frame``'s calls into sessions and evaluate them with ``evaluate`` (the call
    pipeline, called with ``unit="call"`` options)."""
    rows = session_rows(frame, opts.session_tokens)
    names = [e for e in opts.evaluators if e in SESSION_CRITERIA or e in opts.criteria]
    left = [e for e in opts.evaluators if e not in names]
    notes = list(rows.notes)
    if not names:
        names = [TASK_SUCCESS]
    if left:
        notes.append(
            "sessions: call-level evaluators left out ("
            + ", ".join(left)
            + "); judged: "
            + ", ".join(names)
        )
    inner = replace(opts, unit="call", evaluators=names, self_consistency=False)
    run = evaluate(rows.frame, inner)
    run.summary.notes.extend(notes)
    by = [k for k in opts.by if k in rows.frame.columns]
    run.summary.sessions = heuristics_summary(rows.frame, by)
    return run
