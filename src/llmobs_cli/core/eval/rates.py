"""``llmobs plan``: per-route judge sampling rates that catch a regression in time.

The question a team asks once and again whenever traffic changes: *at what rate should
each route be judged so that a quality drop of size D shows up within W hours, and what
does that cost?* The answer is computed from the team's own dump:

**Traffic.** Calls per day per route are Horvitz–Thompson sums (``Σ 1/sample_rate``) of
the calls eval can judge (status ok, with a response), divided by the days the dump
spans. When the sampled rows of a route are unevenly spread over the weekdays (χ² test,
p < 0.01, busiest/quietest weekday > 1.25, at least two weeks of data) the plan also looks
at the quietest run of weekdays as long as the window (``plan_calls_per_day``; windows of
a week or more see the mean). Eval judges a fixed budget per window, so the judgments per
window are the same on quiet days, at a larger share of the calls: the MDE is computed
for the judgments the quietest window can supply, and the storage rate the plan asks for
is the share judged there. Rates and judgments per day refer to the mean day.

**Variance model.** A route's scores in the baseline window have variance ``σ²_b``:
measured from ``--evals`` (Hájek mean and weighted variance per route × evaluator; the
largest evaluator variance, so every evaluator is covered) or, without evals, the
conservative Bernoulli maximum ``p = 0.5`` (``σ² = 0.25``). After a drop ``D`` from a
mean ``p`` the current window's variance is taken at its largest possible value,
``σ²_c = σ²_b + D(2p−1) − D²`` (answers moving from the top score to the bottom one; exact
for 0/1 scores), never below ``σ²_b`` nor above ``(p−D)(1−p+D)``. A
design effect ``deff = n·Σw²/(Σw)²`` of the route's storage weights inflates both, since
eval's Hájek estimator weights judged calls by ``1/sample_rate``.

**The test planned for** is the one ``llmobs eval --current W --baseline W`` runs: for
each route × evaluator, ``Δ = p̂_cur − p̂_base`` with ``SE = √(SE²_cur + SE²_base)``, a
one-sided p-value, Benjamini–Hochberg across all ``m`` route × evaluator tests. With one
route dropping and the others not, BH's smallest q is at most ``m·p``, so the plan uses
the Bonferroni level ``α/m`` (slightly conservative). Eval judges the same budget in both
windows, so with ``n`` judgments per window::

    SE  = √(deff·(σ²_b + σ²_c) / n)
    MDE = (z₁₋α/m + z_power) · SE          (= regression.mde at two-sided level 2α/m)
    n   = deff·(σ²_b + σ²_c)·(z₁₋α/m + z_power)² / D²    for MDE = D

Eval flags a regression only when also ``Δ ≤ −min_drop``; with ``min_drop = D`` a drop of
exactly ``D`` would be flagged about half the time whatever the sample, so the plan
reports the largest ``min_drop`` that never overrules a significant result
(``z₁₋α/m · SE`` of the most precise planned route) and ``--write-config`` lowers
``eval.min_drop`` to it.

**Allocations** (all side by side in the output):

* ``equal`` (the brief's rule, default): every route that can afford it gets the same
  judgments per day, the most any such route needs; a route too small for that is judged
  at 100 % and said so, with the window that would work; ``stakes: high`` routes at 100 %.
* ``neyman``: sized for one overall number, the mix-standardised score over all routes
  (one test at level α): ``n_h ∝ s_h·σ_h·√deff_h`` with ``s_h`` the route's share of
  calls, capped at 100 % with the rest re-split.
* ``cost_capped`` (with ``--max-cost-per-day``): equal judgments per route, as many as the
  cap allows after the high-stakes routes.

**Cost model.** A judged call costs one judge call per LLM criterion that applies to it
(faithfulness only where documents were retrieved). Tokens per judge call come from
``--evals`` (recorded ``judge_input_tokens``/``judge_output_tokens`` per judged call), else
are estimated: the criterion's own prompt text plus the call's input, response (and
documents for faithfulness) at 4 characters per token, and :data:`ANSWER_TOKENS` out.
They are priced with the judge model's price (``judge.*_price_per_million``, else the
price table). A month is 30 days.

**Storage.** A route stored at rate ``s`` cannot be judged at a rate above ``s`` of its
population: the plan names the storage rate the judged traffic needs (the eval rate) and
flags routes whose dump was stored below it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
import polars as pl

from llmobs_cli.core.eval import regression as reg
from llmobs_cli.core.record.jsonable import clean
from llmobs_cli.core.record.windows import parse_duration
from llmobs_cli.errors import InputError, UsageError

#: Tokens of a judge's answer (reasoning and score), for estimates before any call.
ANSWER_TOKENS = 120
#: Characters per token in estimates (the common rule of thumb for English text).
CHARS_PER_TOKEN = 4
DAYS_PER_MONTH = 30
DEFAULT_P = 0.5
#: Judgments a route needs in ``--evals`` before its measured variance is trusted.
MIN_JUDGED_FOR_VARIANCE = 30
EVALUATORS_WITHOUT_JUDGE = ("reference",)

Allocation = Literal["equal", "neyman", "cost_capped"]


# --- inputs ----------------------------------------------------------------------------


def parse_detect(text: str | float) -> tuple[float, bool]:
    """``0.05`` (absolute drop on the 0–1 scale) or ``10%`` (relative) → ``(value, relative)``."""
    raw = str(text).strip()
    relative = raw.endswith("%")
    try:
        value = float(raw.rstrip("%").strip())
    except ValueError as exc:
        raise UsageError(f"--detect: expected a drop like 0.05 or 10% (got '{text}')") from exc
    if relative:
        value /= 100.0
    if not (0 < value < 1) or not math.isfinite(value):
        raise UsageError(
            f"--detect: the drop must be between 0 and 1 (or 0% and 100%) (got '{text}')"
        )
    return value, relative


def parse_within(text: str) -> float:
    """``48h``, ``2d``, ``90m`` → hours."""
    dur = parse_duration(str(text))
    if dur is None or dur.total_seconds() <= 0:
        raise UsageError(f"--within: expected a duration like 48h or 2d (got '{text}')")
    return dur.total_seconds() / 3600.0


@dataclass(frozen=True)
class CriterionCost:
    """One LLM criterion as the cost model sees it."""

    name: str
    template_tokens: int
    applies_to: str = "all"  # all | retrieved | reference


@dataclass
class PlanOptions:
    detect: float = 0.05
    relative: bool = False
    within_h: float = 48.0
    power: float = 0.8
    alpha: float = 0.05
    max_cost_per_day: float | None = None
    allocation: Literal["equal", "neyman"] = "equal"
    judge_model: str = "gpt-4o-mini"
    price_in: float | None = None  # USD per million judge input tokens
    price_out: float | None = None
    high_stakes: frozenset[str] = frozenset()
    criteria: tuple[CriterionCost, ...] = (CriterionCost("relevance", 350),)
    reference: bool = False  # the reference evaluator runs too (a test, no judge cost)
    current_min_drop: float | None = None  # eval.min_drop today, for the advice
    keep_rates: Mapping[str, float] = field(default_factory=dict)  # routes.R.keep_rate

    def __post_init__(self) -> None:
        if not 0 < self.power < 1:
            raise UsageError(f"--power: expected a probability in (0, 1) (got {self.power})")
        if not 0 < self.alpha < 1:
            raise UsageError(f"--alpha: expected a level in (0, 1) (got {self.alpha})")
        if self.within_h <= 0:
            raise UsageError("--within: the window must be longer than 0")
        if self.max_cost_per_day is not None and self.max_cost_per_day <= 0:
            raise UsageError("--max-cost-per-day: expected an amount above 0")


# --- traffic -----------------------------------------------------------------------------


@dataclass
class RouteTraffic:
    """What the dump says about one route (population figures are per day)."""

    route: str
    calls_per_day: float  # judgeable calls (ok, with a response), mean day
    plan_calls_per_day: float  # calls/day in the quietest window (the mean if no weekday effect)
    traces_per_day: float
    all_calls_per_day: float
    sampled: int
    stored_rate: float  # rows kept ÷ calls (the dump's storage rate of the route)
    design_effect: float = 1.0
    weekday_varies: bool = False
    by_weekday: dict[str, float] = field(default_factory=dict)
    doc_share: float = 0.0  # share of judgeable calls with retrieved documents
    ref_share: float = 0.0
    input_chars: float = 0.0  # mean characters of input (system + conversation)
    response_chars: float = 0.0
    doc_chars: float = 0.0  # mean characters of documents among calls that have some


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def traffic_of(
    frame: pl.DataFrame,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[list[RouteTraffic], dict[str, Any]]:
    """Per-route traffic of canonical rows; ``start``/``end`` bound the period (else the
    first and last timestamp). Raises :class:`InputError` when there is nothing to plan on.
    The same two steps as the streaming path: partials of the frame, then
    :func:`traffic_from`."""
    from llmobs_cli.core.eval.traffic import TrafficMerger, traffic_partials

    if frame.height == 0:
        raise InputError(["no calls to plan on (empty input or window)"])
    merger = TrafficMerger()
    merger.add(traffic_partials(frame))
    return traffic_from(merger.result(), start, end)


def _utc_us(us: int) -> datetime:
    from datetime import UTC, timedelta

    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))


def traffic_from(
    merged: pl.DataFrame,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[list[RouteTraffic], dict[str, Any]]:
    """Per-route traffic from merged :mod:`core.eval.traffic` partials (see
    :func:`traffic_of`)."""
    from llmobs_cli.core.eval.traffic import (
        DAY,
        DAYS,
        FIRST,
        GROUP,
        LAST,
        PART,
        ROUTE,
        ROUTES,
        TRACES,
        TW,
        N,
        route_groups,
    )

    per = merged.filter(pl.col(PART) == ROUTES)
    if per.height == 0 or int(per[N].sum() or 0) == 0:
        raise InputError(["no calls to plan on (empty input or window)"])
    t0 = start or _utc_us(per[FIRST].min())  # type: ignore[arg-type]
    t1 = end or _utc_us(per[LAST].max())  # type: ignore[arg-type]
    span_days = (t1 - t0).total_seconds() / 86400.0
    if span_days < 1 / 24:
        raise InputError(
            ["the traces span less than an hour: give at least a day of traffic to plan on"]
        )
    routes = per[ROUTE]
    keys = pl.DataFrame({ROUTE: routes, GROUP: route_groups(routes)})
    traces = (
        merged.filter(pl.col(PART) == TRACES)
        .group_by(GROUP)
        .agg(pl.col(TW).sum().alias("traces"))
        .join(keys, on=GROUP, how="inner")
        .select(ROUTE, "traces")
    )
    per = (
        per.join(traces, on=ROUTE, how="left")
        .select(
            pl.col(ROUTE).alias("route"),
            pl.col(N).alias("sampled"),
            *[pl.col(f"sum:{c}").alias(c) for c in _TRAFFIC_SUMS],
            "traces",
        )
        .sort("route")
    )
    days = merged.filter(pl.col(PART) == DAYS).select(
        pl.col(ROUTE).alias("route"),
        pl.col(DAY).cast(pl.Date).alias("_date"),
        pl.col(N).alias("n"),
        pl.col("sum:calls").alias("w"),
    )
    weekday = _weekday_volumes(days, t0, t1)
    out: list[RouteTraffic] = []
    for r in per.iter_rows(named=True):
        calls = float(r["calls"] or 0.0)
        if calls <= 0:
            continue  # nothing eval could judge on this route
        n = int(r["ok_rows"])
        w2 = float(r["w2"] or 0.0)
        deff = n * w2 / calls**2 if calls > 0 and n else 1.0
        per_day = calls / span_days
        wd = weekday.get(r["route"], {})
        varies = bool(wd.pop("_varies", False))
        out.append(
            RouteTraffic(
                route=r["route"],
                calls_per_day=per_day,
                plan_calls_per_day=per_day,
                traces_per_day=float(r["traces"] or 0.0) / span_days,
                all_calls_per_day=float(r["all_calls"]) / span_days,
                sampled=int(r["sampled"]),
                stored_rate=min(1.0, r["sampled"] / float(r["all_calls"])),
                design_effect=max(1.0, deff),
                weekday_varies=varies,
                by_weekday={k: v for k, v in wd.items() if not k.startswith("_")},
                doc_share=float(r["w_docs"] or 0.0) / calls,
                ref_share=float(r["w_ref"] or 0.0) / calls,
                input_chars=float(r["w_in"] or 0.0) / calls,
                response_chars=float(r["w_out"] or 0.0) / calls,
                doc_chars=(float(r["w_doc"] or 0.0) / float(r["w_docs"])) if r["w_docs"] else 0.0,
            )
        )
    if not out:
        raise InputError(["no call eval could judge (none with status ok and a response)"])
    facts = {
        "start": t0.isoformat() if t0 is not None else None,
        "end": t1.isoformat() if t1 is not None else None,
        "days": span_days,
    }
    return out, facts


_TRAFFIC_SUMS = (
    "all_calls",
    "calls",
    "ok_rows",
    "w2",
    "w_docs",
    "w_ref",
    "w_in",
    "w_out",
    "w_doc",
)


def _weekday_volumes(days: pl.DataFrame, t0: Any, t1: Any) -> dict[str, dict[str, Any]]:
    """Mean calls per weekday per route over the full days of the period, and whether the
    weekday pattern is real (χ² on sampled rows) and large (busiest/quietest > 1.25).
    ``days`` holds per route and UTC day the ok rows ``n`` and their Σw ``w``."""
    first, last = t0.date(), t1.date()
    full = [d for d in _date_range(first, last)][1:-1]  # full days only
    if len(full) < 14:
        return {}
    occurrences = np.zeros(7)
    for d in full:
        occurrences[d.weekday()] += 1
    inner = days.filter(pl.col("_date").is_in(full))
    agg = inner.group_by("route", pl.col("_date").dt.weekday().alias("_wd")).agg(
        pl.col("n").sum(), pl.col("w").sum()
    )
    from scipy import stats  # lazy: scipy.stats costs ~1 s of start-up

    out: dict[str, dict[str, Any]] = {}
    for (route,), part in agg.group_by("route"):
        n = np.zeros(7)
        w = np.zeros(7)
        for row in part.iter_rows(named=True):
            n[row["_wd"] - 1] = row["n"]
            w[row["_wd"] - 1] = row["w"]
        vol = w / occurrences
        res: dict[str, Any] = {WEEKDAYS[i]: float(vol[i]) for i in range(7)}
        if n.sum() >= 70 and vol.min() > 0:
            expected = occurrences / occurrences.sum() * n.sum()
            p = float(stats.chisquare(n, expected).pvalue)
            res["_varies"] = bool(p < 0.01 and vol.max() / vol.min() > 1.25)
        elif vol.min() == 0 and n.sum() >= 70:
            res["_varies"] = True
        out[str(route)] = res
    return out


def _date_range(a: Any, b: Any) -> list[Any]:
    from datetime import timedelta

    out = []
    d = a
    while d <= b:
        out.append(d)
        d += timedelta(days=1)
    return out


# --- scores and judge cost from a previous eval --------------------------------------


@dataclass
class RouteScores:
    mean: float
    sd: float
    judged: int
    evaluator: str
    tokens_in: float | None = None  # per judged call, all criteria
    tokens_out: float | None = None
    cost_usd: float | None = None  # per judged call, as recorded


def read_evals(path: str) -> pl.DataFrame:
    """A saved ``llmobs eval -o`` file, with a clear error when it is not one."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        raise InputError([f"{p}: file not found"])
    try:
        frame = pl.read_parquet(p)
    except Exception as exc:  # any reader failure means a bad input file
        raise InputError([f"{p}: not a Parquet evals file ({type(exc).__name__})"]) from exc
    for col in ("route", "evaluator", "score", "weight"):
        if col not in frame.columns:
            raise InputError([f"{p}: {col}: missing column (not an llmobs evals file)"])
    return frame


