"""Optional signals on top of a generated frame: token log-probs and injected effects on
confidence and on the rank of the cited document (``llmobs generate --logprobs``,
``--drift-confidence``, ``--drift-cited-rank``).

A post-processing step over the frame :func:`~llmobs_cli.core.synth.generate.generate`
returns, drawing from its own seeded stream: with every option off the frame is returned
unchanged, so existing seeds (and ``sample_traces/``) stay byte-identical.

Log-probs. Every call with a response gets ``min(output_tokens, MAX_TOKENS)`` token
log-probs. A token is, with probability ``p_low``, an unsure token (log-prob uniform in
[log 0.0025, log 0.1]) and otherwise ``-mu * Exp(1)``. ``mu`` and ``p_low`` follow the
generator's quality label (``metadata.quality``): good and *wrong* answers are confident
(mu 0.12, p_low 2 %) — wrong answers in the long tail are the confident-wrong failure —,
truncated and off-topic answers less so (mu 0.35, p_low 10 %), refusals in between.

Confidence drift. From ``after`` on (on ``routes``, default all), ``mu`` and ``p_low`` are
multiplied by ``confidence`` (e.g. 2.5: the model hedges).

Session repeats. With ``repeats`` > 0, a share of the calls that follow a failed call in
the same session ask the failed question again (a user repeating themselves); sessions
that end on a failed call are the abandoned ones. A session's truth: its last call's
``metadata.quality`` is ``good``.

Cited-rank drift. From ``after`` on, a share ``cited_rank`` of the calls whose answer
cites the top retrieved document get their first two documents' ids and contents swapped
(scores keep their order): the cited document is now retrieved second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import polars as pl
import pyarrow as pa

from llmobs_cli.core.signals.citations import cited_rank
from llmobs_cli.errors import UsageError

#: Log-probs per call are capped here (bounds the file size; features read means).
MAX_TOKENS = 256
_SALT = 0x5167_4E41
#: (mu, p_low) per quality label.
_PROFILE: dict[str, tuple[float, float]] = {
    "good": (0.12, 0.02),
    "wrong": (0.12, 0.02),
    "refusal": (0.2, 0.04),
    "truncated": (0.35, 0.10),
    "offtopic": (0.35, 0.10),
}


@dataclass
class SignalSpec:
    """What to add to a generated frame."""

    logprobs: bool = False
    after: datetime | None = None  # effects from this time on (None: no effects)
    routes: list[str] | None = None  # effects only on these routes (None: all)
    confidence: float = 1.0  # multiplier on token surprisal after ``after`` (1 = off)
    cited_rank: float = 0.0  # share of top-1 citations moved to rank 2 after ``after``
    repeats: float = 0.0  # share of calls after a failed one in which the user repeats

    @property
    def active(self) -> bool:
        return self.logprobs or self.repeats > 0 or (self.after is not None and self.cited_rank > 0)


def _check(spec: SignalSpec) -> None:
    if not spec.confidence > 0:
        raise UsageError(f"drift confidence: multiplier must be > 0, got {spec.confidence}")
    if not 0 <= spec.repeats <= 1:
        raise UsageError(f"session repeats: share must be in [0, 1], got {spec.repeats}")
    if not 0 <= spec.cited_rank <= 1:
        raise UsageError(f"drift cited rank: share must be in [0, 1], got {spec.cited_rank}")
    if spec.confidence != 1.0 and not spec.logprobs:
        raise UsageError("drift confidence needs log-probs (--logprobs)")


def _effect_mask(frame: pl.DataFrame, spec: SignalSpec) -> np.ndarray:
    if spec.after is None:
        return np.zeros(frame.height, dtype=bool)
    on = frame["timestamp"] >= spec.after
    if spec.routes:
        on = on & frame["route"].is_in(spec.routes)
    return on.fill_null(False).to_numpy()


def _logprobs(frame: pl.DataFrame, spec: SignalSpec, rng: np.random.Generator) -> pl.Expr:
    quality = frame.select(pl.col("metadata").str.json_path_match("$.quality"))["metadata"]
    q = quality.fill_null("").to_list()
    mu = np.array([_PROFILE.get(x, (0.0, 0.0))[0] for x in q])
    p_low = np.array([_PROFILE.get(x, (0.0, 0.0))[1] for x in q])
    has = (mu > 0) & frame["response"].is_not_null().to_numpy()
    on = _effect_mask(frame, spec)
    mu = np.where(on, mu * spec.confidence, mu)
    p_low = np.clip(np.where(on, p_low * spec.confidence, p_low), 0.0, 0.9)
    n = np.minimum(frame["output_tokens"].fill_null(0).to_numpy(), MAX_TOKENS)
    n = np.where(has, np.maximum(n, 1), 0).astype(np.int64)
    total = int(n.sum())
    row_mu = np.repeat(mu, n)
    low = rng.random(total) < np.repeat(p_low, n)
    values = np.where(
        low,
        rng.uniform(math.log(0.0025), math.log(0.1), total),
        -row_mu * rng.exponential(1.0, total),
    )
    offsets = np.concatenate([[0], np.cumsum(n)]).astype(np.int64)
    arr = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(np.round(values, 4)))
    series = pl.Series("logprobs", arr).cast(pl.List(pl.Float64))
    return pl.when(pl.lit(pl.Series(has))).then(series).otherwise(None).alias("logprobs")


def _swap_top2(frame: pl.DataFrame, spec: SignalSpec, rng: np.random.Generator) -> pl.DataFrame:
    on = _effect_mask(frame, spec)
    top1 = frame.select(cited_rank().fill_null(0) == 1).to_series().to_numpy()
    long = (frame["retrieved"].list.len() >= 2).fill_null(False).to_numpy()
    swap = on & top1 & long & (rng.random(frame.height) < spec.cited_rank)
    doc = pl.col("retrieved")
    d0, d1 = doc.list.get(0, null_on_oob=True), doc.list.get(1, null_on_oob=True)

    def _mk(a: pl.Expr, b: pl.Expr) -> pl.Expr:
        return pl.struct(
            a.struct.field("id").alias("id"),
            a.struct.field("content").alias("content"),
            b.struct.field("score").alias("score"),
        )

    swapped = pl.concat_list(_mk(d1, d0), _mk(d0, d1), doc.list.slice(2))
    return frame.with_columns(
        pl.when(pl.lit(pl.Series(swap))).then(swapped).otherwise(doc).alias("retrieved")
    )


def add_signals(frame: pl.DataFrame, spec: SignalSpec, seed: int, block: int = 0) -> pl.DataFrame:
    """``frame`` (block ``block`` of a generated file) with the signals of ``spec`` added
    (unchanged when none is active)."""
    _check(spec)
    if not spec.active or frame.height == 0:
        return frame
    rng = np.random.default_rng([seed, _SALT, block])
    if spec.logprobs:
        frame = frame.with_columns(_logprobs(frame, spec, rng))
    if spec.after is not None and spec.cited_rank > 0:
        frame = _swap_top2(frame, spec, rng)
    if spec.repeats > 0:
        frame = _repeat_after_failure(frame, spec, rng)
    return frame


def _repeat_after_failure(
    frame: pl.DataFrame, spec: SignalSpec, rng: np.random.Generator
) -> pl.DataFrame:
    """After a failed call (quality not ``good``: wrong, off-topic, truncated, refused,
    errored), the session's next call asks the same question again with share
    ``spec.repeats`` (its ``prompt`` and last user message become the failed call's)."""
    order = frame.with_row_index("_i").sort("session_id", "timestamp")
    quality = pl.col("metadata").str.json_path_match("$.quality")
    prev_bad = (quality != "good").fill_null(True).shift(1).over("session_id")
    prev_prompt = pl.col("prompt").shift(1).over("session_id")
    draw = pl.Series("_u", rng.random(frame.height))
    flagged = order.with_columns(draw.gather(order["_i"]).alias("_u")).with_columns(
        (
            prev_bad.fill_null(False) & prev_prompt.is_not_null() & (pl.col("_u") < spec.repeats)
        ).alias("_rep"),
        prev_prompt.alias("_prev"),
    )
    msgs = pl.col("messages")
    last = msgs.list.len() - 1
    new_msgs = pl.concat_list(
        msgs.list.head(last),
        pl.struct(pl.lit("user").alias("role"), pl.col("_prev").alias("content")),
    )
    out = flagged.with_columns(
        pl.when(pl.col("_rep")).then(pl.col("_prev")).otherwise(pl.col("prompt")).alias("prompt"),
        pl.when(pl.col("_rep") & (msgs.list.len() > 0))
        .then(new_msgs)
        .otherwise(msgs)
        .alias("messages"),
    )
    return out.sort("_i").select(frame.columns)
