"""Summaries of judgment rows: weighted scores with intervals per group, standardised
overall figures, window and release regression tests, time buckets, judge–human agreement.

:func:`summarize` is the API the dashboard and ``llmobs eval summarize`` use on a saved
``evals.parquet`` as well as on a fresh run: per group × evaluator the judged count,
``n_eff``, the Hájek mean score with a 95 % interval (stratified linearised variance, Wilson
with ``n_eff`` for small groups: :func:`core.record.weights.hajek_mean_ci`), error rate;
overall figures standardised to the current window's stratum mix; an optional time series;
window and release regression tests (:mod:`core.eval.regression`); judge–human agreement.
Human labels are excluded from the score groups: reviewed rows are chosen for being
high-stakes, borderline or disputed, so they are not a probability sample. The labels of
the review queue's *random* part are one, and correct the judge: a group with enough of
them gains ``corrected`` (:mod:`core.eval.correction`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from llmobs_cli.core.eval import regression as reg
from llmobs_cli.core.eval.judges.human import cohen_kappa, confusion
from llmobs_cli.core.eval.judgments import HUMAN, JUDGMENT_SCHEMA, REFERENCE
from llmobs_cli.core.eval.options import EvalSummary, JudgeStats
from llmobs_cli.core.record.jsonable import finite, iso
from llmobs_cli.core.record.weights import hajek_mean_ci
from llmobs_cli.core.signals import confident_wrong
from llmobs_cli.errors import UsageError

if TYPE_CHECKING:
    from llmobs_cli.core.record.config import Config


def _key_cols(frame: pl.DataFrame, by: Sequence[str]) -> list[str]:
    missing = [f for f in by if f not in frame.columns]
    if missing:
        raise UsageError(
            f"by: the evals file has no column '{missing[0]}' (judge grouped by "
            f"{','.join(by)} to group by it)",
            param="by",
        )
    return list(by)


def _group_stats(part: pl.DataFrame) -> dict[str, Any]:
    """Stats of one group × evaluator (a few hundred rows: numpy)."""
    n_all = part.height
    ok = part.filter(pl.col("error").is_null() & pl.col("score").is_not_null())
    y = ok["score"].to_numpy().astype(float)
    w = ok["weight"].to_numpy().astype(float)
    strata = ok["stratum"].to_numpy() if "stratum" in ok.columns else None
    mean, lo, hi, se = hajek_mean_ci(y, w, strata) if y.size else (math.nan,) * 4
    ne = float(w.sum() ** 2 / (w**2).sum()) if y.size else 0.0
    return {
        "judged": int(ok.height),
        "errors": int(n_all - ok.height),
        "error_rate": (n_all - ok.height) / n_all if n_all else None,
        "calls": float(w.sum()) if y.size else 0.0,
        "n_eff": ne,
        "score": finite(mean),
        "ci_low": finite(lo),
        "ci_high": finite(hi),
        "se": finite(se),
        "flagged": int(part["flagged"].fill_null(False).sum()) if "flagged" in part.columns else 0,
    }


def _groups(frame: pl.DataFrame, keys: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not frame.height:
        return out
    for gkey, part in frame.sort([*keys, "evaluator"], nulls_last=True).group_by(
        [*keys, "evaluator"], maintain_order=True
    ):
        key = dict(zip(keys, gkey[: len(keys)], strict=True))
        row = {"key": key, "evaluator": gkey[-1], **_group_stats(part)}
        cw = confident_wrong.stats(part)  # only when the judged calls carry log-probs
        if cw is not None:
            row["confident_wrong"] = cw
        out.append(row)
    return out


def _add_corrected(
    groups: list[dict[str, Any]], cur: pl.DataFrame, frame: pl.DataFrame, keys: list[str]
) -> None:
    """Add ``corrected`` to each group × evaluator with enough random-sample labels."""
    from llmobs_cli.core.eval.correction import ppi_mean

    human = frame.filter(
        (pl.col("evaluator") == HUMAN)
        & pl.col("review_random").fill_null(False)
        & pl.col("score").is_not_null()
        & pl.col("review_rate").is_not_null()
        & (pl.col("window") == "current")
    ).select(
        "trace_id",
        "span_id",
        pl.col("criterion").alias("evaluator"),
        pl.col("score").alias("_y"),
        pl.col("review_rate").alias("_pi"),
    )
    if not human.height:
        return
    judged = cur.filter(pl.col("error").is_null() & pl.col("score").is_not_null())
    labelled = judged.join(human, on=["trace_id", "span_id", "evaluator"], how="inner")
    for g in groups:
        match = [pl.col("evaluator") == g["evaluator"]] + [
            pl.col(k).is_null() if v is None else pl.col(k) == v for k, v in g["key"].items()
        ]
        lab = labelled.filter(*match)
        if not lab.height:
            continue
        part = judged.filter(*match)
        est = ppi_mean(
            part["score"].to_numpy(),
            part["weight"].to_numpy(),
            lab["score"].to_numpy(),
            lab["_y"].to_numpy(),
            lab["weight"].to_numpy(),
            lab["_pi"].to_numpy(),
        )
        if est is not None:
            g["corrected"] = est.as_dict()


def _overall(cur: pl.DataFrame, base: pl.DataFrame | None) -> list[dict[str, Any]]:
    """Per evaluator, standardised to the current window's stratum mix (Σw shares)."""
    out = []
    for ev in sorted(cur["evaluator"].unique().to_list()):
        c = cur.filter(pl.col("evaluator") == ev)
        mix = c.group_by("stratum").agg(pl.col("weight").sum().alias("w"))
        shares = dict(
            zip(mix["stratum"].to_list(), (mix["w"] / mix["w"].sum()).to_list(), strict=True)
        )
        row: dict[str, Any] = {"evaluator": ev}
        for name, part in (
            ("current", c),
            ("baseline", None if base is None else base.filter(pl.col("evaluator") == ev)),
        ):
            if part is None:
                continue
            est = _standardised(part, shares)
            row[name] = est
        if (
            "baseline" in row
            and row["current"]["score"] is not None
            and row["baseline"]["score"] is not None
        ):
            d, se, _z, p = reg.drop_test(
                row["current"]["score"],
                row["current"]["se"],
                row["baseline"]["score"],
                row["baseline"]["se"],
            )
            row["delta"], row["se"], row["p_value"] = finite(d), finite(se), finite(p)
        out.append(row)
    return out


