"""Realistic synthetic traces: seeded, vectorised, with injectable drift and regressions.

:func:`generate` returns a canonical frame (:data:`llmobs_cli.core.record.schema.SCHEMA`) of
``rows`` **sampled** rows, i.e. the rows a storage sampler kept. Each route logs its
storage ``sample_rate`` per row; the per-route row shares are chosen so that the implied
population (``Σ 1/sample_rate`` per route) follows a Zipf law with ``chat`` the largest:

========== ================ =========== =============================================
route      sample_rate      population  what it is
========== ================ =========== =============================================
chat       0.01             Zipf rank 1 general assistant, multi-turn sessions
search_qa  0.10             Zipf rank 2 help-centre RAG: ``retrieved`` docs, ``reference``
summarize  0.25             Zipf rank 3 meeting-notes summaries
support_…  0.50             Zipf rank 4 support agent (RAG, multi-turn)
refunds    1.00             Zipf rank 5 high-stakes refunds policy, ``reference``, ``cost_usd``
========== ================ =========== =============================================

Everything is numpy/Polars column work: text is assembled by vectorised choice of indices
into small pools of phrases (precomputed combinations, then ``gather`` + ``concat_str``);
lists (``retrieved``, ``messages``) are assembled from flat arrays and offsets. There is no
Python loop over rows, so a million rows take seconds.

Ground truth. ``metadata`` carries the generator's labels on every row: ``quality``
(``good``, ``wrong`` — a wrong fact/number against the reference, ``offtopic``,
``truncated``, ``refusal``, ``filtered`` — content filter, ``error``), ``lang`` (the language
the row was written in), ``topic``, plus ``tier`` and ``region``. Tests and stub judges may
score from the visible text or from this label.

Determinism. The same arguments give the same frame. Every random draw is made whatever
the options, from streams named by purpose, and drift/regression only *select* among them
by timestamp: rows before ``drift.after``/``regression.after`` are identical with and
without the injection (tested).

Drift (:class:`DriftSpec`) after ``after``: longer answers (and output tokens), more
refusals, another language mix, weaker retrieval scores, and (opt-in, ``topic_shift``) a
surge of one topic per route. Prompts are built from length-matched translations, and
their length does not depend on these drifts (except the opt-in topic surge, since topics
differ in length), so ``prompt_length`` does not move.

Regression (:class:`RegressionSpec`) after ``after`` on one route: every row there carries
the new ``release`` (its system prompt and a higher temperature changed) and a
``severity`` share of answers is wrong against the reference, off-topic or truncated
(``finish_reason`` ``length``).

Token conventions follow the contract: ``cached_tokens`` ⊆ ``input_tokens``;
``cache_write_tokens`` (Anthropic rows only) ⊆ ``input_tokens`` and disjoint from the cached
part; ``reasoning_tokens`` (``o3-mini``) ⊆ ``output_tokens``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
import pyarrow as pa

from llmobs_cli.core.progress import Progress, ProgressFn, no_progress
from llmobs_cli.core.record.names import unknown
from llmobs_cli.core.record.schema import DOCUMENT, FIELDS, MESSAGE, SCHEMA
from llmobs_cli.core.synth.catalog import (
    BASE_LANGUAGE,
    CHARS_PER_TOKEN,
    DEFAULT_DRIFT_LANGUAGE,
    DEFAULT_START,
    DRIFT_KINDS,
    ERROR_P,
    ERRORS,
    FILLER_VARIANTS,
    HOT_TOPIC,
    LANGUAGES,
    MAX_FILLERS,
    MODEL_INDEX,
    MODELS,
    N_CUSTOMERS,
    QUALITY_LABELS,
    REGIONS,
    RELEASES,
    ROUTE_MODELS,
    ROUTE_RATES,
    ROUTE_SPECS,
    ROUTES,
    TIERS,
    ZIPF_EXPONENT,
    Route,
)
from llmobs_cli.core.synth.corpus import CONTEXT, KB_TOPICS, REFUSALS
from llmobs_cli.core.synth.pools import Pools, Streams, gather, hex_ids, pools
from llmobs_cli.errors import UsageError

if TYPE_CHECKING:
    from llmobs_cli.core.synth.signals import SignalSpec

__all__ = [
    "DEFAULT_DRIFT_LANGUAGE",
    "DEFAULT_START",
    "DRIFT_KINDS",
    "LANGUAGES",
    "QUALITY_LABELS",
    "ROUTES",
    "ROUTE_RATES",
    "DriftSpec",
    "RegressionSpec",
    "generate",
    "population_shares",
    "row_shares",
    "write_generated",
]


@dataclass
class DriftSpec:
    """Drift injected into rows whose ``timestamp`` is at or after ``after`` (UTC)."""

    after: datetime
    response_length: float = 1.3  # multiplier on response length and output tokens
    refusal_rate: float = 0.06  # absolute increase of the refusal probability
    language: dict[str, float] | None = None  # new language mix; None keeps the base mix
    retrieval_score: float = -0.15  # shift of every retrieval score (top-1 weaker)
    routes: list[str] | None = None  # None = all routes
    topic_shift: float = 0.0  # share of calls moved to each route's "hot" topic (0 = off)


@dataclass
class RegressionSpec:
    """A quality drop tied to a new release on one route, from ``after`` (UTC) on."""

    after: datetime
    route: str = "search_qa"
    release: str = "v2.0.0"
    severity: float = 0.35  # share of answers made wrong / off-topic / truncated


# --------------------------------------------------------------------------------------
# Shares and validation
# --------------------------------------------------------------------------------------


def _rates(route_rates: dict[str, float] | None) -> dict[str, float]:
    rates = dict(ROUTE_RATES)
    for name, rate in (route_rates or {}).items():
        if name not in rates:
            raise unknown("--rate", "route", name, ROUTES)
        if not (0 < float(rate) <= 1):
            raise UsageError(f"route_rates: {name}: sample rate must be in (0, 1], got {rate}")
        rates[name] = float(rate)
    return rates


def population_shares() -> dict[str, float]:
    """Share of the *population* (all calls) per route: Zipf over the route rank."""
    raw = {r: 1.0 / (k + 1) ** ZIPF_EXPONENT for k, r in enumerate(ROUTES)}
    total = sum(raw.values())
    return {r: v / total for r, v in raw.items()}


def row_shares(route_rates: dict[str, float] | None = None) -> dict[str, float]:
    """Share of the *sampled rows* per route: population share × sample rate, normalised."""
    rates = _rates(route_rates)
    pop = population_shares()
    raw = {r: pop[r] * rates[r] for r in ROUTES}
    total = sum(raw.values())
    return {r: v / total for r, v in raw.items()}


def _utc(value: datetime | date) -> datetime:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _mix(mix: dict[str, float], what: str) -> np.ndarray:
    unknown = [k for k in mix if k not in LANGUAGES]
    if unknown:
        raise UsageError(
            f"{what}: unknown language '{unknown[0]}' (languages: {', '.join(LANGUAGES)})"
        )
    p = np.array([float(mix.get(k, 0.0)) for k in LANGUAGES])
    if (p < 0).any() or p.sum() <= 0 or not np.isfinite(p).all():
        raise UsageError(f"{what}: shares must be >= 0 and sum to more than 0")
    return p / p.sum()


def _check(drift: DriftSpec | None, regression: RegressionSpec | None) -> None:
    if drift is not None:
        if not drift.response_length > 0:
            raise UsageError(f"drift: response_length must be > 0, got {drift.response_length}")
        if not -1 <= drift.refusal_rate <= 1:
            raise UsageError(f"drift: refusal_rate must be in [-1, 1], got {drift.refusal_rate}")
        if not 0 <= drift.topic_shift <= 1:
            raise UsageError(f"drift: topic_shift must be in [0, 1], got {drift.topic_shift}")
        if not -1 <= drift.retrieval_score <= 1:
            raise UsageError(
                f"drift: retrieval_score must be in [-1, 1], got {drift.retrieval_score}"
            )
        for r in drift.routes or []:
            if r not in ROUTES:
                raise unknown("--drift-routes", "route", r, ROUTES)
    if regression is not None:
        if regression.route not in ROUTES:
            raise unknown("--regression-route", "route", regression.route, ROUTES)
        if not 0 <= regression.severity <= 1:
            raise UsageError(f"regression: severity must be in [0, 1], got {regression.severity}")
        if not regression.release or regression.release in RELEASES:
            raise UsageError(
                f"regression: release must be a new release name, got '{regression.release}'"
            )


# --------------------------------------------------------------------------------------
# The generator
# --------------------------------------------------------------------------------------

_US = 1_000_000
_DAY_US = 86_400 * _US


def _epoch_us(dt: datetime) -> int:
    return int((dt - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * _US + dt.microsecond


def _choice_cdf(u: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Vectorised categorical draw from uniforms ``u`` and probabilities ``p``."""
    cdf = np.cumsum(p)
    cdf[-1] = 1.0
    return np.searchsorted(cdf, u, side="right").clip(0, len(p) - 1)