def scores_of(evals: pl.DataFrame) -> dict[str, RouteScores]:
    """Per route: the Hájek mean and weighted SD of the most variable evaluator, and the
    judge tokens/cost per judged call (summed over the criteria that judged it)."""
    ok = evals.filter(pl.col("score").is_not_null() & pl.col("weight").is_not_null())
    if "error" in ok.columns:
        ok = ok.filter(pl.col("error").is_null())
    if ok.height == 0:
        return {}
    w, y = pl.col("weight"), pl.col("score")
    stats = (
        ok.group_by("route", "evaluator")
        .agg(
            pl.len().alias("n"),
            ((w * y).sum() / w.sum()).alias("mean"),
            w.sum().alias("sw"),
            (w * y * y).sum().alias("swyy"),
        )
        .with_columns(
            (pl.col("swyy") / pl.col("sw") - pl.col("mean") ** 2).clip(0.0, None).alias("var")
        )
        .sort("route", "var", "evaluator", descending=[False, True, False])
    )
    out: dict[str, RouteScores] = {}
    for r in stats.iter_rows(named=True):
        route = r["route"] or "default"
        if route in out or r["n"] < MIN_JUDGED_FOR_VARIANCE:
            continue
        out[route] = RouteScores(
            mean=float(r["mean"]), sd=math.sqrt(float(r["var"])), judged=int(r["n"]),
            evaluator=str(r["evaluator"]),
        )  # fmt: skip
    tok_cols = {"judge_input_tokens", "judge_output_tokens"}
    key = [c for c in ("route", "trace_id", "span_id") if c in evals.columns]
    if "trace_id" in key:
        judged = evals.filter(pl.col("evaluator") != "reference")
        aggs = []
        if tok_cols <= set(evals.columns):
            aggs += [
                pl.col("judge_input_tokens").sum().alias("ti"),
                pl.col("judge_output_tokens").sum().alias("to"),
            ]
        if "judge_cost_usd" in evals.columns:
            aggs.append(pl.col("judge_cost_usd").sum().alias("c"))
        if aggs:
            calls = judged.group_by(key).agg(aggs)
            if "ti" in calls.columns:
                calls = calls.filter(pl.col("ti") > 0)
            per = calls.group_by("route").agg(
                *(pl.col(c).mean() for c in ("ti", "to", "c") if c in calls.columns)
            )
            for r in per.iter_rows(named=True):
                s = out.get(r["route"] or "default")
                if s is None:
                    continue
                s.tokens_in = r.get("ti")
                s.tokens_out = r.get("to")
                s.cost_usd = r.get("c")
    return out


