"""Renderers of ``llmobs eval`` results: JSON (the contract), Rich table, Markdown, CSV.

JSON is :meth:`EvalSummary.as_dict` — ``groups``, ``regressions``, ``judge`` (see
``docs/eval.md``), plus ``tests`` (every comparison), ``overall`` (standardised to one stratum
mix), ``baseline_groups``, ``buckets``, ``agreement``, ``plan`` and ``windows``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from llmobs_cli.core.eval.options import EvalRun, EvalSummary
from llmobs_cli.core.record.jsonable import clean
from llmobs_cli.render.tables import Col, fitted_tables, human_number, human_usd, markdown_table


def to_json(obj: Any) -> str:
    return json.dumps(clean(obj), indent=2, default=str, ensure_ascii=False)


def _key(key: dict[str, Any]) -> str:
    return ", ".join(f"{v}" for v in key.values()) or "(all)"


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(g: dict[str, Any]) -> str:
    if g.get("ci_low") is None:
        return "—"
    return f"[{g['ci_low']:.3f}, {g['ci_high']:.3f}]"


GROUP_HEAD = ["group", "evaluator", "judged", "n_eff", "calls", "score", "95% CI", "errors"]


#: ``--sort`` names of the groups table → the group field they order by.
GROUP_SORT = {"score": "score", "judged": "judged", "calls": "calls", "n_eff": "n_eff"}


def ordered_groups(
    groups: list[dict[str, Any]], top: int | None, sort: str | None, ascending: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Groups in ``--sort`` order, the first ``--top``, and the rest as one "(other)" row
    whose judged calls, estimated calls and judge errors add up (a score or an interval
    of unrelated groups would mean nothing, so it has none)."""
    out = list(groups)
    if sort:
        field = GROUP_SORT.get(sort)
        if field is None:
            from llmobs_cli.errors import UsageError

            raise UsageError(f"--sort: unknown column '{sort}' (one of: {', '.join(GROUP_SORT)})")
        known = [g for g in out if g.get(field) is not None]
        known.sort(key=lambda g: g[field], reverse=not ascending)
        out = known + [g for g in out if g.get(field) is None]
    if top is None or top >= len(out):
        return out, None
    rest = out[top:]
    return out[:top], {
        "key": {"(other)": f"{len(rest)} groups"},
        "evaluator": "",
        "judged": sum(int(g.get("judged") or 0) for g in rest),
        "n_eff": None,
        "calls": sum(float(g.get("calls") or 0.0) for g in rest),
        "score": None,
        "errors": sum(int(g.get("errors") or 0) for g in rest),
        "error_rate": None,
        "_other": True,
    }


def _group_rows(
    summary: EvalSummary,
    top: int | None = None,
    sort: str | None = None,
    ascending: bool = False,
) -> list[list[str]]:
    groups, other = ordered_groups(summary.groups, top, sort, ascending)
    rows = [
        [
            _key(g["key"]),
            g["evaluator"],
            str(g["judged"]),
            human_number(g["n_eff"]),
            human_number(g["calls"]),
            _f(g["score"]),
            _ci(g),
            "—" if g["error_rate"] is None else f"{g['errors']} ({g['error_rate']:.1%})",
        ]
        for g in groups
    ]
    if other is not None:
        rows.append(
            [
                f"(other: {other['key']['(other)']})",
                "",
                str(other["judged"]),
                "—",
                human_number(other["calls"]),
                "—",
                "—",
                str(other["errors"]),
            ]
        )
    return rows


CORRECTED_HEAD = ["group", "evaluator", "labels", "judge", "corrected", "95% CI", "judge bias"]


def _corrected_rows(summary: EvalSummary) -> list[list[str]]:
    """Groups with a judge-error-corrected score (random-sample human labels)."""
    rows = []
    for g in summary.groups:
        c = g.get("corrected")
        if not c:
            continue
        rows.append(
            [
                _key(g["key"]),
                g["evaluator"],
                str(c["labels"]),
                _f(g["score"]),
                _f(c["score"]),
                _ci(c),
                f"{c['judge_bias']:+.3f}",
            ]
        )
    return rows