#: Rows generated at once. Block ``b`` draws from streams keyed by the seed and ``b``
#: (block 0 by the seed alone), so memory holds one block whatever ``rows`` is, and the
#: rows of a file depend only on the seed and the options, never on how they are written.
BLOCK_ROWS = 100_000


@dataclass
class Generated:
    """What :func:`write_generated` wrote."""

    rows: int
    calls: float


def generate(
    rows: int,
    seed: int = 0,
    *,
    start: datetime | date | None = None,
    days: int = 42,
    drift: DriftSpec | None = None,
    regression: RegressionSpec | None = None,
    route_rates: dict[str, float] | None = None,
    drift_kinds: Sequence[str] | None = None,
) -> pl.DataFrame:
    """``rows`` sampled rows of realistic traces over ``days`` days from ``start``.

    ``drift_kinds`` limits the drift to some of :data:`DRIFT_KINDS` (default: all that the
    spec sets). Raises :class:`UsageError` for impossible arguments. The same rows as
    :func:`generate_blocks`, concatenated (see there for the order).
    """
    blocks = list(
        generate_blocks(
            rows,
            seed,
            start=start,
            days=days,
            drift=drift,
            regression=regression,
            route_rates=route_rates,
            drift_kinds=drift_kinds,
        )
    )
    if not blocks:
        return pl.DataFrame(schema=SCHEMA)
    return blocks[0] if len(blocks) == 1 else pl.concat(blocks)


def generate_blocks(
    rows: int,
    seed: int = 0,
    *,
    start: datetime | date | None = None,
    days: int = 42,
    drift: DriftSpec | None = None,
    regression: RegressionSpec | None = None,
    route_rates: dict[str, float] | None = None,
    drift_kinds: Sequence[str] | None = None,
) -> Iterator[pl.DataFrame]:
    """The rows of :func:`generate`, one block of at most :data:`BLOCK_ROWS` at a time.

    Every block spans the whole period with the same mix (sessions do not cross blocks)
    and is sorted by timestamp; a file of more than one block is a sequence of sorted
    runs. Arguments are checked before the first block is made.
    """
    if rows < 0:
        raise UsageError(f"rows must be >= 0, got {rows}")
    if days < 1:
        raise UsageError(f"days must be >= 1, got {days}")
    if seed < 0:
        raise UsageError(f"seed must be >= 0, got {seed}")
    rates = _rates(route_rates)
    _check(drift, regression)
    kinds = set(DRIFT_KINDS if drift_kinds is None else drift_kinds)
    bad_kind = kinds - set(DRIFT_KINDS)
    if bad_kind:
        raise unknown("--drift-kinds", "drift kind", sorted(bad_kind)[0], DRIFT_KINDS)
    start_dt = _utc(start if start is not None else DEFAULT_START)
    return _blocks(rows, seed, start_dt, days, drift, regression, kinds, rates, route_rates)


def _blocks(
    rows: int,
    seed: int,
    start_dt: datetime,
    days: int,
    drift: DriftSpec | None,
    regression: RegressionSpec | None,
    kinds: set[str],
    rates: dict[str, float],
    route_rates: dict[str, float] | None,
) -> Iterator[pl.DataFrame]:
    for block, first in enumerate(range(0, rows, BLOCK_ROWS)):
        yield _generate_block(
            min(BLOCK_ROWS, rows - first),
            Streams(seed, block),
            start_dt,
            days,
            drift,
            regression,
            kinds,
            rates,
            route_rates,
        )


