"""Tables that fit: the exact rendered report, eval summary and drift at 80, 100 and 200
columns (golden files), never a cut number, --top/--sort with a true "(other)" row, and
the column planner itself.

Regenerate the golden files after an intended change of the output with
``LLMOBS_UPDATE_GOLDEN=1 python -m pytest tests/test_fitted_tables.py``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from fitted_fixtures import SAMPLE, sample_evals
from llmobs_cli.render.tables import Col, plan_columns
from test_eval_support import run_cli

GOLDEN = Path(__file__).parent / "golden"
WIDTHS = (80, 100, 200)
#: A number cut by an ellipsis: a digit, $, % or unit letter right before "…", or "…"
#: right before a digit.
CUT = re.compile(r"[\d$%.,kMBs]…|…[\d$]")


@pytest.fixture(scope="module")
def evals(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_evals(tmp_path_factory.mktemp("evals"))


def _commands(evals: Path) -> dict[str, list[str]]:
    # Relative to the repository root (the tests chdir there): the output names the file.
    traces = "sample_traces/traces.parquet"
    return {
        "report": ["report", traces],
        "eval": ["eval", "summarize", str(evals)],
        "drift": ["drift", traces],
    }


def _check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("LLMOBS_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{name}: output differs from {path}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("command", ["report", "eval", "drift"])
def test_exact_output_fits_and_keeps_numbers(
    command: str, width: int, evals: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(SAMPLE.parent)
    res = run_cli(*_commands(evals)[command], env={"COLUMNS": str(width)})
    assert res.returncode in (0, 1), res.stderr
    lines = res.stdout.splitlines()
    assert lines, "no output"
    assert max(len(ln.rstrip()) for ln in lines) <= width
    assert "…" not in res.stdout  # nothing at all is cut in these tables
    assert not CUT.search(res.stdout)
    _check_golden(f"{command}_{width}", res.stdout)


def test_report_numbers_all_present_at_100() -> None:
    """Every group's cost and P99 from the JSON appears whole in the 100-column table."""
    traces = str(SAMPLE / "traces.parquet")
    doc = json.loads(run_cli("report", traces, "-f", "json").stdout)
    text = run_cli("report", traces, env={"COLUMNS": "100"}).stdout
    for g in [*doc["groups"], doc["overall"]]:
        assert f"${g['cost_usd']:,.2f}" in text
        p99 = g["latency_ms"]["p99"]
        assert (f"{p99 / 1000:.2f}s" if p99 >= 1000 else f"{p99:.0f}ms") in text


def test_drift_summary_says_what_moved() -> None:
    out = run_cli("drift", str(SAMPLE / "traces.parquet"), env={"COLUMNS": "200"}).stdout
    assert "(+0%)" not in out
    assert (
        "retrieval_count       all            shares at 2,3,4 docs: 32%,34%,34% -> 22%,35%,42%"
        in out
    )
    assert "hint: a current window of about 12 days (--current 12d)" in out


def test_top_and_other_row_keep_totals_true() -> None:
    traces = str(SAMPLE / "traces.parquet")
    doc = json.loads(run_cli("report", traces, "--by", "metadata.topic", "-f", "json").stdout)
    groups = sorted(doc["groups"], key=lambda g: -g["cost_usd"])
    res = run_cli(
        "report",
        traces,
        "--by",
        "metadata.topic",
        "--top",
        "3",
        "--sort",
        "cost",
        "--columns",
        "calls,cost,errors",
        env={"COLUMNS": "100"},
    )
    assert res.returncode == 0, res.stderr
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith("│")]
    names = [r.split("│")[1].strip() for r in rows]
    assert names == [
        *(g["key"]["metadata.topic"] or "(none)" for g in groups[:3]),
        "(other)",
        "all",
    ]
    rest = groups[3:]
    other_cost = sum(g["cost_usd"] for g in rest)
    other_calls = sum(g["calls"] for g in rest)
    other_err = sum(g["error_rate"] * g["calls"] for g in rest) / other_calls
    cells = [c.strip() for c in rows[3].split("│")[1:-1]]
    assert cells[2] == f"${other_cost:,.2f}"
    assert cells[3] == f"{other_err * 100:.1f}%"
    shown = sum(g["cost_usd"] for g in groups[:3]) + other_cost
    assert shown == pytest.approx(doc["overall"]["cost_usd"])  # the rows add up to all
    bad = run_cli("report", traces, "--sort", "p98.5")
    assert bad.returncode == 2 and bad.stderr.startswith("llmobs: --sort: unknown metric 'p98.5'")


