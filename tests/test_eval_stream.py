"""``llmobs eval`` on files runs in two streaming passes (counts, then the selected rows
only) and gives exactly what the whole-frame path gives: the same plan, the same selected
rows in the same order, the same judgments and the same errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from json_diff import json_diffs
from llmobs_cli.core.eval.counts import ALL, CountSpec, EvalMerger, stratum_partials
from llmobs_cli.core.eval.judges.client import ClientSettings
from llmobs_cli.core.eval.options import EvalOptions
from llmobs_cli.core.eval.plan import keyed, stratum_totals
from llmobs_cli.core.eval.run import _run_loaded, run_eval
from llmobs_cli.core.synth.generate import generate
from llmobs_cli.errors import InputError, UsageError
from test_eval_support import marker_judge

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_traces"
#: A budget this small makes 16,384-row batches (the reader's minimum): several per file.
SMALL = 520 << 20

CASES: list[dict[str, Any]] = [
    {},
    {"by": ["route", "model"], "budget": 30},
    {"allocation": "neyman", "budget": 50},
    {"current": "last_week", "baseline": "last_month", "budget": 20},
    {"since": "3d", "budget": 20},
    {"current": "2d", "baseline": "5d", "since": "10d", "until": "1d", "budget": 15},
    {"by": ["release"], "high_stakes": {"refunds"}, "route_budgets": {"chat": 7}},
]


@pytest.fixture(scope="module")
def dump(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated dump large enough for several batches at :data:`SMALL`."""
    path = tmp_path_factory.mktemp("evalstream") / "g.parquet"
    generate(60_000, seed=3, days=20).write_parquet(path, row_group_size=20_000)
    return path


def _same_plans(a: Any, b: Any) -> None:
    assert a.summary.windows == b.summary.windows
    assert a.summary.plan == b.summary.plan  # every stratum figure, calls included
    assert len(a.plans) == len(b.plans)
    for p, q in zip(a.plans, b.plans, strict=True):
        assert p.window == q.window
        assert p.selection.columns == q.selection.columns
        assert p.selection.equals(q.selection), p.window  # same rows, same order
        assert p.selection.height > 0


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(c) or "default")
@pytest.mark.parametrize("name", ["traces.parquet", "traces.jsonl"])
def test_dry_run_equals_whole_frame_on_the_sample(name: str, case: dict[str, Any]) -> None:
    paths = [SAMPLE / name]
    whole = _run_loaded(paths, EvalOptions(dry_run=True, **case))
    streamed = run_eval(paths, EvalOptions(dry_run=True, **case))
    _same_plans(whole, streamed)


@pytest.mark.parametrize("case", CASES, ids=lambda c: ",".join(c) or "default")
def test_dry_run_equals_whole_frame_across_batches(dump: Path, case: dict[str, Any]) -> None:
    whole = _run_loaded([dump], EvalOptions(dry_run=True, **case))
    streamed = run_eval([dump], EvalOptions(dry_run=True, **case), memory=SMALL)
    _same_plans(whole, streamed)


def test_partials_merge_to_the_whole_frame_totals(dump: Path) -> None:
    """Merged per-batch partials give the frame ``stratum_totals`` computes at once, in
    any batch order."""
    from llmobs_cli.core.eval.counts import window_counts

    frame = pl.read_parquet(dump)
    spec = CountSpec(by=("route", "model"), windows=((ALL, None, None), ("current", None, None)))
    rows, kcols = keyed(frame, spec.by)
    expected = stratum_totals(rows, kcols)
    merger = EvalMerger(spec)
    for i in reversed(range(0, frame.height, 7_000)):
        merger.add(stratum_partials(frame.slice(i, 7_000), spec))
    merged = merger.result()
    got = window_counts(merged, "current", spec).totals
    assert window_counts(merged, ALL, spec).rows == frame.height
    assert got.columns == expected.columns
    assert got.drop("calls", "elig_calls").equals(expected.drop("calls", "elig_calls"))
    for c in ("calls", "elig_calls"):
        assert got[c].to_list() == pytest.approx(expected[c].to_list(), rel=1e-12)
    # the distinct traces against an independent count
    ok = frame.filter(
        (pl.col("status").fill_null("ok") == "ok")
        & (pl.col("response").fill_null("").str.len_chars() > 0)
    )
    assert (
        int(got["traces"].sum())
        == ok.select(
            pl.struct(pl.col("route").fill_null("default"), "model", "trace_id").n_unique()
        ).item()
    )


def test_judgments_equal_whole_frame_through_the_stub(openai_stub, tmp_path: Path) -> None:
    openai_stub.responder = marker_judge

    def opts() -> EvalOptions:
        return EvalOptions(
            budget=12,
            evaluators=["relevance"],
            current="last_week",
            baseline="last_month",
            client=ClientSettings(
                base_url=openai_stub.base_url, api_key="sk-x", backoff_base_s=0.001
            ),
        )

    paths = [SAMPLE / "traces.parquet"]
    whole = _run_loaded(paths, opts(), cache_dir=tmp_path / "a")
    calls = openai_stub.calls
    assert whole.frame.height > 0 and whole.summary.judge.failed == 0
    streamed = run_eval(paths, opts(), cache_dir=tmp_path / "b")
    assert openai_stub.calls == 2 * calls  # a fresh cache: judged again, same requests
    drop = ["cached", "judge_latency_ms"]
    assert streamed.frame.drop(drop).equals(whole.frame.drop(drop))
    assert streamed.summary.groups == whole.summary.groups
    assert streamed.summary.regressions == whole.summary.regressions