def _generate_block(
    rows: int,
    streams: Streams,
    start_dt: datetime,
    days: int,
    drift: DriftSpec | None,
    regression: RegressionSpec | None,
    kinds: set[str],
    rates: dict[str, float],
    route_rates: dict[str, float] | None,
) -> pl.DataFrame:
    """One block of rows. One stage per column family, in a fixed order (each stage draws
    from its own named streams, so the order of draws — hence the output for a seed — does
    not depend on how the stages are arranged): sessions → rows (time, drift masks,
    language, release, model) → content draws → outcomes → text → tokens → latency →
    labels → cost → retrieved documents → assembly into the canonical schema.
    """
    start_us = _epoch_us(start_dt)
    g = _Setup(
        rows=rows,
        days=days,
        start_dt=start_dt,
        start_us=start_us,
        end_us=start_us + days * _DAY_US,
        drift=drift,
        regression=regression,
        kinds=kinds,
        rates=rates,
        route_rates=route_rates,
        P=pools(),
        S=streams,
        R=[ROUTE_SPECS[r] for r in ROUTES],
    )
    s = _sessions(g)
    r = _rows(g, s)
    d = _content_draws(g, r)
    o = _outcomes(g, r)
    t = _text(g, r, d, o)
    k = _tokens(g, r, o, t)
    lat = _latency(g, r, o, k)  # turns slow calls into timeouts: updates o.is_to and o.ok
    cost, with_cost = _cost(r, o, k)
    retrieved = _retrieved(
        g.S("retrieval"), g.P, t.rag, k.n_docs, g.P.topic_kb[t.gtopic], r.d_ret, drift
    )
    return _assemble(g, s, r, d, o, t, k, lat, cost, with_cost, retrieved)


@dataclass
class _Setup:
    """The resolved arguments every stage reads."""

    rows: int
    days: int
    start_dt: datetime
    start_us: int
    end_us: int
    drift: DriftSpec | None
    regression: RegressionSpec | None
    kinds: set[str]
    rates: dict[str, float]
    route_rates: dict[str, float] | None
    P: Pools
    S: Streams
    R: list[Route]


@dataclass
class _Sessions:
    """Per session: route, length, who, when (``time`` continues into the row gaps)."""

    n: int
    route: np.ndarray
    length: np.ndarray
    lang_u: np.ndarray
    cust: np.ndarray
    user: np.ndarray
    feature_u: np.ndarray
    model_u: np.ndarray
    ids: np.ndarray
    start: np.ndarray
    time: np.random.Generator


def _sessions(g: _Setup) -> _Sessions:
    rows, R, S = g.rows, g.R, g.S
    shares = row_shares(g.route_rates)
    sess_mean = np.array([r.session_mean for r in R])
    sp = np.array([shares[r] for r in ROUTES]) / sess_mean
    rs = S("sessions")
    s_route = _choice_cdf(rs.random(rows), sp / sp.sum())
    s_len = rs.geometric(1.0 / sess_mean[s_route])
    cum = np.cumsum(s_len)
    n_sess = int(np.searchsorted(cum, rows)) + 1
    s_route, s_len = s_route[:n_sess], s_len[:n_sess].copy()
    s_len[-1] -= int(cum[n_sess - 1]) - rows
    ru = S("session_attrs")
    s_lang_u = ru.random(n_sess)
    cust_p = 1.0 / np.arange(1, N_CUSTOMERS + 1) ** 1.1
    s_cust = _choice_cdf(ru.random(n_sess), cust_p / cust_p.sum())
    user_p = 1.0 / np.arange(1, 26)
    s_user = _choice_cdf(ru.random(n_sess), user_p / user_p.sum())
    s_feature_u = ru.random(n_sess)
    s_model_u = ru.random(n_sess)
    s_ids = hex_ids(ru, n_sess, 16)
    # Start times: weekday-weighted day, diurnal hour (peak mid-afternoon UTC).
    rt = S("time")
    first_wd = g.start_dt.weekday()
    day_w = np.where(((first_wd + np.arange(g.days)) % 7) >= 5, 0.65, 1.0)
    hours = np.arange(24)
    hour_w = 0.25 + np.exp(-0.5 * ((hours - 15) / 4.0) ** 2)
    s_day = _choice_cdf(rt.random(n_sess), day_w / day_w.sum())
    s_hour = _choice_cdf(rt.random(n_sess), hour_w / hour_w.sum())
    s_start = (
        g.start_us
        + s_day * _DAY_US
        + s_hour * 3600 * _US
        + (rt.random(n_sess) * 3600 * _US).astype(np.int64)
    )
    return _Sessions(
        n=n_sess,
        route=s_route,
        length=s_len,
        lang_u=s_lang_u,
        cust=s_cust,
        user=s_user,
        feature_u=s_feature_u,
        model_u=s_model_u,
        ids=s_ids,
        start=s_start,
        time=rt,
    )


@dataclass
class _Rows:
    """Per row: session, turn, route, timestamp, language, drift/regression masks, release,
    model."""

    sess: np.ndarray
    turn: np.ndarray
    route: np.ndarray
    ts: np.ndarray
    lang: np.ndarray
    d_len: np.ndarray
    d_ref: np.ndarray
    d_ret: np.ndarray
    d_topic: np.ndarray
    reg: np.ndarray
    rel_idx: np.ndarray
    model: np.ndarray
    provider: np.ndarray