TEST_HEAD = ["group", "evaluator", "baseline", "current", "Δ", "SE", "p", "q", "MDE", "verdict"]


def _verdict(t: Any) -> str:
    if t.regression:
        return "REGRESSION"
    if t.underpowered:
        return "underpowered"
    return "ok"


def _test_rows(summary: EvalSummary) -> list[list[str]]:
    rows = []
    for t in summary.tests:
        label = _key(t.key)
        if t.kind == "release":
            label += f" (vs {t.extra.get('baseline_release')})"
        rows.append(
            [
                label,
                t.evaluator,
                _f(t.baseline),
                _f(t.current),
                f"{t.delta:+.3f}",
                _f(t.se),
                _f(t.p_value, 4),
                _f(t.q_value, 4),
                _f(t.mde),
                _verdict(t),
            ]
        )
    return rows


def summary(
    s: EvalSummary,
    fmt: str,
    width: int = 100,
    wide: bool = False,
    top: int | None = None,
    sort: str | None = None,
    ascending: bool = False,
) -> str:
    """The summary in ``fmt``; the table view is fitted to ``width`` (numbers never cut)
    with its groups in ``sort`` order, the first ``top`` and an "(other)" row."""
    if sort:
        ordered_groups(s.groups, None, sort)  # an unknown column is exit 2 in every format
    if fmt == "json":
        return to_json(s.as_dict())
    if fmt == "markdown":
        return markdown(s)
    if fmt == "csv":
        return csv_groups(s)
    view = rich_summary(s, width, wide, top=top, sort=sort, ascending=ascending)
    if wide:
        from rich.measure import Measurement

        probe = Console(file=io.StringIO(), width=10_000)
        width = max(width, Measurement.get(probe, probe.options, view).maximum)
    return _rich_text(view, width)


#: Column priorities (0 always shown, higher dropped first) of the groups and tests tables.
GROUP_PRIORITY = (0, 0, 2, 3, 3, 1, 1, 4)
TEST_PRIORITY = (0, 0, 2, 2, 1, 4, 3, 2, 3, 0)


def markdown(s: EvalSummary) -> str:
    """A compact CI summary: regressions first, then the weighted scores."""
    regressions = s.as_dict().get("regressions") or []
    verdict = (
        f"**{len(regressions)} regression(s)**"
        if regressions
        else ("**No regression.**" if s.tests else "No regression test (no baseline window).")
    )
    parts = ["### llmobs eval", "", verdict, ""]
    if s.tests:
        parts += [
            "#### Regression tests",
            "",
            markdown_table(TEST_HEAD, _test_rows(s)).rstrip("\n"),
            "",
        ]
    parts += ["#### Scores (weighted, 95 % CI)", "", markdown_table(GROUP_HEAD, _group_rows(s))]
    corrected = _corrected_rows(s)
    if corrected:
        parts += [
            "",
            "#### Corrected for judge error (human labels on a random sample)",
            "",
            markdown_table(CORRECTED_HEAD, corrected).rstrip("\n"),
        ]
    if s.agreement:
        parts += [
            "",
            "#### Judge–human agreement",
            "",
            markdown_table(
                ["evaluator", "pairs", "agreement", "Cohen's κ"],
                [
                    [a["evaluator"], str(a["pairs"]), _f(a["agreement"]), _f(a["kappa"])]
                    for a in s.agreement
                ],
            ),
        ]
    j = s.judge
    parts += [
        "",
        f"Judge: {j.calls} calls, {j.cached} cached, {j.failed} failed, {human_usd(j.cost_usd)}",
    ]
    return "\n".join(parts) + "\n"


