"""Sessions: whole conversations as units of evaluation, and cheap heuristics for every
session (``llmobs eval --unit session``).

A session is the calls sharing a ``session_id``, in ``timestamp`` order (calls without a
session id are their own one-call session, keyed by ``trace_id``). :func:`session_rows`
turns the calls into one canonical-shaped row per session that the ordinary eval pipeline
(stratified plan, judge, weighted summary, regressions, review) takes as it takes calls:

* ``trace_id`` = ``span_id`` = the session key; ``route``, ``model``, ``release`` of the
  session's first call; ``timestamp`` of its first call (a session belongs to the window it
  starts in);
* ``messages`` = the conversation: each call's user turn (``prompt``, else the last user
  message) and its answer (``response``; ``[error: …]`` for a failed call), oldest first;
  the judged ``response`` is the last answer;
* **Token budget**: turns are kept newest first while their estimated tokens (characters /
  4) fit ``budget_tokens`` (default 6 000); the oldest turns beyond it are dropped and the
  ``system`` text says how many (``dropped_turns`` counts them);
* **Weight**: ``sample_rate`` = 1 / (mean of ``1/sample_rate`` over the session's stored
  calls). When a session's calls were all stored at one rate (session-level sampling) this
  is that rate; when they were stored at different rates, the mean inverse rate is the
  Horvitz–Thompson estimate of calls represented per stored call, spread evenly over the
  session — so a session is never dropped or counted at the rate of one arbitrary call.

Heuristics (every session, no judge): ``turns``; ``repeated_question_rate`` — the share of
consecutive user-turn pairs that are near-duplicates (rapidfuzz ``token_set_ratio`` ≥
:data:`REPEAT_SIMILARITY` over the first 500 characters; C loop over the pairs, not Python);
``abandoned`` — the last call failed (``status`` not ok) or refused (the refusal rule of
``core/report/refusals``); ``turns_to_resolution`` — the first turn whose call succeeded,
did not refuse, and was not followed by a repeat of the question (null: never resolved).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from llmobs_cli.core.record.schema import DOCUMENT
from llmobs_cli.core.report.refusals import refusal_expr

#: The session-level criterion (configs/prompts/task_success.yaml).
TASK_SUCCESS = "task_success"
SESSION_CRITERIA: tuple[str, ...] = (TASK_SUCCESS,)
DEFAULT_BUDGET_TOKENS = 6000
CHARS_PER_TOKEN = 4
#: rapidfuzz token_set_ratio (0–100) at or above which two user turns repeat each other.
REPEAT_SIMILARITY = 85.0
_COMPARE_CHARS = 500

HEURISTICS: tuple[str, ...] = (
    "turns",
    "repeated_question_rate",
    "abandoned",
    "turns_to_resolution",
)


@dataclass
class SessionRows:
    frame: pl.DataFrame  # one row per session (canonical columns + heuristics)
    truncated: int  # sessions whose oldest turns were dropped
    notes: list[str]


def _user_turn() -> pl.Expr:
    last_user = (
        pl.col("messages")
        .list.eval(
            pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content")
        )
        .list.last()
    )
    return pl.coalesce(pl.col("prompt"), last_user).fill_null("")


def _ensure(frame: pl.DataFrame) -> pl.DataFrame:
    defaults: dict[str, pl.DataType] = {
        "session_id": pl.String(),
        "prompt": pl.String(),
        "messages": pl.List(pl.Struct({"role": pl.String, "content": pl.String})),
        "response": pl.String(),
        "status": pl.String(),
        "error": pl.String(),
        "finish_reason": pl.String(),
        "release": pl.String(),
        "model": pl.String(),
        "sample_rate": pl.Float64(),
        "span_id": pl.String(),
    }
    return frame.with_columns(
        [pl.lit(None, dt).alias(c) for c, dt in defaults.items() if c not in frame.columns]
    )


#: Per-call columns a session keeps from its first call (more: the ``--by`` base columns).
FIRST: tuple[str, ...] = ("route", "model", "release", "timestamp")
_SESSION_TYPE = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
#: What a light session row has in place of its judged answer: a non-empty stand-in when
#: the last answer is non-empty (so the plan finds the same eligible sessions), else "".
LIGHT_ANSWER = "\u2026"


#: Columns a session row computes itself (never taken from its first call).
OWN: frozenset[str] = frozenset(
    {
        "sample_rate",
        "turns",
        "repeated_question_rate",
        "abandoned",
        "turns_to_resolution",
        "response",
        "dropped_turns",
        "trace_id",
        "span_id",
        "session_id",
        "messages",
        "prompt",
        "system",
        "status",
        "retrieved",
        "reference",
    }
)


def carried(by: Sequence[str]) -> list[str]:
    """The columns a session takes from its first call for the ``--by`` fields, beyond
    :data:`FIRST` (``metadata`` for ``metadata.KEY``: strata by the first call's value)."""
    from llmobs_cli.core.record.fields import base_column

    cols = (base_column(f) for f in by)
    return [c for c in dict.fromkeys(cols) if c not in FIRST and c not in OWN]


def session_key() -> pl.Expr:
    """The session a call belongs to: its ``session_id``, else its ``trace_id``."""
    return pl.coalesce(pl.col("session_id"), pl.col("trace_id")).alias("_session")


def _repeats(compare: pl.Series, same: np.ndarray) -> np.ndarray:
    """Whether each user turn (``compare``: its lowercased head) is a near-duplicate of the
    previous one in its session (``same``: the previous row is of the same session)."""
    from rapidfuzz import fuzz
    from rapidfuzz.process import cpdist

    n = compare.len()
    out = np.zeros(n, dtype=bool)
    if n < 2:
        return out
    text = compare.to_list()
    score = cpdist(text[1:], text[:-1], scorer=fuzz.token_set_ratio, workers=1)
    out[1:] = (np.asarray(score) >= REPEAT_SIMILARITY) & same[1:]
    return out


def call_rows(
    frame: pl.DataFrame,
    *,
    text: bool = True,
    carry: Sequence[str] = (),
    refusal_patterns: list[str] | None = None,
) -> pl.DataFrame:
    """Per call, what the fold needs (each value depends on its own row only, so batches
    give the rows of the whole frame): ``_session``, the :data:`FIRST` and ``carry``
    columns, ``sample_rate``, ``_good`` (ok and no refusal), ``_tok`` (estimated tokens of
    the turn), ``_answered`` (the answer is non-empty) and ``_cmp`` (the lowercased head of
    the user turn the repeat test compares). With ``text`` also the turn itself (``_user``,
    ``_answer``); without, no column longer than :data:`_COMPARE_CHARS` characters."""
    f = _ensure(frame)
    ok = pl.col("status").fill_null("ok") == "ok"
    refused = refusal_expr(pl.col("response"), refusal_patterns, pl.col("finish_reason"))
    answer = (
        pl.when(ok)
        .then(pl.col("response").fill_null(""))
        .otherwise(pl.lit("[error: ") + pl.col("error").fill_null("failed") + pl.lit("]"))
    )
    extra = [c for c in dict.fromkeys(carry) if c in f.columns and c not in OWN and c not in FIRST]
    keep = [*FIRST, *extra]
    calls = f.select(
        session_key(),
        *[pl.col(c) for c in keep],
        pl.col("sample_rate"),
        _user_turn().alias("_user"),
        answer.alias("_answer"),
        (ok & ~refused.fill_null(False)).alias("_good"),
    ).with_columns(
        (
            (pl.col("_user").str.len_chars() + pl.col("_answer").str.len_chars()) // CHARS_PER_TOKEN
            + 1
        ).alias("_tok"),
        (pl.col("_answer").str.len_chars() > 0).alias("_answered"),
        pl.col("_user").str.slice(0, _COMPARE_CHARS).str.to_lowercase().alias("_cmp"),
    )
    return calls if text else calls.drop("_user", "_answer")


def fold_sessions(
    calls: pl.DataFrame, budget_tokens: int = DEFAULT_BUDGET_TOKENS
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """:func:`call_rows` rows → one row per session, sorted by session key, and (when the
    calls carry text) each session's kept turns (``_session``, ``_conv``).

    Every call of a session must be in ``calls``; other sessions may or may not be: a
    session's row depends only on its own calls, in timestamp order (ties in input
    order), so folding hash partitions of the calls one at a time gives the rows folding
    all of them at once gives."""
    text = "_answer" in calls.columns
    calls = calls.sort(["_session", "timestamp"], maintain_order=True)
    same = calls.select(pl.col("_session").eq_missing(pl.col("_session").shift(1)))
    same_np = np.array(same.to_series().to_numpy(), dtype=bool)
    if same_np.size:
        same_np[0] = False
    rep = _repeats(calls["_cmp"], same_np)
    calls = calls.with_columns(
        pl.Series("_repeat", rep),
        # the next user turn repeats this one: this answer did not satisfy
        pl.Series("_repeated_next", np.r_[rep[1:], False][: rep.size]),
    )
    # Newest-first cumulative tokens: keep turns while they fit (the newest always kept).
    calls = calls.with_columns(
        pl.col("_tok").reverse().cum_sum().reverse().over("_session").alias("_tok_after"),
        pl.int_range(pl.len()).over("_session").alias("_turn"),
    ).with_columns(
        (
            (pl.col("_tok_after") <= budget_tokens)
            | (pl.col("_turn") == pl.col("_turn").max().over("_session"))
        ).alias("_keep")
    )
    resolved = (pl.col("_good") & ~pl.col("_repeated_next")).arg_true().first()
    first = [c for c in calls.columns if c in FIRST] + [
        c for c in calls.columns if c not in FIRST and not c.startswith("_") and c != "sample_rate"
    ]
    last = (
        pl.col("_answer").last()
        if text
        else pl.when(pl.col("_answered").last()).then(pl.lit(LIGHT_ANSWER)).otherwise(pl.lit(""))
    )
    per = calls.group_by("_session", maintain_order=True).agg(
        *[pl.col(c).first() for c in first],
        (1.0 / (1.0 / pl.col("sample_rate").fill_null(1.0)).mean()).alias("sample_rate"),
        pl.len().alias("turns"),
        # null for one-turn sessions: no pair to compare
        pl.when(pl.len() > 1)
        .then(pl.col("_repeat").sum() / (pl.len() - 1))
        .cast(pl.Float64)
        .alias("repeated_question_rate"),
        (~pl.col("_good").last()).alias("abandoned"),
        (resolved + 1).cast(pl.Int64).alias("turns_to_resolution"),
        last.alias("response"),
        pl.col("_keep").sum().cast(pl.get_index_type()).alias("_kept"),
    )
    if not text:
        return per, None
    turns_msgs = pl.concat_list(
        pl.struct(pl.lit("user").alias("role"), pl.col("_user").alias("content")),
        pl.struct(pl.lit("assistant").alias("role"), pl.col("_answer").alias("content")),
    )
    conv = (
        calls.filter(pl.col("_keep"))
        .group_by("_session", maintain_order=True)
        .agg(turns_msgs.list.explode(keep_nulls=False, empty_as_null=False).alias("_conv"))
    )
    return per, conv


def finish_sessions(
    per: pl.DataFrame, conv: pl.DataFrame | None, budget_tokens: int = DEFAULT_BUDGET_TOKENS
) -> SessionRows:
    """Folded sessions (:func:`fold_sessions`) as canonical-shaped rows. Without ``conv``
    (light rows: no text was read) ``messages`` is null and ``response`` is
    :data:`LIGHT_ANSWER` or "" — enough to plan and to summarize the heuristics, not to
    judge."""
    if conv is not None:
        out = per.join(conv, on="_session", how="left", maintain_order="left")
        messages = pl.col("_conv").list.head(pl.col("_conv").list.len() - 1)
    else:
        out = per.with_columns(pl.lit(None, _SESSION_TYPE).alias("_conv"))
        messages = pl.col("_conv")
    out = out.with_columns((pl.col("turns") - pl.col("_kept")).alias("dropped_turns"))
    out = out.with_columns(
        pl.col("_session").alias("trace_id"),
        pl.col("_session").alias("span_id"),
        pl.col("_session").alias("session_id"),
        # the judged answer is the last turn's: the conversation shown ends before it
        messages.alias("messages"),
        pl.lit(None, pl.String).alias("prompt"),
        pl.when(pl.col("dropped_turns") > 0)
        .then(
            pl.format(
                "(the {} oldest turn(s) of this conversation were dropped to fit the "
                "judge's token budget)",
                pl.col("dropped_turns"),
            )
        )
        .otherwise(None)
        .alias("system"),
        pl.lit("ok").alias("status"),
        # a conversation is judged on its own: no documents, no reference answer
        pl.lit(None, pl.List(DOCUMENT)).alias("retrieved"),
        pl.lit(None, pl.String).alias("reference"),
    ).drop("_session", "_conv", "_kept")
    truncated = int((out["dropped_turns"] > 0).sum()) if out.height else 0
    notes = []
    if truncated:
        notes.append(
            f"sessions: {truncated} conversation(s) over the {budget_tokens:,}-token budget; "
            "their oldest turns were dropped (the judge is told how many)"
        )
    return SessionRows(out, truncated, notes)


def session_rows(
    frame: pl.DataFrame,
    budget_tokens: int = DEFAULT_BUDGET_TOKENS,
    refusal_patterns: list[str] | None = None,
    carry: Sequence[str] = (),
) -> SessionRows:
    """One row per session (see the module docstring), sorted by session key. ``carry``
    names more columns a session takes from its first call (the ``--by`` fields'
    columns)."""
    calls = call_rows(frame, carry=carry, refusal_patterns=refusal_patterns)
    per, conv = fold_sessions(calls, budget_tokens)
    return finish_sessions(per, conv, budget_tokens)


def heuristics_summary(sessions: pl.DataFrame, by: list[str]) -> list[dict[str, object]]:
    """Weighted (1/sample_rate) session heuristics per group: sessions, mean turns,
    repeated-question rate, abandonment rate, resolved share and mean turns to resolution."""
    w = 1.0 / pl.col("sample_rate")

    def wmean(e: pl.Expr) -> pl.Expr:
        ok = e.is_not_null()
        return (e.cast(pl.Float64) * w).filter(ok).sum() / w.filter(ok).sum()

    aggs = [
        pl.len().alias("sessions_sampled"),
        w.sum().alias("sessions"),
        wmean(pl.col("turns")).alias("mean_turns"),
        wmean(pl.col("repeated_question_rate")).alias("repeated_question_rate"),
        wmean(pl.col("abandoned")).alias("abandonment_rate"),
        wmean(pl.col("turns_to_resolution").is_not_null()).alias("resolved_share"),
        wmean(pl.col("turns_to_resolution")).alias("mean_turns_to_resolution"),
    ]
    if not sessions.height:
        return []
    grouped = sessions.group_by(by).agg(aggs).sort(by) if by else sessions.select(aggs)
    return grouped.to_dicts()