def _rows(g: _Setup, s: _Sessions) -> _Rows:
    rows, R, drift, regression = g.rows, g.R, g.drift, g.regression
    sess = np.repeat(np.arange(s.n), s.length)
    first_row = np.cumsum(s.length) - s.length
    turn = np.arange(rows) - first_row[sess]
    route = s.route[sess]
    gap_mean = np.array([r.gap_s for r in R])[route]
    gaps = (s.time.exponential(1.0, rows) * gap_mean * _US).astype(np.int64)
    gaps[turn == 0] = 0
    csum = np.cumsum(gaps)
    offset = csum - csum[first_row][sess]
    dur = offset[np.cumsum(s.length) - 1]
    s_start = np.minimum(s.start, g.end_us - dur - _US)
    ts = s_start[sess] + offset

    # Drift / regression masks (by row timestamp; language by session start).
    def _drift_mask(kind: str, on: np.ndarray, when: np.ndarray) -> np.ndarray:
        if drift is None or kind not in g.kinds:
            return np.zeros(len(on), dtype=bool)
        ok = when >= _epoch_us(_utc(drift.after))
        if drift.routes is not None:
            ok &= np.isin(on, [ROUTES.index(r) for r in drift.routes])
        return ok

    lang_base = _choice_cdf(s.lang_u, _mix(BASE_LANGUAGE, "language"))
    if drift is not None and drift.language is not None:
        lang_drift = _choice_cdf(s.lang_u, _mix(drift.language, "drift.language"))
        s_lang = np.where(_drift_mask("language", s.route, s_start), lang_drift, lang_base)
    else:
        s_lang = lang_base
    if regression is not None:
        reg = (route == ROUTES.index(regression.route)) & (ts >= _epoch_us(_utc(regression.after)))
    else:
        reg = np.zeros(rows, dtype=bool)

    # Releases: v1.0.0 → v1.1.0 → v1.2.0 at route-specific points of the period.
    rel_idx = np.zeros(rows, dtype=np.int64)
    for k in range(len(ROUTES)):
        for j, frac in enumerate((0.22 + 0.06 * k, 0.50 + 0.05 * k), start=1):
            rel_idx[(route == k) & (ts >= g.start_us + int(frac * g.days * _DAY_US))] = j

    # Model per session.
    s_model = np.zeros(s.n, dtype=np.int64)
    for k, r in enumerate(ROUTES):
        names = list(ROUTE_MODELS[r])
        p = np.array([ROUTE_MODELS[r][m] for m in names])
        idx = np.array([MODEL_INDEX[m] for m in names])
        sel = s.route == k
        s_model[sel] = idx[_choice_cdf(s.model_u[sel], p / p.sum())]
    model = s_model[sess]
    return _Rows(
        sess=sess,
        turn=turn,
        route=route,
        ts=ts,
        lang=s_lang[sess],
        d_len=_drift_mask("length", route, ts),
        d_ref=_drift_mask("refusals", route, ts),
        d_ret=_drift_mask("retrieval", route, ts),
        d_topic=_drift_mask("topic", route, ts),
        reg=reg,
        rel_idx=rel_idx,
        model=model,
        provider=np.array([m.provider for m in MODELS])[model],
    )


@dataclass
class _Draws:
    """The ``content`` stream's draws per row (topic, phrasing, length noise)."""

    gtopic: np.ndarray
    other: np.ndarray
    opener: np.ndarray
    ctx_k: np.ndarray
    ctx_s: np.ndarray
    fill_var: np.ndarray
    ack: np.ndarray
    refusal_pick: np.ndarray
    cite_u: np.ndarray
    ref_u: np.ndarray
    beta_u: np.ndarray
    length_noise: np.ndarray
    trunc_frac: np.ndarray
    round_u: np.ndarray


def _content_draws(g: _Setup, r: _Rows) -> _Draws:
    rows, P, route, drift = g.rows, g.P, r.route, g.drift
    rc = g.S("content")
    topic_local = (rc.random(rows) * P.topic_count[route]).astype(np.int64)
    if drift is not None and drift.topic_shift > 0:
        # A topic surge (say, an incident that makes everyone ask about password resets):
        # its own stream, so that the other draws stay the same.
        hot = np.array([[t.name for t in x.topics].index(HOT_TOPIC[x.name]) for x in g.R])[route]
        surge = r.d_topic & (g.S("topic_drift").random(rows) < drift.topic_shift)
        topic_local = np.where(surge, hot, topic_local)
    gtopic = P.topic_offset[route] + topic_local
    other = P.topic_offset[route] + (
        (topic_local + 1 + (rc.random(rows) * (P.topic_count[route] - 1)).astype(np.int64))
        % P.topic_count[route]
    )
    opener = (rc.random(rows) * P.opener_count[route]).astype(np.int64)
    ctx_max = np.array([x.context_max for x in g.R])[route]
    ctx_k = (rc.random(rows) * (ctx_max + 1)).astype(np.int64)
    ctx_s = rc.integers(0, len(CONTEXT), rows)
    fill_var = rc.integers(0, FILLER_VARIANTS, rows)
    ack = rc.integers(0, 2, rows)
    refusal_pick = rc.integers(0, len(REFUSALS), rows)
    cite_u = rc.random(rows)
    ref_u = rc.random(rows)
    beta_u = rc.random(rows)
    length_noise = rc.lognormal(0.0, 0.45, rows)
    trunc_frac = rc.uniform(0.35, 0.7, rows)
    round_u = rc.random(rows)
    return _Draws(
        gtopic=gtopic,
        other=other,
        opener=opener,
        ctx_k=ctx_k,
        ctx_s=ctx_s,
        fill_var=fill_var,
        ack=ack,
        refusal_pick=refusal_pick,
        cite_u=cite_u,
        ref_u=ref_u,
        beta_u=beta_u,
        length_noise=length_noise,
        trunc_frac=trunc_frac,
        round_u=round_u,
    )


@dataclass
class _Outcomes:
    """Per row: what happened to the call (masks) and which error text it logged."""

    is_err: np.ndarray
    is_to: np.ndarray
    ok: np.ndarray
    filtered: np.ndarray
    refused: np.ndarray
    answered: np.ndarray
    wrong: np.ndarray
    offtopic: np.ndarray
    truncated: np.ndarray
    err_kind: np.ndarray


def _outcomes(g: _Setup, r: _Rows) -> _Outcomes:
    """Outcome per row (precedence: error/timeout > filtered > refusal > regression >
    natural)."""
    rows, route, drift, regression = g.rows, r.route, g.drift, g.regression
    rq = g.S("quality")
    u_err, u_to, u_cf, u_ref, u_reg, u_kind, u_nat = (rq.random(rows) for _ in range(7))
    err_kind = _choice_cdf(rq.random(rows), ERROR_P / ERROR_P.sum())
    refusal_p = np.array([x.refusal_rate for x in g.R])[route]
    if drift is not None:
        refusal_p = refusal_p + np.where(r.d_ref, drift.refusal_rate, 0.0)
    err_p = np.array([x.error_rate for x in g.R])[route]
    is_err = u_err < err_p
    is_to = ~is_err & (u_to < 0.003)
    ok = ~is_err & ~is_to
    filtered = ok & (u_cf < 0.002)
    refused = ok & ~filtered & (u_ref < refusal_p)
    answered = ok & ~filtered & ~refused
    sev = regression.severity if regression is not None else 0.0
    bad_reg = answered & r.reg & (u_reg < sev)
    wrong = (bad_reg & (u_kind < 0.5)) | (answered & ~bad_reg & (u_nat < 0.03))
    offtopic = (bad_reg & (u_kind >= 0.5) & (u_kind < 0.75)) | (
        answered & ~bad_reg & (u_nat >= 0.03) & (u_nat < 0.04)
    )
    truncated = (bad_reg & (u_kind >= 0.75)) | (
        answered & ~bad_reg & (u_nat >= 0.04) & (u_nat < 0.05)
    )
    return _Outcomes(
        is_err=is_err,
        is_to=is_to,
        ok=ok,
        filtered=filtered,
        refused=refused,
        answered=answered,
        wrong=wrong,
        offtopic=offtopic,
        truncated=truncated,
        err_kind=err_kind,
    )