def csv_groups(s: EvalSummary) -> str:
    buf = io.StringIO()
    keys = list(s.by)
    extra = any(g.get("corrected") for g in s.groups)
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            *keys,
            "evaluator",
            "judged",
            "errors",
            "error_rate",
            "n_eff",
            "calls",
            "score",
            "ci_low",
            "ci_high",
            *(
                ["corrected", "corrected_ci_low", "corrected_ci_high", "judge_bias"]
                if extra
                else []
            ),
        ]
    )
    for g in s.groups:
        w.writerow(
            [
                *(g["key"].get(k) for k in keys),
                g["evaluator"],
                g["judged"],
                g["errors"],
                g["error_rate"],
                g["n_eff"],
                g["calls"],
                g["score"],
                g["ci_low"],
                g["ci_high"],
                *(
                    [
                        (g.get("corrected") or {}).get(k)
                        for k in ("score", "ci_low", "ci_high", "judge_bias")
                    ]
                    if extra
                    else []
                ),
            ]
        )
    return buf.getvalue()


def agreement(s: EvalSummary, fmt: str) -> str:
    """Judge–human agreement only (``llmobs review import``)."""
    rows = [
        [
            a["evaluator"],
            str(a["pairs"]),
            _f(a["agreement"]),
            _f(a["kappa"]),
            *(str(v) for v in a["confusion"].values()),
        ]
        for a in s.agreement
    ]
    head = ["evaluator", "pairs", "agreement", "Cohen's κ", "J✗H✗", "J✗H✓", "J✓H✗", "J✓H✓"]
    if not rows:
        return "no label matched a judged row: no agreement to report\n"
    if fmt == "markdown":
        return markdown_table(head, rows) + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["evaluator", "pairs", "agreement", "kappa", *s.agreement[0]["confusion"]])
        for a in s.agreement:
            w.writerow(
                [a["evaluator"], a["pairs"], a["agreement"], a["kappa"], *a["confusion"].values()]
            )
        return buf.getvalue()
    t = Table(title="Judge–human agreement (scores split at 0.5)", title_justify="left")
    for h in head:
        t.add_column(h, justify="left" if h == "evaluator" else "right")
    for r in rows:
        t.add_row(*r)
    return _rich_text(t)


def rich_summary(
    s: EvalSummary,
    width: int = 100,
    wide: bool = False,
    *,
    top: int | None = None,
    sort: str | None = None,
    ascending: bool = False,
) -> Group:
    items: list[Any] = []
    spec = [
        Col(h, justify="left" if h in ("group", "evaluator") else "right", priority=pr)
        for h, pr in zip(GROUP_HEAD, GROUP_PRIORITY, strict=True)
    ]
    rows = _group_rows(s, top, sort, ascending)
    other = top is not None and top < len(s.groups)
    items += fitted_tables(
        spec,
        rows,
        width,
        title="Eval scores (weighted, 95 % CI)",
        wide=wide,
        section_before=len(rows) - 1 if other else None,
    )
    corrected = _corrected_rows(s)
    if corrected:
        c = Table(
            title="Corrected for judge error (human labels on a random sample, 95 % CI)",
            title_justify="left",
        )
        for h in CORRECTED_HEAD:
            c.add_column(h, justify="left" if h in ("group", "evaluator") else "right")
        for row in corrected:
            c.add_row(*row)
        items.append(c)
    if s.overall:
        o = Table(title="Overall (standardised to the current stratum mix)", title_justify="left")
        for h in ("evaluator", "current", "baseline", "Δ"):
            o.add_column(h, justify="left" if h == "evaluator" else "right")
        for r in s.overall:
            cur = r.get("current", {})
            base = r.get("baseline")
            o.add_row(
                r["evaluator"],
                _f(cur.get("score")),
                _f(base.get("score")) if base else "—",
                f"{r['delta']:+.3f}" if r.get("delta") is not None else "—",
            )
        items.append(o)
    items.extend(_signal_tables(s))
    if s.tests:
        spec = [
            Col(
                h,
                justify="left" if h in ("group", "evaluator", "verdict") else "right",
                priority=pr,
            )
            for h, pr in zip(TEST_HEAD, TEST_PRIORITY, strict=True)
        ]
        rows: list[list[Any]] = []
        for row in _test_rows(s):
            style = "bold red" if row[-1] == "REGRESSION" else ""
            rows.append([*row[:-1], Text(row[-1], style=style)])
        items += fitted_tables(
            spec,
            rows,
            width,
            title="Regression tests (one-sided, BH-corrected)",
            wide=wide,
        )
    if s.agreement:
        a = Table(title="Judge–human agreement", title_justify="left")
        for h in ("evaluator", "pairs", "agreement", "Cohen's κ", "J✗H✗", "J✗H✓", "J✓H✗", "J✓H✓"):
            a.add_column(h, justify="left" if h == "evaluator" else "right")
        for x in s.agreement:
            c = x["confusion"]
            a.add_row(
                x["evaluator"],
                str(x["pairs"]),
                _f(x["agreement"]),
                _f(x["kappa"]),
                str(c["judge_fail_human_fail"]),
                str(c["judge_fail_human_pass"]),
                str(c["judge_pass_human_fail"]),
                str(c["judge_pass_human_pass"]),
            )
        items.append(a)
    items += [Text(f"hint: {h}", style="dim") for h in underpowered_hints(s)]
    j = s.judge
    items.append(
        Text(
            f"judge {j.model}: {j.calls} calls, {j.cached} cached, {j.failed} failed, "
            f"{human_usd(j.cost_usd)}"
            + (" (unpriced: counted as $0)" if j.unpriced else "")
            + (f"; {j.skipped} not judged" if j.skipped else "")
        )
    )
    for n in s.notes:
        items.append(Text(n))
    return Group(*items)