def error_of(fn: Any) -> str:
    """The message of the input or usage error ``fn`` raises (it must raise one)."""
    try:
        fn()
    except (InputError, UsageError) as exc:
        return str(exc)
    raise AssertionError("no error")


#: Selections that are errors (a window with no row, an unknown --by field), the same on
#: every path.
ERROR_CASES = [
    {"since": "2031-01-01"},
    {"current": "2031-01-01..2031-02-01"},
    {"current": "last_week", "baseline": "2020-01-01..2020-02-01"},
    {"by": ["metadata.nope"]},
    {"until": "2020-01-01"},
]


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_are_the_whole_frame_errors(case: dict[str, Any]) -> None:
    paths = [SAMPLE / "traces.parquet"]
    whole = error_of(lambda: _run_loaded(paths, EvalOptions(dry_run=True, **case)))
    streamed = error_of(lambda: run_eval(paths, EvalOptions(dry_run=True, **case)))
    if "fields with values there" in whole:
        # The streaming path lists every field the dump fills (as report does), not only
        # the columns eval happened to load; the rest of the message is the same.
        head = whole.split("fields with values there")[0]
        assert streamed.startswith(head) and "metadata" in streamed
    else:
        assert streamed == whole


def test_plan_streams_to_the_whole_frame_figures(dump: Path) -> None:
    """``llmobs plan`` over batches gives the whole frame's plan, and its traffic matches
    an independent computation on the rows."""
    from llmobs_cli.core.eval.rates import PlanOptions, plan_from_paths, plan_rates, traffic_of

    frame = pl.read_parquet(dump)
    traffic, facts = traffic_of(frame)
    facts |= {"weekday_varies": [t.route for t in traffic if t.weekday_varies], "evals": None}
    whole = plan_rates(traffic, PlanOptions(), {}, facts)
    streamed, read = plan_from_paths([dump], PlanOptions(), memory=SMALL)
    assert read.sources == [str(dump)]
    assert json_diffs(whole.as_dict(), streamed.as_dict()) == []
    # independent: Horvitz–Thompson calls and traces per day of the judgeable calls
    w = 1.0 / frame["sample_rate"].to_numpy()
    ok = (frame["status"].fill_null("ok") == "ok") & (
        frame["response"].fill_null("").str.len_chars() > 0
    )
    days = (frame["timestamp"].max() - frame["timestamp"].min()).total_seconds() / 86400
    routes = frame["route"].fill_null("default").to_numpy()
    okn = ok.to_numpy()
    by = {t.route: t for t in traffic}
    for route, t in by.items():
        sel = okn & (routes == route)
        assert t.calls_per_day == pytest.approx(w[sel].sum() / days, rel=1e-9)
        per_trace: dict[str, float] = {}
        for tid, wi in zip(frame["trace_id"].to_numpy()[sel], w[sel], strict=True):
            per_trace[tid] = max(per_trace.get(tid, 0.0), wi)
        assert t.traces_per_day == pytest.approx(sum(per_trace.values()) / days, rel=1e-9)


@pytest.mark.parametrize("case", [{"since": "2031-01-01"}, {"until": "2020-01-01"}])
def test_plan_errors_name_the_window_and_the_file(case: dict[str, Any]) -> None:
    from llmobs_cli.core.eval.rates import PlanOptions, plan_from_paths
    from llmobs_cli.core.record.windows import EmptyWindowError

    path = SAMPLE / "traces.parquet"
    with pytest.raises(EmptyWindowError) as err:
        plan_from_paths([path], PlanOptions(), **case)
    assert str(path) in str(err.value) and "2,400 rows" in str(err.value)


@pytest.mark.parametrize("on_error", ["fail", "skip"])
def test_bad_rows_follow_on_error_as_before(tmp_path: Path, on_error: str) -> None:
    """A row breaking the record contract: the same one-line error (fail), or the same
    plan and skipped count (skip), as the whole-frame path."""
    import json

    lines = (SAMPLE / "traces.jsonl").read_text().splitlines()
    bad = json.loads(lines[7])
    bad["sample_rate"] = 7.5  # a rate above 1 breaks the contract
    lines[7] = json.dumps(bad)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    opts = {"current": "last_week", "baseline": "last_month", "budget": 30}
    if on_error == "fail":
        whole = error_of(lambda: _run_loaded([path], EvalOptions(dry_run=True, **opts)))
        streamed = error_of(lambda: run_eval([path], EvalOptions(dry_run=True, **opts)))
        assert streamed == whole and "bad.jsonl:8" in streamed and "sample_rate" in streamed
        return
    a = _run_loaded([path], EvalOptions(dry_run=True, **opts), on_error="skip")
    b = run_eval([path], EvalOptions(dry_run=True, **opts), on_error="skip")
    assert a.skipped == b.skipped == 1 and a.skipped_reasons == b.skipped_reasons
    _same_plans(a, b)


def test_origin_metadata_is_kept_as_the_whole_frame_keeps_it() -> None:
    """With ``keep_origin`` (what the CLI asks) both paths read ``metadata`` for the
    judgments' ``origin`` column, and select the same rows with the same columns."""
    from llmobs_cli.core.ingest.readers import ReadOptions

    paths = [SAMPLE / "traces.parquet"]
    read = ReadOptions(keep_origin=True)
    whole = _run_loaded(paths, EvalOptions(dry_run=True, budget=20), read_options=read)
    streamed = run_eval(paths, EvalOptions(dry_run=True, budget=20), read_options=read)
    assert "metadata" in streamed.plans[0].selection.columns
    _same_plans(whole, streamed)