@dataclass
class _Text:
    """``prompt``, ``response`` and ``reference`` text, with the lengths later stages use."""

    gtopic: np.ndarray
    rag: np.ndarray
    prompt: pl.Series
    response: pl.Series
    reference: pl.Series
    prompt_len: np.ndarray
    resp_len: np.ndarray


def _text(g: _Setup, r: _Rows, d: _Draws, o: _Outcomes) -> _Text:
    """Answer assembly: ack + core (+ citation) + fillers up to a target length."""
    P, R, route, lang, drift = g.P, g.R, r.route, r.lang, g.drift
    nl = len(LANGUAGES)
    gtopic = d.gtopic
    core_topic = np.where(o.offtopic, d.other, gtopic)
    core_idx = (core_topic * nl + lang) * 2 + o.wrong.astype(np.int64)
    ack_idx = (route * 2 + d.ack) * nl + lang
    rag = np.array([x.rag for x in R])[route]
    cite = rag & (d.cite_u < np.array([x.cite_share for x in R])[route])
    core_kb = P.topic_kb[core_topic]
    cite &= core_kb >= 0
    cite_text_len = np.where(cite, 11, 0)  # " [doc-NNN]" plus the period spacing
    # Fillers make up the rest of a target length; stochastic rounding keeps the expected
    # length exact, so a drift multiplier scales the mean answer length by that factor.
    target = np.array([x.answer_chars for x in R])[route] * d.length_noise
    fixed = P.ack_len[ack_idx] + P.answer_len[core_idx] + cite_text_len
    fm = P.filler_mean[lang]
    n_fill = np.floor(np.clip((target - fixed) / fm, 0, None) + d.round_u)
    if drift is not None:
        grown = (drift.response_length * (fixed + n_fill * fm) - fixed) / fm
        n_fill = np.where(r.d_len, np.floor(np.clip(grown, 0, None) + d.round_u), n_fill)
    n_fill = np.clip(n_fill, 0, MAX_FILLERS).astype(np.int64)
    fill_idx = (lang * (MAX_FILLERS + 1) + n_fill) * FILLER_VARIANTS + d.fill_var

    cols = pl.DataFrame(
        {
            "ack": gather(P.acks, ack_idx),
            "core": gather(P.answers, core_idx),
            "cite": pl.Series(np.where(cite, P.topic_kb[core_topic], 0)).cast(pl.String),
            "fill": gather(P.fillers, fill_idx),
            "refusal": gather(P.refusals, d.refusal_pick * nl + lang),
            "opener": gather(P.openers, (route * 4 + d.opener) * nl + lang),
            "question": gather(P.questions, gtopic * nl + lang),
            "context": gather(P.contexts, (lang * 4 + d.ctx_k) * len(CONTEXT) + d.ctx_s),
            "reference": gather(P.answers, (gtopic * nl + lang) * 2),
        }
    )
    c = pl.col
    full = pl.concat_str(
        c("ack"),
        c("core"),
        pl.when(pl.Series(cite))
        .then(
            pl.concat_str(
                pl.lit(" [doc-"), (c("cite").cast(pl.Int64) + 101).cast(pl.String), pl.lit("]")
            )
        )
        .otherwise(pl.lit("")),
        c("fill"),
    )
    text = cols.select(
        full.alias("full"),
        pl.concat_str(c("opener"), c("question"), c("context")).alias("prompt"),
        c("refusal"),
        c("reference"),
    )
    del cols
    response = text.select(
        pl.when(pl.Series(o.answered))
        .then(c("full"))
        .when(pl.Series(o.refused))
        .then(c("refusal"))
        .when(pl.Series(o.filtered))
        .then(pl.lit(""))
        .otherwise(None)
        .alias("response")
    )["response"]
    # Truncation (a few percent of rows): cut the full answer mid-way, at a word boundary.
    cut_at = np.flatnonzero(o.answered & o.truncated)
    if cut_at.size:
        full_cut = text["full"].gather(cut_at)
        keep = (full_cut.str.len_chars().to_numpy() * d.trunc_frac[cut_at]).astype(np.int64)
        cut = full_cut.str.slice(0, pl.Series(keep)).str.replace(r"\s+\S*$", "")
        response = response.scatter(cut_at, cut)
    prompt = text["prompt"]
    return _Text(
        gtopic=gtopic,
        rag=rag,
        prompt=prompt,
        response=response,
        reference=text["reference"],
        prompt_len=prompt.str.len_chars().to_numpy(),
        resp_len=response.str.len_chars().fill_null(0).to_numpy(),
    )


@dataclass
class _Tokens:
    """Token counts (contract conventions: cached and cache-write ⊆ input, reasoning ⊆
    output) and the per-row facts they came from."""

    input: np.ndarray
    output: np.ndarray
    cached: np.ndarray
    reasoning: np.ndarray
    write: np.ndarray
    n_docs: np.ndarray
    sys_idx: np.ndarray
    multi: np.ndarray
    prev_ok: np.ndarray
    is_reasoning: np.ndarray


