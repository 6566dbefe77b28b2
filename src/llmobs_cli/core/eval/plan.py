"""Judge sampling: a stratified plan and deterministic, nested selection by ``trace_id``.

**Strata** are the ``--by`` groups crossed with ``route`` (route is always part of the
stratum, so a high-stakes route keeps 100 % coverage and every route keeps its own budget
whatever ``--by`` says). Only calls that can be judged are eligible: ``status`` ok and a
non-empty ``response``.

**Allocation** (in traces per stratum):

* ``equal`` (default; ``docs/eval.md``): every stratum gets the same budget ``B`` (``--budget``,
  ``eval.budget``, or ``routes.R.eval_budget``), so ``eval_rate = min(1, B / T_h)`` with
  ``T_h`` the stratum's eligible traces: 0.1 % of a huge route, 100 % of a tiny one. This
  equalises the power to detect a regression per route.
* ``neyman``: the same total ``B × H`` split as ``n_h ∝ N_h · S_h`` (``N_h`` the estimated
  calls, ``S_h`` the score standard deviation — from a previous run when given, else 0.5,
  the Bernoulli maximum, which makes it proportional allocation), capped at ``T_h`` with
  the excess re-split. Best for the precision of the overall mean.
* routes with ``stakes: high`` in ``llmobs.yaml`` are judged at 100 %.

**Selection** is Poisson sampling on a stable hash: each ``trace_id`` maps to
``u ∈ [0, 1)`` and a trace is judged when ``u < eval_rate``. Reruns pick the same traces,
a lower rate picks a subset of a higher one, and the inclusion probability is exactly
``eval_rate`` — so ``weight = 1 / (sample_rate × eval_rate)`` is the Horvitz–Thompson
weight. All calls of a selected trace in the stratum are judged.

**The hash** is FNV-1a 64 over ``salt + trace_id`` (UTF-8), finished with the splitmix64
mixer, and ``u = (h >> 11) · 2⁻⁵³``. It is computed vectorised in numpy over the Arrow
buffers of the *unique* ids (a loop over byte positions, not rows). Polars' own
``Expr.hash`` is documented as unstable across versions, so selections made with it would
change on upgrade; this one is pure integer arithmetic and is pinned by a test against a
scalar reference. The salt (``"llmobs-eval"``) decorrelates eval selection from storage
sampling (``llmobs sample``), which also hashes ``trace_id``: with the same hash, the rows a
storage sampler kept would be exactly the ones with small ``u``, and eval selection among
them would not be a random subsample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa

EVAL_SALT = "llmobs-eval"
STRATUM = "_stratum"
U = "_u"

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1


def _fnv_scalar(data: bytes, h: int = _FNV_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def _splitmix(z: np.ndarray) -> np.ndarray:
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stable_hash64(values: pl.Series, salt: str = EVAL_SALT) -> np.ndarray:
    """FNV-1a 64 of ``salt + value`` then splitmix64, for every value (nulls hash as "")."""
    arr = values.cast(pl.String).fill_null("").to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    n = len(arr)
    h = np.full(n, _fnv_scalar(salt.encode()), dtype=np.uint64)
    if n:
        _, offs_buf, data_buf = arr.buffers()
        offsets = np.frombuffer(offs_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
        data = (
            np.frombuffer(data_buf, dtype=np.uint8)
            if data_buf is not None
            else np.zeros(1, np.uint8)
        )
        if data.size == 0:
            data = np.zeros(1, np.uint8)
        starts = offsets[:-1]
        lens = offsets[1:] - starts
        prime = np.uint64(_FNV_PRIME)
        with np.errstate(over="ignore"):
            for j in range(int(lens.max()) if n else 0):
                active = lens > j
                b = data[np.minimum(starts + j, data.size - 1)].astype(np.uint64)
                h = np.where(active, (h ^ b) * prime, h)
    with np.errstate(over="ignore"):
        return _splitmix(h)


def stable_uniform(values: pl.Series, salt: str = EVAL_SALT) -> np.ndarray:
    """``u ∈ [0, 1)`` per value, stable across versions and platforms."""
    return (stable_hash64(values, salt) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def scalar_uniform(value: str, salt: str = EVAL_SALT) -> float:
    """The same ``u`` for one value, in pure Python (reference for tests and docs)."""
    h = _fnv_scalar((salt + value).encode())
    z = (h + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return (z >> 11) * 2.0**-53


def with_uniform(frame: pl.DataFrame, salt: str = EVAL_SALT) -> pl.DataFrame:
    """Add ``_u`` (hash of ``trace_id``), hashing each distinct id once."""
    ids = frame.select(pl.col("trace_id").unique())["trace_id"]
    lookup = pl.DataFrame({"trace_id": ids, U: stable_uniform(ids, salt)})
    return frame.join(lookup, on="trace_id", how="left", maintain_order="left")


# --- the plan ------------------------------------------------------------------------


@dataclass
class StratumPlan:
    key: dict[str, Any]
    stratum: str
    route: str
    calls: float  # estimated calls in the window (Σ 1/sample_rate over every row)
    sampled: int  # rows in the dump in the window
    rows: int  # eligible rows (ok, with a response)
    traces: int  # eligible distinct traces
    budget: int
    eval_rate: float
    high_stakes: bool
    selected_traces: int = 0
    selected_rows: int = 0
    judgments: int = 0
    est_input_tokens: int = 0
    est_output_tokens: int = 0
    est_cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    by: list[str]
    allocation: str
    strata: list[StratumPlan]
    selection: pl.DataFrame  # selected rows + _stratum, eval_rate, weight
    window: str = "current"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "by": self.by,
            "allocation": self.allocation,
            "strata": [s.as_dict() for s in self.strata],
        }


def strata_fields(by: Sequence[str]) -> list[str]:
    return [*by, "route"] if "route" not in by else list(by)


def _stratum_label(key: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={'' if v is None else v}" for k, v in key.items())


def _neyman(calls: list[float], sds: list[float], caps: list[int], total: float) -> list[float]:
    """n_h ∝ N_h S_h, capped at the stratum size, excess re-split among the others."""
    n = [0.0] * len(calls)
    free = [i for i in range(len(calls)) if caps[i] > 0]
    remaining = total
    while free and remaining > 1e-9:
        weights = [calls[i] * sds[i] for i in free]
        tot = sum(weights)
        if tot <= 0:
            weights = [1.0 for _ in free]
            tot = float(len(free))
        capped = [i for i, w in zip(free, weights, strict=True) if remaining * w / tot >= caps[i]]
        if not capped:
            for i, w in zip(free, weights, strict=True):
                n[i] = remaining * w / tot
            break
        for i in capped:
            n[i] = float(caps[i])
            remaining -= caps[i]
        free = [i for i in free if i not in capped]
    return n


def keyed(frame: pl.DataFrame, by: Sequence[str]) -> tuple[pl.DataFrame, list[str]]:
    """``frame`` with the stratum key columns ``_k_i`` (one per stratum field, as strings,
    null kept), ``route`` filled with ``default``, the stratum label and ``_eligible``
    (status ok and a non-empty response). A per-row step: batches give the rows of the
    whole frame."""
    from llmobs_cli.core.record.fields import field_expr

    fields = strata_fields(by)
    out = frame.with_columns(
        *[field_expr(f).cast(pl.String).alias(f"_k_{i}") for i, f in enumerate(fields)],
        pl.col("route").fill_null("default"),
    )
    kcols = [f"_k_{i}" for i in range(len(fields))]
    out = out.with_columns(
        pl.concat_str(
            [pl.lit(f"{f}=") + pl.col(c).fill_null("") for f, c in zip(fields, kcols, strict=True)],
            separator=",",
        ).alias(STRATUM),
        (
            (pl.col("status").fill_null("ok") == "ok")
            & (pl.col("response").fill_null("").str.len_chars() > 0)
        ).alias("_eligible"),
    )
    return out, kcols


def stratum_totals(rows: pl.DataFrame, kcols: Sequence[str]) -> pl.DataFrame:
    """Per stratum of :func:`keyed` rows: ``sampled`` rows, ``calls`` (Σ 1/sample_rate),
    eligible ``rows``, distinct eligible ``traces`` and ``elig_calls`` (Σ 1/sample_rate of
    eligible rows), sorted by stratum — what :func:`plan_strata` plans from. The streaming
    path (:mod:`core.eval.counts`) builds the same frame from merged partials."""
    return (
        rows.group_by(STRATUM, *kcols)
        .agg(
            pl.len().alias("sampled"),
            (1.0 / pl.col("sample_rate")).sum().alias("calls"),
            pl.col("_eligible").sum().alias("rows"),
            pl.col("trace_id").filter(pl.col("_eligible")).n_unique().alias("traces"),
            (1.0 / pl.col("sample_rate")).filter(pl.col("_eligible")).sum().alias("elig_calls"),
        )
        .sort(STRATUM)
    )


def plan_strata(
    totals: pl.DataFrame,
    *,
    by: Sequence[str] = ("route",),
    budget: int = 200,
    route_budgets: Mapping[str, int] | None = None,
    high_stakes: set[str] | frozenset[str] = frozenset(),
    allocation: Literal["equal", "neyman"] = "equal",
    sds: Mapping[str, float] | None = None,
) -> list[StratumPlan]:
    """The strata and their eval rates from :func:`stratum_totals` (one row per stratum)."""
    fields = strata_fields(by)
    kcols = [f"_k_{i}" for i in range(len(fields))]
    route_budgets = route_budgets or {}
    strata: list[StratumPlan] = []
    ridx = fields.index("route")
    for row in totals.iter_rows(named=True):  # one row per stratum, not per call
        key = {f: row[c] for f, c in zip(fields, kcols, strict=True)}
        route = row[kcols[ridx]] or "default"
        hs = route in high_stakes
        b = int(route_budgets.get(route, budget))
        strata.append(
            StratumPlan(
                key={f: key[f] for f in by} if by else {"route": route},
                stratum=row[STRATUM],
                route=route,
                calls=float(row["calls"] or 0.0),
                sampled=int(row["sampled"]),
                rows=int(row["rows"]),
                traces=int(row["traces"]),
                budget=b,
                eval_rate=1.0,
                high_stakes=hs,
            )
        )
    if allocation == "neyman":
        normal = [s for s in strata if not s.high_stakes]
        total = float(sum(s.budget for s in normal))
        elig_calls = dict(
            zip(totals[STRATUM].to_list(), totals["elig_calls"].to_list(), strict=True)
        )
        alloc = _neyman(
            [float(elig_calls.get(s.stratum) or 0.0) for s in normal],
            [float((sds or {}).get(s.stratum, (sds or {}).get(s.route, 0.5))) for s in normal],
            [s.traces for s in normal],
            total,
        )
        for s, n in zip(normal, alloc, strict=True):
            s.eval_rate = min(1.0, n / s.traces) if s.traces else 1.0
    else:
        for s in strata:
            if not s.high_stakes:
                s.eval_rate = min(1.0, s.budget / s.traces) if s.traces else 1.0
    for s in strata:
        if s.high_stakes:
            s.eval_rate = 1.0
        if s.eval_rate <= 0:
            s.eval_rate = 0.0
    return strata


def rates_frame(strata: Sequence[StratumPlan]) -> pl.DataFrame:
    """``_stratum → eval_rate`` of a plan, the one thing :func:`select_rows` needs."""
    return pl.DataFrame(
        {STRATUM: [s.stratum for s in strata], "eval_rate": [s.eval_rate for s in strata]},
        schema={STRATUM: pl.String, "eval_rate": pl.Float64},
    )


def select_rows(
    rows: pl.DataFrame, kcols: Sequence[str], rates: pl.DataFrame, salt: str = EVAL_SALT
) -> pl.DataFrame:
    """The selected rows of :func:`keyed` rows (with ``_u``, ``eval_rate`` and ``weight``),
    in their input order. Each row's fate depends only on its own ``trace_id`` and
    stratum, so selecting batch by batch gives the rows selecting the whole frame does.

    The test runs on the key columns alone and only the selected rows are gathered, so a
    batch's text columns are copied for the few rows the judge will see."""
    ids = rows.get_column("trace_id")
    u = pl.Series(U, stable_uniform(ids, salt)).scatter(
        ids.is_null().arg_true(), None
    )  # an absent id is never selected (as the lookup join never matches it)
    rate = rows.select(
        pl.col(STRATUM).replace_strict(
            rates[STRATUM], rates["eval_rate"], default=None, return_dtype=pl.Float64
        )
    ).to_series()
    keep = rows.get_column("_eligible") & (u < rate)
    keep = keep.fill_null(False)
    picked = rows.filter(keep).drop("_eligible", *kcols)
    return picked.with_columns(u.filter(keep), rate.filter(keep).alias("eval_rate")).with_columns(
        (1.0 / (pl.col("sample_rate") * pl.col("eval_rate"))).alias("weight")
    )