# --- the plan ----------------------------------------------------------------------------


@dataclass
class RoutePlan:
    """One route under one allocation. ``eval_rate`` is a share of the route's population
    (what ``llmobs eval`` ends up judging of the calls), not of the stored rows."""

    route: str
    high_stakes: bool
    eval_rate: float
    storage_rate: float  # the storage rate the judged traffic needs (= eval_rate)
    stored_rate: float  # the dump's storage rate
    storage_ok: bool
    calls_per_day: float
    plan_calls_per_day: float
    judgments_per_day: float
    judgments_per_window: float
    eval_budget: int  # traces per eval window: routes.R.eval_budget
    target_drop: float
    baseline_score: float
    score_sd: float
    variance_source: str
    design_effect: float
    mde: float
    time_to_detect_h: float | None
    judge_input_tokens: float
    judge_output_tokens: float
    cost_per_judgment_usd: float | None
    cost_per_day_usd: float | None
    cost_per_month_usd: float | None
    feasible: bool
    status: str  # ok | too_small | over_budget | high_stakes
    note: str = ""
    weekday_varies: bool = False
    by_weekday: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return clean(asdict(self))


@dataclass
class AllocationPlan:
    name: str
    routes: list[RoutePlan]
    overall_mde: float
    note: str = ""

    def totals(self) -> dict[str, Any]:
        costs = [r.cost_per_day_usd for r in self.routes]
        cost = None if any(c is None for c in costs) else float(sum(costs))  # type: ignore[arg-type]
        return clean(
            {
                "routes": len(self.routes),
                "feasible_routes": sum(r.feasible for r in self.routes),
                "judgments_per_day": float(sum(r.judgments_per_day for r in self.routes)),
                "calls_per_day": float(sum(r.calls_per_day for r in self.routes)),
                "cost_per_day_usd": cost,
                "cost_per_month_usd": None if cost is None else cost * DAYS_PER_MONTH,
                "overall_mde": self.overall_mde,
                "max_mde": max((r.mde for r in self.routes), default=math.nan),
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "note": self.note,
            "totals": self.totals(),
            "routes": [
                {
                    k: v
                    for k, v in r.as_dict().items()
                    if k
                    in (
                        "route",
                        "eval_rate",
                        "judgments_per_day",
                        "mde",
                        "time_to_detect_h",
                        "cost_per_day_usd",
                        "feasible",
                        "status",
                    )
                }
                for r in self.routes
            ],
        }


@dataclass
class RatePlan:
    target: dict[str, Any]
    traffic: dict[str, Any]
    chosen: AllocationPlan
    allocations: dict[str, AllocationPlan | None]
    recommended_min_drop: float | None
    notes: list[str] = field(default_factory=list)

    @property
    def routes(self) -> list[RoutePlan]:
        return self.chosen.routes

    def as_dict(self) -> dict[str, Any]:
        totals = self.chosen.totals() | {
            "allocation": self.chosen.name,
            "recommended_min_drop": self.recommended_min_drop,
        }
        return clean(
            {
                "target": self.target,
                "traffic": self.traffic,
                "allocation": self.chosen.name,
                "routes": [r.as_dict() for r in self.routes],
                "totals": totals,
                "allocations": {
                    k: (None if v is None else v.as_dict()) for k, v in self.allocations.items()
                },
                "notes": self.notes,
            }
        )


@dataclass
class _Route:
    """Everything the maths needs about one route."""

    t: RouteTraffic
    hs: bool
    p: float
    var_b: float
    var_c: float
    drop: float
    source: str
    tokens_in: float
    tokens_out: float
    cost: float | None  # per judged call
    tests: int

    @property
    def var_sum(self) -> float:
        return self.t.design_effect * (self.var_b + self.var_c)


def z_sum(alpha_per_test: float, power: float) -> float:
    """``z₁₋α + z_power`` of a one-sided test at level ``alpha_per_test``."""
    nd = NormalDist()
    return nd.inv_cdf(1 - alpha_per_test) + nd.inv_cdf(power)


def needed_per_window(var_sum: float, drop: float, alpha_per_test: float, power: float) -> float:
    """Judgments per window (each of current and baseline) for ``MDE = drop``."""
    return var_sum * z_sum(alpha_per_test, power) ** 2 / drop**2


def mde_at(n: float, var_sum: float, alpha_per_test: float, power: float) -> float:
    """MDE with ``n`` judgments per window: eval's formula at two-sided level ``2α``."""
    if n <= 0:
        return math.inf
    return reg.mde(math.sqrt(var_sum / n), 2 * alpha_per_test, power)


def plan_volume(t: RouteTraffic, within_h: float) -> float:
    """Calls per day to size the plan on: the mean, or, when the route's traffic varies by
    weekday and the window is shorter than a week, the quietest run of that many days."""
    if not t.weekday_varies or not t.by_weekday or within_h >= 7 * 24:
        return t.calls_per_day
    vol = [t.by_weekday[d] for d in WEEKDAYS]
    k = max(1, round(within_h / 24))
    low = min(sum(vol[(s + i) % 7] for i in range(k)) / k for s in range(7))
    return min(t.calls_per_day, low)


def current_variance(var_b: float, p: float, drop: float) -> float:
    """The largest variance scores in [0, 1] can have after their mean drops by ``drop``
    from ``p``: ``var_b + drop·(2p−1) − drop²``, reached when the drop moves answers from
    the top score to the bottom one (exact for 0/1 scores); never below ``var_b`` and never
    above ``q(1−q)``, the most any score with mean ``q = p − drop`` can have."""
    q = min(max(p - drop, 0.0), 1.0)
    return min(q * (1 - q), max(var_b, var_b + drop * (2 * p - 1) - drop * drop))


def _routes(
    traffic: Sequence[RouteTraffic],
    scores: Mapping[str, RouteScores],
    opts: PlanOptions,
) -> list[_Route]:
    out = []
    for t in traffic:
        t = replace(t, plan_calls_per_day=plan_volume(t, opts.within_h))
        s = scores.get(t.route)
        if s is not None:
            p, var_b, source = s.mean, s.sd**2, f"evals ({s.evaluator}, n={s.judged})"
        else:
            p, var_b, source = DEFAULT_P, DEFAULT_P * (1 - DEFAULT_P), "default p=0.5"
        drop = opts.detect * p if opts.relative else opts.detect
        # Without evals p is unknown: 0.25 bounds both windows whatever the true mean.
        var_c = current_variance(var_b, p, drop) if s is not None else var_b
        tin, tout = _tokens_estimate(t, opts.criteria)
        cost = _price(tin, tout, opts)
        if s is not None and s.tokens_in:
            tin, tout = float(s.tokens_in), float(s.tokens_out or 0.0)
            cost = _price(tin, tout, opts)
            if cost is None and s.cost_usd:
                cost = float(s.cost_usd)
        tests = sum(
            1
            for c in opts.criteria
            if c.applies_to == "all"
            or (c.applies_to == "retrieved" and t.doc_share > 0)
            or (c.applies_to == "reference" and t.ref_share > 0)
        ) + (1 if opts.reference and t.ref_share > 0 else 0)
        out.append(
            _Route(
                t=t,
                hs=t.route in opts.high_stakes,
                p=p,
                var_b=var_b,
                var_c=var_c,
                drop=drop,
                source=source,
                tokens_in=tin,
                tokens_out=tout,
                cost=cost,
                tests=max(tests, 1),
            )
        )
    return out


def _tokens_estimate(t: RouteTraffic, criteria: Sequence[CriterionCost]) -> tuple[float, float]:
    """Judge tokens per judged call, summed over the criteria that apply to it."""
    tin = tout = 0.0
    base = (t.input_chars + t.response_chars) / CHARS_PER_TOKEN
    for c in criteria:
        if c.applies_to == "retrieved":
            share = t.doc_share
            extra = t.doc_chars / CHARS_PER_TOKEN
        elif c.applies_to == "reference":
            share, extra = t.ref_share, 0.0
        else:
            share, extra = 1.0, 0.0
        tin += share * (c.template_tokens + base + extra)
        tout += share * ANSWER_TOKENS
    return tin, tout


def _price(tin: float, tout: float, opts: PlanOptions) -> float | None:
    if opts.price_in is None or opts.price_out is None:
        return None
    return (tin * opts.price_in + tout * opts.price_out) / 1e6


def _route_plan(
    r: _Route, rate: float, opts: PlanOptions, alpha_t: float, status: str | None = None
) -> RoutePlan:
    w_days = opts.within_h / 24.0
    rate = min(1.0, max(rate, 1e-12))
    n_win = _judged_per_window(r, rate, w_days)
    mde = mde_at(n_win, r.var_sum, alpha_t, opts.power)
    need = needed_per_window(r.var_sum, r.drop, alpha_t, opts.power)
    ttd = 24.0 * need / (n_win / w_days) if n_win > 0 else None
    feasible = bool(mde <= r.drop * (1 + 1e-9))
    per_day = rate * r.t.calls_per_day
    cost_day = None if r.cost is None else per_day * r.cost
    calls_per_trace = r.t.calls_per_day / r.t.traces_per_day if r.t.traces_per_day else 1.0
    budget = math.ceil(per_day * w_days / max(calls_per_trace, 1e-9) - 1e-9)
    if status is None:
        status = "high_stakes" if r.hs else ("ok" if feasible else "too_small")
    note = ""
    if not feasible:
        days = (ttd or math.inf) / 24.0
        if status == "over_budget":
            note = f"the cost cap allows MDE {mde:.3f} > {r.drop:.3f}"
        elif rate >= 1.0:
            note = (
                f"too small: even judging every call, a {r.drop:.3f} drop needs a "
                f"{_duration(ttd)} window ({days:.1f} days)"
            )
        else:
            note = f"MDE {mde:.3f} > {r.drop:.3f}; needs {_duration(ttd)}"
    # Eval judges a fixed budget per window: on the quietest days it takes a larger share.
    store = min(1.0, rate * r.t.calls_per_day / r.t.plan_calls_per_day)
    storage_ok = r.t.stored_rate >= store * (1 - 1e-9)
    if not storage_ok:
        extra = (
            f"stored at {_pct(r.t.stored_rate)}, so it cannot be judged at {_pct(store)} of its "
            f"calls: store at least {_pct(store)} (routes.{r.t.route}.keep_rate)"
        )
        note = f"{note}; {extra}" if note else extra
    return RoutePlan(
        route=r.t.route,
        high_stakes=r.hs,
        eval_rate=rate,
        storage_rate=store,
        stored_rate=r.t.stored_rate,
        storage_ok=storage_ok,
        calls_per_day=r.t.calls_per_day,
        plan_calls_per_day=r.t.plan_calls_per_day,
        judgments_per_day=per_day,
        judgments_per_window=n_win,
        eval_budget=max(budget, 1),
        target_drop=r.drop,
        baseline_score=r.p,
        score_sd=math.sqrt(r.var_b),
        variance_source=r.source,
        design_effect=r.t.design_effect,
        mde=mde,
        time_to_detect_h=ttd,
        judge_input_tokens=r.tokens_in,
        judge_output_tokens=r.tokens_out,
        cost_per_judgment_usd=r.cost,
        cost_per_day_usd=cost_day,
        cost_per_month_usd=None if cost_day is None else cost_day * DAYS_PER_MONTH,
        feasible=feasible,
        status=status,
        note=note,
        weekday_varies=r.t.weekday_varies,
        by_weekday=r.t.by_weekday,
    )


def _duration(hours: float | None) -> str:
    if hours is None or not math.isfinite(hours):
        return "forever"
    if hours <= 48:
        return f"{hours:.0f}h" if hours >= 1 else f"{hours * 60:.0f}m"
    return f"{hours / 24:.1f}d"


def _pct(x: float) -> str:
    return f"{x * 100:.3g} %"


def _judged_per_window(r: _Route, rate: float, w_days: float) -> float:
    """Judgments in a window at ``rate`` of the mean traffic, at most what the quietest
    window of that length has (eval judges a fixed budget per window)."""
    return min(rate * r.t.calls_per_day, r.t.plan_calls_per_day) * w_days


def _overall_mde(routes: Sequence[_Route], rates: Sequence[float], opts: PlanOptions) -> float:
    """MDE of the mix-standardised overall score (one test at level α)."""
    w_days = opts.within_h / 24.0
    total = sum(r.t.calls_per_day for r in routes)
    var = 0.0
    for r, rate in zip(routes, rates, strict=True):
        share = r.t.calls_per_day / total
        var += share**2 * r.var_sum / _judged_per_window(r, rate, w_days)
    return reg.mde(math.sqrt(var), 2 * opts.alpha, opts.power)


def _equal(routes: Sequence[_Route], opts: PlanOptions, alpha_t: float) -> list[float]:
    w_days = opts.within_h / 24.0
    need = [needed_per_window(r.var_sum, r.drop, alpha_t, opts.power) / w_days for r in routes]
    normal = [i for i, r in enumerate(routes) if not r.hs]
    affordable = [i for i in normal if routes[i].t.plan_calls_per_day >= need[i]]
    pool = affordable or normal
    per_day = max((need[i] for i in pool), default=0.0)
    # A route that cannot afford its own need is judged in full (the most it can do).
    return [
        1.0 if r.hs or i not in affordable else min(1.0, per_day / r.t.calls_per_day)
        for i, r in enumerate(routes)
    ]


def _neyman(routes: Sequence[_Route], opts: PlanOptions) -> tuple[list[float], bool]:
    """Rates minimising total judgments for ``MDE(overall) = D``; ``(rates, feasible)``."""
    w_days = opts.within_h / 24.0
    total = sum(r.t.calls_per_day for r in routes)
    share = [r.t.calls_per_day / total for r in routes]
    drop = float(np.average([r.drop for r in routes], weights=share))
    zz = z_sum(opts.alpha, opts.power) ** 2
    cap = [r.t.plan_calls_per_day * w_days for r in routes]
    n = [0.0] * len(routes)
    fixed = {i for i, r in enumerate(routes) if r.hs}
    for i in fixed:
        n[i] = cap[i]
    while True:
        budget = drop**2 / zz - sum(share[i] ** 2 * routes[i].var_sum / n[i] for i in fixed)
        free = [i for i in range(len(routes)) if i not in fixed]
        if not free:
            break
        if budget <= 0:
            for i in free:
                n[i] = cap[i]
            return [1.0] * len(routes), False
        a = [share[i] * math.sqrt(routes[i].var_sum) for i in free]
        k = sum(a) / budget  # n_i = k·a_i gives Σ s²V/n = budget
        over = [i for i, ai in zip(free, a, strict=True) if k * ai >= cap[i]]
        if not over:
            for i, ai in zip(free, a, strict=True):
                n[i] = k * ai
            break
        for i in over:
            n[i] = cap[i]
            fixed.add(i)
    # n is per window; as a share of the mean traffic (cap ≤ mean, so the rate ≤ 1).
    return [min(1.0, n[i] / (routes[i].t.calls_per_day * w_days)) for i in range(len(routes))], True


def _capped(
    routes: Sequence[_Route], opts: PlanOptions, alpha_t: float, cap_usd: float
) -> tuple[list[float], bool]:
    """Equal judgments per day, as many as ``cap_usd`` allows after high-stakes routes."""
    base = _equal(routes, opts, alpha_t)
    costs = [r.cost or 0.0 for r in routes]

    def spend(per_day: float) -> float:
        tot = 0.0
        for r, c in zip(routes, costs, strict=True):
            rate = 1.0 if r.hs else min(1.0, per_day / r.t.calls_per_day)
            tot += rate * r.t.calls_per_day * c
        return tot

    top = max(rate * r.t.calls_per_day for rate, r in zip(base, routes, strict=True))
    if spend(top) <= cap_usd:
        return base, False
    lo, hi = 0.0, top
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spend(mid) <= cap_usd else (lo, mid)
    floor = 24.0 / opts.within_h  # at least one judgment per window
    per_day = max(lo, floor)
    rates = [1.0 if r.hs else min(1.0, per_day / r.t.calls_per_day) for r in routes]
    return rates, True


def plan_rates(
    traffic: Sequence[RouteTraffic],
    opts: PlanOptions,
    scores: Mapping[str, RouteScores] | None = None,
    facts: Mapping[str, Any] | None = None,
) -> RatePlan:
    """The rate plan for ``traffic`` (see the module docstring)."""
    routes = _routes(traffic, scores or {}, opts)
    m = sum(r.tests for r in routes)
    alpha_t = opts.alpha / m
    notes: list[str] = []

    def build(name: str, rates: list[float], status: str | None = None, note: str = "") -> Any:
        plans = [
            _route_plan(r, rate, opts, alpha_t, (status if (status and not r.hs) else None))
            for r, rate in zip(routes, rates, strict=True)
        ]
        if status == "over_budget":
            for p in plans:
                if p.status == "over_budget" and p.feasible:
                    p.status = "ok"
        return AllocationPlan(name, plans, _overall_mde(routes, rates, opts), note)

    equal = build("equal", _equal(routes, opts, alpha_t), note="same judgments/day per route")
    n_rates, n_ok = _neyman(routes, opts)
    neyman = build(
        "neyman",
        n_rates,
        note="sized for the overall score" + ("" if n_ok else " (not reachable even at 100 %)"),
    )
    capped: AllocationPlan | None = None
    if opts.max_cost_per_day is not None:
        if any(r.cost is None for r in routes):
            raise UsageError(
                f"--max-cost-per-day: no price for judge model '{opts.judge_model}' (set "
                "judge.input_price_per_million and judge.output_price_per_million in llmobs.yaml)"
            )
        else:
            c_rates, binds = _capped(routes, opts, alpha_t, opts.max_cost_per_day)
            capped = build(
                "cost_capped",
                c_rates,
                status="over_budget" if binds else None,
                note=f"equal per route within ${opts.max_cost_per_day:g}/day"
                + ("" if binds else " (the cap does not bind)"),
            )
    chosen = neyman if opts.allocation == "neyman" else equal
    over = (equal.totals().get("cost_per_day_usd") or 0.0) > (opts.max_cost_per_day or math.inf)
    if capped is not None and opts.allocation == "equal" and over:
        chosen = capped
        notes.append(
            f"the equal allocation costs more than ${opts.max_cost_per_day:g}/day: the "
            "cost-capped allocation is the plan"
        )
    hs_cost = sum((p.cost_per_day_usd or 0.0) for p in chosen.routes if p.high_stakes)
    if opts.max_cost_per_day is not None and hs_cost > opts.max_cost_per_day:
        notes.append(f"high-stakes routes alone cost ${hs_cost:.2f}/day, more than the cap")
    if all(r.source.startswith("default") for r in routes):
        notes.append(
            "score variance: no --evals, so every route assumes p = 0.5 (variance 0.25, the "
            "largest a 0–1 score can have); a previous eval run gives tighter rates"
        )
    if any(r.cost is None for r in routes):
        notes.append(
            f"no price for judge model '{opts.judge_model}': costs are unknown (set "
            "judge.input_price_per_million and judge.output_price_per_million)"
        )
    for p in chosen.routes:
        if p.plan_calls_per_day < p.calls_per_day * (1 - 1e-9):
            notes.append(
                f"{p.route}: traffic varies by weekday; the quietest {_duration(opts.within_h)} "
                f"have {p.plan_calls_per_day:,.0f} calls/day ({p.calls_per_day:,.0f} on average): "
                "the MDE and storage rate hold there too"
            )
    # The largest min_drop that never overrules a significant result of a planned route.
    z_a = NormalDist().inv_cdf(1 - alpha_t)
    thresholds = [
        z_a * math.sqrt(r.var_sum / p.judgments_per_window)
        for r, p in zip(routes, chosen.routes, strict=True)
        if p.feasible and p.judgments_per_window > 0
    ]
    rec = math.floor(min(thresholds) * 1000) / 1000 if thresholds else None
    if rec is not None and opts.current_min_drop is not None and opts.current_min_drop > rec:
        notes.append(
            f"eval.min_drop is {opts.current_min_drop:g}: a drop of exactly the target would "
            f"be flagged only about half the time; set it to {rec:g} or lower "
            "(--write-config does)"
        )
    target = {
        "detect": opts.detect,
        "relative": opts.relative,
        "within_h": opts.within_h,
        "power": opts.power,
        "alpha": opts.alpha,
        "tests": m,
        "alpha_per_test": alpha_t,
        "max_cost_per_day_usd": opts.max_cost_per_day,
        "judge_model": opts.judge_model,
        "price_per_million_usd": {"input": opts.price_in, "output": opts.price_out},
        "criteria": [c.name for c in opts.criteria],
    }
    return RatePlan(
        target=target,
        traffic=dict(facts or {}),
        chosen=chosen,
        allocations={"equal": equal, "neyman": neyman, "cost_capped": capped},
        recommended_min_drop=rec,
        notes=notes,
    )


def template_tokens(system: str, user: str) -> int:
    """Tokens of a criterion's own text (placeholders removed)."""
    text = re.sub(r"\{\w+\}", "", system + user)
    return len(text) // CHARS_PER_TOKEN + 1


PLAN_COLUMNS = (
    "trace_id",
    "timestamp",
    "route",
    "status",
    "response",
    "prompt",
    "system",
    "messages",
    "retrieved",
    "reference",
    "sample_rate",
)


def plan_from_paths(
    paths: Sequence[Any],
    opts: PlanOptions,
    *,
    evals: str | None = None,
    since: str | None = None,
    until: str | None = None,
    now: str | None = None,
    on_error: Literal["fail", "skip"] = "fail",
    fmt: str | None = None,
    read_options: Any = None,
    memory: int | None = None,
    engine: Any = None,
) -> tuple[RatePlan, Any]:
    """Read traces (and a previous eval's judgments) and plan; returns the plan and the
    read's result (``skipped``/``skipped_reasons``/``sources``, for skipped-row reporting).

    The traces are streamed batch by batch into mergeable partials
    (:mod:`core.eval.traffic`): memory is bounded by ``memory`` (bytes; default a quarter
    of RAM), not by the rows. ``engine`` (Spark or Ray settings) computes the partials
    there instead."""
    from llmobs_cli.core.eval.passes import latest_timestamp
    from llmobs_cli.core.eval.traffic import TrafficMerger, traffic_partials
    from llmobs_cli.core.ingest.readers.stream import default_memory
    from llmobs_cli.core.ingest.span import data_span
    from llmobs_cli.core.record.windows import (
        Window,
        require_rows,
        resolve_bound,
        resolve_now,
        window_option,
    )

    budget = default_memory() if memory is None else memory
    names = ", ".join(str(p) for p in paths)
    start = end = None
    if since or until:
        latest = None
        if not now:
            latest = latest_timestamp(
                paths, since=None, until=None, fmt=fmt, options=read_options, memory=budget
            )
            if latest is None:
                _nothing_read(paths, on_error, fmt, read_options, budget)
                raise InputError([f"{names}: no calls to plan on (the input is empty)"])
        ref = resolve_now(now, latest)
        start = resolve_bound(since, ref, "since")
        end = resolve_bound(until, ref, "until")
    read: Any
    if engine is not None and getattr(engine, "name", "local") != "local":
        from llmobs_cli.core.engines.run import merged_partials
        from llmobs_cli.core.ingest.readers import _with_dependencies

        wanted = sorted(_with_dependencies(PLAN_COLUMNS) | {"trace_id", "span_id"})
        read = merged_partials(
            engine,
            paths,
            wanted,
            traffic_partials,
            since=start,
            until=end,
            required=("trace_id", "timestamp"),
            on_error=on_error,
            keep_duplicates=bool(getattr(read_options, "keep_duplicates", False)),
        )
        merged = read.merged if read.merged is not None else TrafficMerger().result()
    else:
        from llmobs_cli.core.ingest.readers.stream import Stream

        read = Stream(
            paths,
            columns=PLAN_COLUMNS,
            on_error=on_error,
            fmt=fmt,
            since=start,
            until=end,
            options=read_options,
            memory=budget,
        )
        merger = TrafficMerger()
        for batch in read:
            merger.add(traffic_partials(batch))
        merged = merger.result()
    rows = int(merged.filter(pl.col("k:part") == "rt")["sum:n"].sum() or 0)
    if rows == 0:
        span = data_span(paths, fmt=fmt, options=read_options)
        if not span.rows or not (since or until):
            raise InputError([f"{names}: no calls to plan on (the input is empty)"])
        require_rows(
            0,
            window_option(since=since, until=until),
            Window(start, end),
            lambda: span,
            list(getattr(read, "sources", [])),
        )
    traffic, facts = traffic_from(merged, start, end)
    scores = scores_of(read_evals(evals)) if evals else {}
    if evals and not scores:
        facts = dict(facts) | {"evals_note": "no route had enough judgments"}
    facts = dict(facts) | {
        "weekday_varies": [t.route for t in traffic if t.weekday_varies],
        "evals": evals,
    }
    return plan_rates(traffic, opts, scores, facts), read


def _nothing_read(
    paths: Sequence[Any],
    on_error: Literal["fail", "skip"],
    fmt: str | None,
    options: Any,
    memory: int,
) -> None:
    """Read ``paths`` under the run's policy for its error alone (bad rows, empty files):
    the input held no readable timestamp."""
    from llmobs_cli.core.ingest.readers.stream import Stream

    for _ in Stream(
        paths, columns=PLAN_COLUMNS, on_error=on_error, fmt=fmt, options=options, memory=memory
    ):
        pass


__all__ = [
    "ANSWER_TOKENS",
    "AllocationPlan",
    "CriterionCost",
    "PlanOptions",
    "RatePlan",
    "RoutePlan",
    "RouteScores",
    "RouteTraffic",
    "mde_at",
    "needed_per_window",
    "parse_detect",
    "parse_within",
    "plan_from_paths",
    "plan_rates",
    "read_evals",
    "scores_of",
    "template_tokens",
    "traffic_of",
    "z_sum",
]