def _tokens(g: _Setup, r: _Rows, o: _Outcomes, t: _Text) -> _Tokens:
    rows, P, R, route, turn = g.rows, g.P, g.R, r.route, r.turn
    rk = g.S("tokens")
    is_reasoning = np.array([m.reasoning for m in MODELS])[r.model]
    max_tok = np.array([x.max_tokens for x in R])[route]
    sys_idx = route * 2 + r.reg.astype(np.int64)
    multi = np.isin(route, [ROUTES.index("chat"), ROUTES.index("support_agent")])
    prev_ok = np.zeros(rows, dtype=bool)
    prev_ok[1:] = (turn[1:] > 0) & o.ok[:-1]
    hist_chars = np.where(
        multi & (turn > 0), np.r_[0, t.prompt_len[:-1]] + np.r_[0, t.resp_len[:-1]], 0
    )
    n_docs = np.where(t.rag, rk.integers(2, 5, rows), 0)
    doc_chars = n_docs * int(np.mean([len(d) for d in P.docs]))
    overhead = np.array([x.overhead_tokens for x in R])[route] * rk.lognormal(0, 0.35, rows)
    in_chars = P.system_len[sys_idx] + t.prompt_len + hist_chars + doc_chars
    input_tokens = np.rint(in_chars / CHARS_PER_TOKEN * rk.uniform(0.92, 1.08, rows) + overhead)
    input_tokens = input_tokens.astype(np.int64)
    visible = np.ceil(t.resp_len / CHARS_PER_TOKEN * rk.lognormal(0, 0.08, rows)).astype(np.int64)
    visible = np.where(o.filtered, rk.integers(5, 60, rows), visible)
    reasoning = np.where(
        is_reasoning, np.rint(rk.lognormal(np.log(380), 0.7, rows)).astype(np.int64), 0
    )
    # A finished answer fits in max_tokens (reasoning included); a truncated one used them all.
    visible = np.minimum(visible, max_tok - 1)
    reasoning = np.minimum(reasoning, np.where(o.truncated, max_tok, max_tok - 1 - visible))
    output_tokens = np.where(o.truncated, max_tok, visible + reasoning)
    # Prompt caching: likelier on later turns of a conversation (the shared prefix).
    hit_p = np.where(multi & (turn > 0), 0.75, 0.35)
    hit = rk.random(rows) < hit_p
    frac_cached = rk.uniform(0.4, 0.92, rows)
    cached = np.zeros(rows, dtype=np.int64)
    openai = r.provider == "openai"
    cached = np.where(
        openai & hit & (input_tokens >= 1024), (input_tokens * frac_cached // 128) * 128, cached
    )
    anth = r.provider == "anthropic"
    cached = np.where(anth & hit, (input_tokens * frac_cached).astype(np.int64), cached)
    deep = r.provider == "deepseek"
    cached = np.where(deep & hit, (input_tokens * frac_cached // 64) * 64, cached)
    write = np.where(
        anth & ~hit & (rk.random(rows) < 0.6),
        (input_tokens * rk.uniform(0.3, 0.8, rows)).astype(np.int64),
        0,
    )
    write = np.minimum(write, input_tokens - cached)
    return _Tokens(
        input=input_tokens,
        output=output_tokens,
        cached=cached,
        reasoning=reasoning,
        write=write,
        n_docs=n_docs,
        sys_idx=sys_idx,
        multi=multi,
        prev_ok=prev_ok,
        is_reasoning=is_reasoning,
    )


def _latency(g: _Setup, r: _Rows, o: _Outcomes, k: _Tokens) -> tuple[np.ndarray, np.ndarray]:
    """``latency_ms`` and ``ttft_ms``; a call that reaches its route's timeout becomes a
    timeout (``o.is_to`` and ``o.ok`` are updated in place)."""
    rows = g.rows
    rl = g.S("latency")
    ttft0 = np.array([m.ttft_ms for m in MODELS])[r.model]
    tpot = np.array([m.tpot_ms for m in MODELS])[r.model]
    ttft = ttft0 * (1 + k.input / 8000) * rl.lognormal(
        0, 0.4, rows
    ) + k.reasoning * tpot * rl.lognormal(0, 0.2, rows)
    gen = (k.output - k.reasoning) * tpot * rl.lognormal(0, 0.25, rows)
    stall = np.where(rl.random(rows) < 0.02, 1 + rl.pareto(1.5, rows), 1.0)
    latency = (ttft + gen) * stall + rl.uniform(15, 60, rows)
    cap = np.array([x.timeout_ms for x in g.R])[r.route]
    o.is_to |= o.ok & (latency >= cap)
    o.ok &= ~o.is_to
    latency = np.where(o.is_to, cap, latency)
    err_latency = rl.lognormal(np.log(250), 0.6, rows)
    latency = np.where(o.is_err, err_latency, latency)
    latency = np.round(latency, 1)
    ttft = np.round(np.minimum(ttft, latency), 1)
    return latency, ttft


def _labels(o: _Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """Indices into :data:`QUALITY_LABELS` and :data:`_FINISH` (building string arrays in
    numpy is slow; the assembly gathers from the small pools)."""
    Q = QUALITY_LABELS.index
    quality = np.select(
        [o.is_err | o.is_to, o.filtered, o.refused, o.wrong, o.offtopic, o.truncated],
        [Q("error"), Q("filtered"), Q("refusal"), Q("wrong"), Q("offtopic"), Q("truncated")],
        Q("good"),
    )
    finish = np.select([o.filtered, o.truncated], [2, 1], 0)
    return quality, finish


_FINISH = ("stop", "length", "content_filter")


def _cost(r: _Rows, o: _Outcomes, k: _Tokens) -> tuple[np.ndarray, np.ndarray]:
    """List-price cost per row, and which rows log it (only the refunds gateway logs a
    cost; it is billed at an enterprise price, 10 % off list)."""
    model = r.model
    m_in = np.array([m.price_in for m in MODELS])[model]
    m_cached = np.array([m.price_cached for m in MODELS])[model]
    m_out = np.array([m.price_out for m in MODELS])[model]
    m_write = np.array([m.price_cache_write for m in MODELS])[model]
    list_cost = (
        (k.input - k.cached - k.write) * m_in
        + k.cached * m_cached
        + k.write * m_write
        + k.output * m_out
    ) / 1e6
    return list_cost, o.ok & (r.route == ROUTES.index("refunds"))


def _assemble(
    g: _Setup,
    s: _Sessions,
    r: _Rows,
    d: _Draws,
    o: _Outcomes,
    t: _Text,
    k: _Tokens,
    lat: tuple[np.ndarray, np.ndarray],
    list_cost: np.ndarray,
    with_cost: np.ndarray,
    retrieved: pl.Series,
) -> pl.DataFrame:
    """The canonical frame: ids, people, time, model, text, tokens, cost, status, metadata
    (the generator's ground-truth labels), messages; sorted by timestamp."""
    rows, R, route, model, regression = g.rows, g.R, r.route, r.model, g.regression
    latency, ttft = lat
    quality, finish = _labels(o)
    tier_of = np.where(
        np.arange(N_CUSTOMERS) < 25, 2, np.where(np.arange(N_CUSTOMERS) % 3 == 0, 0, 1)
    )
    region_of = np.random.default_rng(7).integers(0, len(REGIONS), N_CUSTOMERS)
    cust = s.cust[r.sess]
    feat_n = np.array([len(x.features) for x in R])
    feat_local = (s.feature_u[r.sess] * feat_n[route]).astype(np.int64)
    features = [f for x in R for f in x.features]
    feat_off = np.cumsum(np.r_[0, feat_n[:-1]])
    params = _params_pool()
    tag_pool = [list(x.tags) + (["beta"] if b else []) for x in R for b in (False, True)]
    rid = g.S("ids")
    trace_ids = hex_ids(rid, rows, 32)
    span_ids = hex_ids(rid, rows, 16)
    release_names = [*RELEASES, regression.release if regression else "v2.0.0"]
    rel_final = np.where(r.reg, 3, r.rel_idx)

    is_error = o.is_err | o.is_to
    null_int = pl.lit(None, dtype=pl.Int64)
    c = pl.col
    frame = pl.DataFrame(
        {
            "trace_id": pl.Series(trace_ids).cast(pl.String),
            "span_id": pl.Series(span_ids).cast(pl.String),
            "session_id": pl.Series(s.ids[r.sess]).cast(pl.String),
            "_cust": cust,
            "_user": s.user[r.sess],
            "feature": gather(features, feat_off[route] + feat_local),
            "_ts": r.ts,
            "latency_ms": latency,
            "_ttft": ttft,
            "route": gather(ROUTES, route),
            "release": gather(release_names, rel_final),
            "provider": gather([m.provider for m in MODELS], model),
            "model": gather([m.name for m in MODELS], model),
            "params": gather(params, (route * len(MODELS) + model) * 2 + r.reg.astype(np.int64)),
            "system": gather(g.P.systems, k.sys_idx),
            "prompt": t.prompt,
            "response": t.response,
            "finish_reason": gather(_FINISH, finish),
            "_in": k.input,
            "_out": k.output,
            "_cached": k.cached,
            "_reason": k.reasoning,
            "_write": k.write,
            "_cost": list_cost * 0.9,
            "_with_cost": with_cost,
            "_is_error": is_error,
            "_is_to": o.is_to,
            "_err_text": gather(ERRORS, o.err_kind),
            "sample_rate": np.array([g.rates[x] for x in ROUTES])[route],
            "_has_ref": (np.array([x.reference_share for x in R])[route] > d.ref_u),
            "reference": t.reference,
            "_tier": gather(TIERS, tier_of[cust]),
            "_region": gather(REGIONS, region_of[cust]),
            "_lang": gather(LANGUAGES, r.lang),
            "_topic": gather(g.P.topic_names, t.gtopic),
            "_quality": gather(QUALITY_LABELS, quality),
            "tags": pl.Series(tag_pool).gather(pl.Series(route * 2 + (d.beta_u < 0.1))),
            "_multi": k.multi,
            "_turn": r.turn,
            "_prev_ok": k.prev_ok,
            "_provider_kind": gather([m.provider for m in MODELS], model),
            "_reasoning_model": k.is_reasoning,
        }
    ).with_columns(retrieved.alias("retrieved"))
    ts_col = pl.from_epoch(c("_ts"), time_unit="us").dt.replace_time_zone("UTC")
    out = frame.with_columns(
        pl.concat_str(pl.lit("cust-"), c("_cust").cast(pl.String).str.zfill(4)).alias(
            "customer_id"
        ),
        pl.concat_str(
            pl.lit("user-"),
            c("_cust").cast(pl.String).str.zfill(4),
            pl.lit("-"),
            c("_user").cast(pl.String),
        ).alias("user_id"),
        ts_col.alias("timestamp"),
        (ts_col + pl.duration(microseconds=(c("latency_ms") * 1000).cast(pl.Int64))).alias(
            "end_time"
        ),
        pl.when(c("_is_error")).then(None).otherwise(c("_ttft")).alias("ttft_ms"),
        pl.lit("production").alias("environment"),
        pl.when(c("_is_error")).then(None).otherwise(c("response")).alias("response"),
        pl.when(c("_is_error")).then(None).otherwise(c("finish_reason")).alias("finish_reason"),
        pl.when(c("_is_error")).then(null_int).otherwise(c("_in")).alias("input_tokens"),
        pl.when(c("_is_error")).then(null_int).otherwise(c("_out")).alias("output_tokens"),
        # Mistral does not report cached tokens: unknown, not zero.
        pl.when(c("_is_error") | (c("_provider_kind") == "mistral"))
        .then(null_int)
        .otherwise(c("_cached"))
        .alias("cached_tokens"),
        pl.when(c("_is_error"))
        .then(null_int)
        .when(c("_reasoning_model"))
        .then(c("_reason"))
        .when(c("_provider_kind") == "openai")
        .then(pl.lit(0, dtype=pl.Int64))
        .otherwise(null_int)
        .alias("reasoning_tokens"),
        pl.when(~c("_is_error") & (c("_provider_kind") == "anthropic"))
        .then(c("_write"))
        .otherwise(null_int)
        .alias("cache_write_tokens"),
        pl.when(c("_with_cost")).then(c("_cost").round(8)).otherwise(None).alias("cost_usd"),
        pl.when(c("_is_error")).then(pl.lit("error")).otherwise(pl.lit("ok")).alias("status"),
        pl.when(c("_is_to"))
        .then(pl.lit("timeout"))
        .when(c("_is_error"))
        .then(c("_err_text"))
        .otherwise(None)
        .alias("error"),
        pl.when(c("_has_ref")).then(c("reference")).otherwise(None).alias("reference"),
        pl.concat_str(
            pl.lit('{"tier":"'),
            c("_tier"),
            pl.lit('","region":"'),
            c("_region"),
            pl.lit('","lang":"'),
            c("_lang"),
            pl.lit('","topic":"'),
            c("_topic"),
            pl.lit('","quality":"'),
            c("_quality"),
            pl.lit('"}'),
        ).alias("metadata"),
    )
    out = out.with_columns(_messages(out).alias("messages"))
    out = out.with_columns(
        [pl.lit(None, dtype=SCHEMA[f]).alias(f) for f in ("parent_span_id", "logprobs")]
    )
    out = out.select([pl.col(f).cast(SCHEMA[f]) for f in FIELDS])
    return out.sort("timestamp", maintain_order=True)


def _params_pool() -> list[str]:
    """``params`` JSON per (route, model, regression release), compact like the readers'."""
    pool = []
    for r in ROUTES:
        spec = ROUTE_SPECS[r]
        for m in MODELS:
            for reg in (False, True):
                if m.reasoning:
                    obj: dict[str, object] = {
                        "reasoning_effort": "low" if reg else "medium",
                        "max_completion_tokens": spec.max_tokens,
                    }
                else:
                    obj = {
                        "temperature": 1.0 if reg else float(spec.temperature),
                        "top_p": 1.0,
                        "max_tokens": spec.max_tokens,
                    }
                pool.append(json.dumps(obj, separators=(",", ":")))
    return pool


def _messages(frame: pl.DataFrame) -> pl.Series:
    """The input conversation on later turns of multi-turn routes.

    ``[previous user, previous assistant, user]`` (the system message is in ``system``;
    the first turn's conversation is just ``prompt``, so it stays null). Built in Arrow on
    the rows that have one: the candidate columns are laid end to end and one ``take``
    picks the present ones in row order; offsets come from the per-row counts.
    """
    c = pl.col
    parts = frame.select(
        c("prompt").shift(1).alias("prev_prompt"),
        c("response").shift(1).alias("prev_response"),
        c("prompt"),
        (c("_multi") & (c("_turn") > 0)).alias("later"),
        (c("_prev_ok") & c("response").shift(1).is_not_null()).alias("prev_ok"),
    )
    later = parts["later"].to_numpy()
    sub = parts.filter(pl.col("later"))
    m = sub.height
    present = np.stack([np.ones(m, bool), sub["prev_ok"].to_numpy(), np.ones(m, bool)], axis=1)
    rows_idx, slot = np.nonzero(present)
    take = pa.array(slot.astype(np.int64) * m + rows_idx)
    content = pa.concat_arrays(
        [
            sub[name].to_arrow().cast(pa.large_string())
            for name in ("prev_prompt", "prev_response", "prompt")
        ]
    ).take(take)
    roles = pa.array(["user", "assistant", "user"], type=pa.large_string()).take(pa.array(slot))
    values = pa.StructArray.from_arrays([roles, content], names=["role", "content"])
    counts = np.zeros(frame.height, dtype=np.int64)
    counts[later] = present.sum(axis=1)
    offsets = pa.array(np.r_[0, np.cumsum(counts)].astype(np.int64))
    lists = pa.LargeListArray.from_arrays(offsets, values, mask=pa.array(~later))
    return pl.Series("messages", lists).cast(pl.List(MESSAGE))


def _retrieved(
    rng: np.random.Generator,
    P: Pools,
    rag: np.ndarray,
    n_docs: np.ndarray,
    kb_topic: np.ndarray,
    drifted: np.ndarray,
    drift: DriftSpec | None,
) -> pl.Series:
    """``retrieved`` lists (best first) from flat arrays and offsets, built in Arrow."""
    rows = len(rag)
    kmax = 4
    n_kb = len(KB_TOPICS)
    # Distinct distractors: increasing offsets 1..(2*kmax) from the relevant topic.
    steps = 1 + rng.integers(0, 2, size=(rows, kmax - 1))
    offs = np.concatenate([np.zeros((rows, 1), dtype=np.int64), np.cumsum(steps, axis=1)], axis=1)
    topic = (np.maximum(kb_topic, 0)[:, None] + offs) % n_kb
    # Now and then the relevant document is only second best.
    swap = rng.random(rows) < 0.08
    topic[swap, 0], topic[swap, 1] = topic[swap, 1], topic[swap, 0].copy()
    top1 = np.clip(rng.normal(0.84, 0.06, rows), 0.3, 0.99)
    dec = np.abs(rng.normal(0.07, 0.03, size=(rows, kmax - 1)))
    scores = np.concatenate([top1[:, None], top1[:, None] - np.cumsum(dec, axis=1)], axis=1)
    if drift is not None:
        scores = scores + np.where(drifted, drift.retrieval_score, 0.0)[:, None]
    scores = np.round(np.clip(scores, 0.0, 1.0), 4)
    k = np.where(rag, n_docs, 0)
    mask = np.arange(kmax)[None, :] < k[:, None]
    flat_topic = topic[mask]
    pick = pa.array(flat_topic)
    ids = pa.array(P.doc_ids, type=pa.string()).take(pick)
    content = pa.array(P.docs, type=pa.string()).take(pick)
    values = pa.StructArray.from_arrays(
        [ids, content, pa.array(scores[mask], type=pa.float64())], names=["id", "content", "score"]
    )
    offsets = pa.array(np.r_[0, np.cumsum(k)].astype(np.int32))
    lists = pa.ListArray.from_arrays(offsets, values, mask=pa.array(~rag))
    return pl.Series("retrieved", lists).cast(pl.List(DOCUMENT))


def write_generated(
    out: Path,
    rows: int,
    seed: int = 0,
    *,
    start: datetime | date | None = None,
    days: int = 42,
    drift: DriftSpec | None = None,
    regression: RegressionSpec | None = None,
    route_rates: dict[str, float] | None = None,
    drift_kinds: Sequence[str] | None = None,
    to: str | None = None,
    progress: ProgressFn = no_progress,
    signals: SignalSpec | None = None,
) -> Generated:
    """Generate block by block and stream to ``out`` (.parquet, .jsonl[.gz|.zst]); the file
    appears atomically once complete. Memory holds one block whatever ``rows`` is.

    ``signals`` adds log-probs, confidence / cited-rank effects and session repeats to each
    block (``core/synth/signals``; sessions do not cross blocks); without it the output is
    exactly that of earlier versions."""
    from llmobs_cli.core import outputs
    from llmobs_cli.core.ingest.convert import output_format
    from llmobs_cli.core.sinks import FileSink
    from llmobs_cli.core.synth.signals import add_signals

    out = Path(out)
    fmt = output_format(out, to)
    outputs.check_file_output(out)
    blocks = generate_blocks(
        rows,
        seed,
        start=start,
        days=days,
        drift=drift,
        regression=regression,
        route_rates=route_rates,
        drift_kinds=drift_kinds,
    )
    calls = 0.0
    with FileSink(out, fmt) as sink:
        for block, frame in enumerate(blocks):
            if signals is not None:
                frame = add_signals(frame, signals, seed, block)
            sink.write(frame)
            calls += float((1.0 / frame["sample_rate"]).sum())
            progress(Progress(sink.rows, sink.bytes_written, rows, None, "generate"))
        sink.publish()
    return Generated(rows=sink.rows, calls=calls)