def test_wide_shows_every_column() -> None:
    traces = str(SAMPLE / "traces.parquet")
    res = run_cli("report", traces, "--wide", env={"COLUMNS": "80"})
    assert "not shown" not in res.stdout
    header = res.stdout
    for h in ("sampled", "$/session", "refusals", "cited", "ttft"):
        assert h in header


def test_planner_priorities_second_table_and_flex() -> None:
    cols = [
        Col("key", priority=0),
        Col("a", justify="right", priority=1),
        Col("b", justify="right", priority=3),
        Col("c", justify="right", priority=2),
        Col("text", priority=4, flex=True, min_width=5),
    ]
    rows = [["k1", "1,234", "55.5%", "$9.99", "a long piece of text here"]]
    # width of a boxed table = sum(widths) + 3 * columns + 1
    plan = plan_columns(cols, rows, 3 + 5 + 5 + 5 + 5 + 3 * 5 + 1)
    assert plan.tables == [[0, 1, 2, 3, 4]] and plan.widths[4] == 5
    plan = plan_columns(cols, rows, 3 + 5 + 5 + 3 * 3 + 1)
    assert plan.tables == [[0, 1, 3], [0, 2, 4]]  # b and text move to a second table
    plan = plan_columns(cols, rows, 3 + 5 + 5 + 3 * 3 + 1, second_table=False)
    assert plan.tables == [[0, 1, 3]] and plan.dropped == ["b", "text"]
    assert plan.note() == (
        "not shown at this width: b, text (--wide shows every column, --columns chooses)"
    )
    assert plan_columns(cols, rows, 20, only=["c"]).tables[0] == [0, 3]
    assert plan_columns(cols, rows, 10, wide=True).tables == [[0, 1, 2, 3, 4]]


def test_many_groups_show_25_and_an_other_row_by_default() -> None:
    traces = str(SAMPLE / "traces.parquet")
    res = run_cli(
        "report", traces, "--by", "trace_id", "--columns", "calls,cost", env={"COLUMNS": "100"}
    )
    rows = [ln for ln in res.stdout.splitlines() if ln.startswith("│")]
    names = [r.split("│")[1].strip() for r in rows]
    assert len(names) == 25 + 2 and names[-2:] == ["(other)", "all"]
    assert "Showing 25 of 2,400 groups: --top N to change" in " ".join(res.stdout.split())
    doc = json.loads(run_cli("report", traces, "--by", "trace_id", "-f", "json").stdout)
    assert len(doc["groups"]) == 2400  # JSON keeps every group


def test_eval_summarize_top_and_sort(evals: Path) -> None:
    doc = json.loads(run_cli("eval", "summarize", str(evals), "-f", "json").stdout)
    groups = sorted(doc["groups"], key=lambda g: g["score"])
    res = run_cli(
        "eval", "summarize", str(evals), "--top", "2", "--sort", "+score",
        env={"COLUMNS": "100"},
    )  # fmt: skip
    table = res.stdout.split("Overall")[0]
    rows = [[c.strip() for c in ln.split("│")[1:-1]] for ln in table.splitlines() if "│" in ln]
    rows = [r for r in rows if r[0] not in ("group", "")]
    assert [(r[0], r[1]) for r in rows[:2]] == [
        (g["key"]["route"], g["evaluator"]) for g in groups[:2]
    ]
    rest = groups[2:]
    assert rows[2][0] == f"(other: {len(rest)} groups)"
    assert int(rows[2][2]) == sum(g["judged"] for g in rest)
    bad = run_cli("eval", "summarize", str(evals), "--sort", "p99")
    assert (bad.returncode, bad.stderr) == (
        2,
        "llmobs: --sort: unknown column 'p99' (one of: score, judged, calls, n_eff)\n",
    )