def _pct(x: Any) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def _signal_tables(s: EvalSummary) -> list[Table]:
    """Confident-wrong rates (when the judged calls carry log-probs) and session heuristics
    (``--unit session``)."""
    out: list[Table] = []
    cw = [g for g in s.groups if g.get("confident_wrong")]
    if cw:
        t = Table(
            title="Confident-wrong (mean token log-prob ≥ log 0.8, score < 0.5; weighted, 95 % CI)",
            title_justify="left",
        )
        for h in ("group", "evaluator", "with log-probs", "confident-wrong", "rate", "95% CI"):
            t.add_column(h, justify="left" if h in ("group", "evaluator") else "right")
        for g in cw:
            c = g["confident_wrong"]
            t.add_row(
                _key(g["key"]),
                g["evaluator"],
                str(c["n"]),
                str(c["count"]),
                _pct(c["rate"]),
                f"[{_pct(c['ci_low'])}, {_pct(c['ci_high'])}]",
            )
        out.append(t)
    if s.sessions:
        t = Table(title="Sessions (every session, weighted)", title_justify="left")
        heads = ("group", "sessions", "turns", "repeated q.", "abandoned", "resolved", "to resolve")
        for h in heads:
            t.add_column(h, justify="left" if h == "group" else "right")
        for r in s.sessions:
            key = {k: r[k] for k in s.by if k in r}
            t.add_row(
                _key(key) if key else "all",
                f"{r['sessions']:,.0f}",
                _f(r["mean_turns"], 2),
                _pct(r["repeated_question_rate"]),
                _pct(r["abandonment_rate"]),
                _pct(r["resolved_share"]),
                _f(r["mean_turns_to_resolution"], 2),
            )
        out.append(t)
    return out


def underpowered_hints(s: EvalSummary, min_drop: float = 0.05, limit: int = 3) -> list[str]:
    """What would make underpowered tests answer: the n_eff per window that brings the
    minimum detectable effect down to ``min_drop`` (MDE shrinks with 1/sqrt(n_eff))."""
    weak = [t for t in s.tests if t.underpowered and not t.regression and t.mde == t.mde]
    if not weak:
        return []
    weak.sort(key=lambda t: -t.mde)
    out = [f"{len(weak)} test(s) are underpowered: they can only see drops larger than their MDE."]
    for t in weak[:limit]:
        k = (t.mde / min_drop) ** 2
        out.append(
            f"{_key(t.key)} {t.evaluator}: MDE {t.mde:.3f} with n_eff "
            f"{t.n_eff_baseline:,.0f}/{t.n_eff_current:,.0f}; a {min_drop:.2f} drop needs about "
            f"{k * t.n_eff_baseline:,.0f}/{k * t.n_eff_current:,.0f} (raise --budget, or "
            "judge a longer window)"
        )
    return out