def _standardised(part: pl.DataFrame, shares: dict[str, float]) -> dict[str, Any]:
    est, var, cover = 0.0, 0.0, 0.0
    judged = 0
    for stratum, share in shares.items():
        s = part.filter(pl.col("stratum") == stratum)
        st = _group_stats(s) if s.height else None
        if st is None or st["score"] is None:
            continue
        est += share * st["score"]
        var += share**2 * (st["se"] or 0.0) ** 2
        cover += share
        judged += st["judged"]
    if cover == 0:
        return {
            "score": None,
            "se": None,
            "ci_low": None,
            "ci_high": None,
            "judged": 0,
            "coverage": 0.0,
        }
    est /= cover  # strata missing in this window: renormalise over the ones present
    var /= cover**2
    se = math.sqrt(var)
    return {
        "score": est,
        "se": se,
        "ci_low": max(0.0, est - 1.959964 * se),
        "ci_high": min(1.0, est + 1.959964 * se),
        "judged": judged,
        "coverage": cover,
    }


def _window_tests(
    cur: list[dict[str, Any]], base: list[dict[str, Any]], opts_alpha: float, min_drop: float
) -> list[reg.Comparison]:
    index = {(json.dumps(g["key"], sort_keys=True, default=str), g["evaluator"]): g for g in base}
    tests = []
    for g in cur:
        b = index.get((json.dumps(g["key"], sort_keys=True, default=str), g["evaluator"]))
        if b is None or g["score"] is None or b["score"] is None:
            continue
        tests.append(reg.compare(_comparison(g, b), opts_alpha, min_drop=min_drop))
    return tests


def _comparison(g: dict[str, Any], b: dict[str, Any], **kind: Any) -> reg.Comparison:
    """The comparison of a current group summary ``g`` with its baseline ``b``."""
    return reg.Comparison(
        key=g["key"],
        evaluator=g["evaluator"],
        current=g["score"],
        baseline=b["score"],
        se_current=g["se"] if g["se"] is not None else math.nan,
        se_baseline=b["se"] if b["se"] is not None else math.nan,
        n_eff_current=g["n_eff"],
        n_eff_baseline=b["n_eff"],
        judged_current=g["judged"],
        judged_baseline=b["judged"],
        **kind,
    )