def count_selected(strata: Sequence[StratumPlan], selection: pl.DataFrame) -> None:
    """Fill each stratum's ``selected_rows`` and ``selected_traces`` from the selection."""
    counts = selection.group_by(STRATUM).agg(
        pl.len().alias("n"), pl.col("trace_id").n_unique().alias("t")
    )
    got = {r[STRATUM]: (r["n"], r["t"]) for r in counts.iter_rows(named=True)}
    for s in strata:
        s.selected_rows, s.selected_traces = got.get(s.stratum, (0, 0))


def make_plan(
    frame: pl.DataFrame,
    *,
    by: Sequence[str] = ("route",),
    budget: int = 200,
    route_budgets: Mapping[str, int] | None = None,
    high_stakes: set[str] | frozenset[str] = frozenset(),
    allocation: Literal["equal", "neyman"] = "equal",
    sds: Mapping[str, float] | None = None,
    salt: str = EVAL_SALT,
    window: str = "current",
) -> Plan:
    """Plan and select: see the module docstring. ``frame`` is canonical rows of one window
    (the whole-frame path; :mod:`core.eval.counts` does the same from batches)."""
    rows, kcols = keyed(frame, by)
    strata = plan_strata(
        stratum_totals(rows, kcols),
        by=by,
        budget=budget,
        route_budgets=route_budgets,
        high_stakes=high_stakes,
        allocation=allocation,
        sds=sds,
    )
    selection = select_rows(rows, kcols, rates_frame(strata), salt)
    count_selected(strata, selection)
    return Plan(
        by=list(by), allocation=allocation, strata=strata, selection=selection, window=window
    )


__all__ = [
    "EVAL_SALT",
    "STRATUM",
    "Plan",
    "StratumPlan",
    "count_selected",
    "keyed",
    "make_plan",
    "plan_strata",
    "rates_frame",
    "scalar_uniform",
    "select_rows",
    "stable_hash64",
    "stable_uniform",
    "strata_fields",
    "stratum_totals",
    "with_uniform",
]