def _rich_text(renderable: Any, width: int = 140) -> str:
    con = Console(
        file=io.StringIO(), width=width, highlight=False, force_terminal=False, color_system=None
    )
    con.print(renderable)
    return str(con.file.getvalue())  # type: ignore[attr-defined]


PLAN_HEAD = [
    "window",
    "stratum",
    "calls",
    "rows",
    "traces",
    "eval rate",
    "traces judged",
    "judgments",
    "est. tokens in/out",
    "est. cost",
]


def plan(run: EvalRun, fmt: str) -> str:
    rows = run.summary.plan
    total = sum(r["est_cost_usd"] for r in rows)
    if fmt == "json":
        return to_json(
            {
                "dry_run": True,
                "plan": rows,
                "estimated_cost_usd": total,
                "price_known": run.price_known,
                "windows": run.summary.windows,
                "groups": [],
                "regressions": [],
                "judge": {"calls": 0, "cached": 0, "failed": 0, "cost_usd": 0.0},
            }
        )
    table_rows = [
        [
            r["window"],
            ", ".join(f"{v}" for v in r["key"].values())
            + (" (high stakes)" if r["high_stakes"] else ""),
            human_number(r["calls"]),
            str(r["rows"]),
            str(r["traces"]),
            f"{r['eval_rate']:.4g}",
            str(r["selected_traces"]),
            str(r["judgments"]),
            f"{r['est_input_tokens']:,} / {r['est_output_tokens']:,}",
            human_usd(r["est_cost_usd"]),
        ]
        for r in rows
    ]
    note = (
        f"Dry run: no judge call made. Estimated judge cost {human_usd(total)}"
        + ("" if run.price_known else " (judge model not priced: set judge prices)")
        + "."
    )
    if fmt == "markdown":
        return markdown_table(PLAN_HEAD, table_rows) + "\n\n" + note + "\n"
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(
            [
                "window",
                "stratum",
                "calls",
                "rows",
                "traces",
                "eval_rate",
                "selected_traces",
                "judgments",
                "est_input_tokens",
                "est_output_tokens",
                "est_cost_usd",
            ]
        )
        for r in rows:
            w.writerow(
                [
                    r["window"],
                    r["stratum"],
                    r["calls"],
                    r["rows"],
                    r["traces"],
                    r["eval_rate"],
                    r["selected_traces"],
                    r["judgments"],
                    r["est_input_tokens"],
                    r["est_output_tokens"],
                    r["est_cost_usd"],
                ]
            )
        return buf.getvalue()
    t = Table(title="Eval plan", title_justify="left")
    for h in PLAN_HEAD:
        t.add_column(h, justify="left" if h in ("window", "stratum") else "right")
    for row in table_rows:
        t.add_row(*row)
    return _rich_text(Group(t, Text(note)))


def regression_lines(s: EvalSummary) -> list[str]:
    out = []
    for t in s.regressions:
        vs = (
            f" vs release {t.extra.get('baseline_release')}"
            if t.kind == "release"
            else " vs baseline"
        )
        out.append(
            f"regression: {_key(t.key)} {t.evaluator}: {t.baseline:.3f} → {t.current:.3f} "
            f"(Δ {t.delta:+.3f}{vs}, q={t.q_value:.4f})"
        )
        ex = t.extra.get("exemplars") or []
        if ex:
            from llmobs_cli.render.tables import exemplar_text, show_line

            out.append(f"  lowest-scored calls: {exemplar_text(ex, lambda v: f'{v:.2f}')}")
            out.append(f"  open one: {show_line(str(ex[0]['trace_id']), None)}")
    return out