def _release_tests(
    frame: pl.DataFrame, keys: list[str], alpha: float, min_drop: float
) -> list[reg.Comparison]:
    """Each release against the one before it (by first timestamp), within the other keys."""
    others = [k for k in keys if k != "release"]
    first = frame.group_by("release").agg(pl.col("timestamp").min().alias("t")).sort("t")
    order = [r for r in first["release"].to_list() if r is not None]
    if len(order) < 2:
        return []
    groups = _groups(frame, keys)
    index = {
        (
            json.dumps({k: g["key"][k] for k in others}, default=str),
            g["key"]["release"],
            g["evaluator"],
        ): g
        for g in groups
    }
    tests = []
    for g in groups:
        rel = g["key"]["release"]
        if rel not in order or order.index(rel) == 0:
            continue
        prev = order[order.index(rel) - 1]
        okey = json.dumps({k: g["key"][k] for k in others}, default=str)
        b = index.get((okey, prev, g["evaluator"]))
        if b is None or g["score"] is None or b["score"] is None:
            continue
        c = _comparison(g, b, kind="release", extra={"baseline_release": prev})
        tests.append(reg.compare(c, alpha, min_drop=min_drop))
    return tests


def _buckets(frame: pl.DataFrame, keys: list[str], bucket: str) -> list[dict[str, Any]]:
    every = {"hour": "1h", "day": "1d", "week": "1w"}.get(bucket)
    if every is None:
        raise UsageError(f"bucket: expected hour, day or week (got '{bucket}')", param="bucket")
    b = frame.with_columns(pl.col("timestamp").dt.truncate(every).alias("_bucket"))
    out = []
    for (ts, *rest), part in b.sort("_bucket").group_by(
        ["_bucket", *keys, "evaluator"], maintain_order=True
    ):
        key = dict(zip(keys, rest[: len(keys)], strict=True))
        out.append(
            {
                "bucket": ts.isoformat() if ts is not None else None,
                "key": key,
                "evaluator": rest[-1],
                **_group_stats(part),
            }
        )
    out.sort(key=lambda d: (d["bucket"] or "", json.dumps(d["key"], default=str), d["evaluator"]))
    return out


def agreement_table(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Judge–human agreement per criterion: κ, confusion matrix, raw agreement."""
    if "evaluator" not in frame.columns:
        return []
    human = frame.filter((pl.col("evaluator") == HUMAN) & pl.col("score").is_not_null())
    if not human.height:
        return []
    judged = frame.filter(
        (pl.col("evaluator") != HUMAN) & pl.col("error").is_null() & pl.col("score").is_not_null()
    )
    pairs = (
        human.select("trace_id", "span_id", "criterion", pl.col("score").alias("h"))
        .join(
            judged.select(
                "trace_id",
                "span_id",
                pl.col("evaluator").alias("criterion"),
                pl.col("score").alias("j"),
            ),
            on=["trace_id", "span_id", "criterion"],
            how="inner",
        )
        .unique(["trace_id", "span_id", "criterion"], keep="last")
    )
    out = []
    for (crit,), part in pairs.sort("criterion").group_by(["criterion"], maintain_order=True):
        jb = (part["j"] >= 0.5).cast(pl.Int8).to_list()
        hb = (part["h"] >= 0.5).cast(pl.Int8).to_list()
        m = confusion(jb, hb)
        kappa = cohen_kappa(jb, hb)
        out.append(
            {
                "evaluator": crit,
                "pairs": part.height,
                "agreement": float(np.trace(m) / m.sum()) if m.sum() else None,
                "kappa": kappa,
                "confusion": {
                    "judge_fail_human_fail": int(m[0, 0]),
                    "judge_fail_human_pass": int(m[0, 1]),
                    "judge_pass_human_fail": int(m[1, 0]),
                    "judge_pass_human_pass": int(m[1, 1]),
                },
                "mean_abs_diff": float((part["j"] - part["h"]).abs().mean()),  # type: ignore[arg-type]
            }
        )
    return out


def judge_stats_from_frame(frame: pl.DataFrame) -> JudgeStats:
    llm = frame.filter(~pl.col("evaluator").is_in([REFERENCE, HUMAN]))
    if not llm.height:
        return JudgeStats()
    models = llm["judge_model"].drop_nulls().unique().to_list()
    return JudgeStats(
        calls=int(llm.filter(~pl.col("cached"))["attempts"].sum() or 0),
        cached=int(llm["cached"].sum() or 0),
        failed=int(llm["error"].is_not_null().sum()),
        cost_usd=float(llm.filter(~pl.col("cached"))["judge_cost_usd"].sum() or 0.0),
        model=",".join(sorted(str(m) for m in models)),
    )


def summarize(
    evals: pl.DataFrame,
    by: Sequence[str] = ("route",),
    bucket: str | None = None,
    *,
    alpha: float = 0.05,
    min_drop: float = 0.05,
    release_tests: bool | None = None,
) -> EvalSummary:
    """Aggregate judgment rows (a fresh run or a saved ``evals.parquet``); no call is made.

    Groups come from the ``current`` window (all rows when the file has no ``window``
    column); with ``baseline`` rows present each group × evaluator is tested for a
    regression; with ``release`` in ``by`` (and no baseline window) each release is
    tested against the previous one.
    """
    frame = evals
    for col, default in (
        ("window", "current"),
        ("flagged", False),
        ("stratum", None),
        ("cached", False),
        ("criterion", None),
        ("judge_model", None),
        ("judge_cost_usd", 0.0),
        ("attempts", 0),
    ):
        if col not in frame.columns:
            dtype = JUDGMENT_SCHEMA[col]
            frame = frame.with_columns(pl.lit(default, dtype).alias(col))
    if frame.height and frame["stratum"].null_count() == frame.height:
        frame = frame.with_columns(pl.col("route").alias("stratum"))
    keys = _key_cols(frame, by) if frame.height else list(by)
    scored = frame.filter(pl.col("evaluator") != HUMAN) if frame.height else frame
    cur = scored.filter(pl.col("window") == "current") if frame.height else scored
    base = scored.filter(pl.col("window") == "baseline") if frame.height else scored
    summary = EvalSummary(by=list(by), groups=_groups(cur, keys))
    if frame.height and "review_random" in frame.columns:
        _add_corrected(summary.groups, cur, frame, keys)
    if base.height:
        summary.baseline_groups = _groups(base, keys)
        summary.tests = _window_tests(summary.groups, summary.baseline_groups, alpha, min_drop)
    if release_tests is None:
        release_tests = "release" in keys and not base.height
    if release_tests and cur.height:
        summary.tests += _release_tests(cur, keys, alpha, min_drop)
    reg.flag(summary.tests, alpha, min_drop)
    if cur.height:
        summary.overall = _overall(cur, base if base.height else None)
    if bucket and scored.height:
        summary.buckets = _buckets(scored, keys, bucket)
    summary.agreement = agreement_table(frame) if frame.height else []
    summary.judge = judge_stats_from_frame(frame) if frame.height else JudgeStats()
    if frame.height:
        ts = frame["timestamp"]
        summary.windows = {
            w: {"start": None, "end": None} for w in frame["window"].unique().sort().to_list()
        }
        for w in summary.windows:
            t = frame.filter(pl.col("window") == w)["timestamp"]
            summary.windows[w] = {"start": iso(t.min()), "end": iso(t.max())}
        del ts
    return summary


def summarize_with_config(
    evals: pl.DataFrame,
    cfg: Config,
    *,
    by: Sequence[str] | None = None,
    bucket: str | None = None,
    min_drop: float | None = None,
) -> EvalSummary:
    """:func:`summarize` with ``llmobs.yaml``'s ``eval`` defaults (``by``, ``bucket``,
    ``alpha``, ``min_drop``) for the arguments left ``None`` — ``llmobs eval summarize``."""
    from llmobs_cli.core.record.fields import parse_fields

    e = cfg.eval
    fields = (list(by) if by is not None else parse_fields(",".join(e.by), "eval.by")) or ["route"]
    return summarize(
        evals,
        fields,
        bucket if bucket is not None else e.bucket,
        alpha=e.alpha,
        min_drop=min_drop if min_drop is not None else e.min_drop,
    )
