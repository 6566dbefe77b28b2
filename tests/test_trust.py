"""Trust (issue 13): nothing read is never green, every typed name is checked, interrupts
leave nothing half-written, and no user mistake is an internal error (exit 70).

One test per user mistake of the issue in this scope; each asserts the exit code and the
one line on stderr (the "before" of each is in changes/trust.md).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.cli.app import INTERRUPTED, main
from llmobs_cli.core.record import names
from llmobs_cli.core.record.windows import EmptyWindowError
from llmobs_cli.core.report.engine import run_report
from llmobs_cli.errors import UsageError

#: eval --dry-run without a judge key warns; a base URL keeps stderr to the error itself.
DRY = ("--dry-run", "--base-url", "http://127.0.0.1:9/v1")
SAMPLE = Path(__file__).parent.parent / "sample_traces" / "traces.jsonl"
SPAN = "spans 2026-10-12T00:25:15.173255Z .. 2026-11-22T21:36:31.658043Z (2,400 rows)"


def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0)
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def minimal(tmp_path: Path) -> Path:
    """A dump with only the required fields (no session ids), two routes, metadata."""
    path = tmp_path / "min.jsonl"
    rows = [
        {
            "trace_id": f"t{i}",
            "timestamp": f"2026-11-{1 + i % 20:02d}T10:00:00Z",
            "latency_ms": 100 + i,
            "model": "gpt-4o",
            "route": ("chat", "search")[i % 2],
            "metadata": {"tenant": "a"},
        }
        for i in range(50)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


# --- nothing read is exit 2 ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["report", "drift", "validate", "eval"])
def test_an_empty_file_is_exit_2_for_every_reading_command(tmp_path: Path, command: str) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    args = [command, str(empty), *([*DRY] if command == "eval" else [])]
    code, out, err = run(*args)
    assert code == 2 and out == "", (code, out)  # before: exit 0 (all zeros, "no drift", valid)
    assert str(empty) in one_line(err)


def test_validate_with_every_row_skipped_is_not_valid(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"trace_id": "x"}\nnot json\n')
    code, _, err = run("validate", str(bad), "--on-error", "skip")
    assert code == 2
    assert err.startswith(f"{bad}: ") and "Traceback" not in err


WINDOW = "no call in the window"


@pytest.mark.parametrize(
    ("args", "window"),
    [
        (["--since", "2030-01-01"], f"--since 2030-01-01: {WINDOW} [2030-01-01T00:00:00Z, (open))"),
        (["--until", "2020-01-01"], f"--until 2020-01-01: {WINDOW} [(open), 2020-01-01T00:00:00Z)"),
        (
            ["--since", "1h", "--now", "2030-01-01T00:00:00Z"],
            f"--since 1h: {WINDOW} [2029-12-31T23:00:00Z, (open))",
        ),
    ],
)
def test_report_window_without_rows_names_it_and_the_data_span(
    args: list[str], window: str
) -> None:
    code, out, err = run("report", str(SAMPLE), *args, "-f", "json")
    assert code == 2 and out == ""  # before: exit 0 with an all-zero table
    assert one_line(err) == f"llmobs: {window}; {SAMPLE} {SPAN}"


def test_run_report_raises_the_same_error_for_library_users() -> None:
    with pytest.raises(EmptyWindowError, match=r"\(2,400 rows\)"):
        run_report([SAMPLE], since="2030-01-01")


@pytest.mark.parametrize(
    "args",
    [
        ["--current", "2030-01-01..2030-02-01"],
        ["--baseline", "2020-01-01..2020-02-01"],
        ["--current", "2d", "--now", "2030-01-01T00:00:00Z"],
    ],
)
def test_drift_window_without_rows_is_exit_2_not_no_drift(args: list[str]) -> None:
    code, out, err = run("drift", str(SAMPLE), *args)
    assert code == 2 and out == ""  # before: exit 0, "no drift"
    line = one_line(err)
    assert line.startswith(f"llmobs: {args[0]} {args[1]}: no call in the window [")
    assert line.endswith(f"{SAMPLE} {SPAN}")


@pytest.mark.parametrize(
    "args",
    [
        ["--since", "2030-01-01"],
        ["--current", "2030-01-01..2030-02-01"],
        ["--baseline", "2020-01-01..2020-02-01"],
    ],
)
def test_eval_window_without_rows_is_exit_2(args: list[str]) -> None:
    code, out, err = run("eval", str(SAMPLE), *DRY, *args)
    assert code == 2 and out == ""  # before: exit 0 with an empty plan
    assert one_line(err).startswith(f"llmobs: {args[0]} {args[1]}: no call in the window [")
    assert err.strip().endswith(SPAN)


@pytest.mark.parametrize(
    "args", [["--since", "2030-01-01"], ["--current", "2030-01-01..2030-02-01"]]
)
def test_dashboard_window_without_rows_is_exit_2_and_writes_nothing(
    tmp_path: Path, args: list[str]
) -> None:
    out = tmp_path / "d.html"
    code, _, err = run("dashboard", str(SAMPLE), "-o", str(out), *args)
    assert code == 2 and not out.exists()  # before (--current): exit 0, "no drift"
    assert one_line(err).startswith(f"llmobs: {args[0]} {args[1]}: no call in the window [")


def test_dashboard_default_drift_windows_without_rows_leave_a_note(
    tmp_path: Path, minimal: Path
) -> None:
    # The drift section is optional: its default windows (last week vs the month before)
    # finding no baseline do not fail the dashboard; a note says why drift is missing.
    short = tmp_path / "short.jsonl"
    rows = [json.loads(r) for r in minimal.read_text().splitlines()]
    for i, r in enumerate(rows):  # five days: the default baseline before them is empty
        r["timestamp"] = f"2026-11-{15 + i % 5}T10:00:00Z"
    short.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "d.json"
    code, _, err = run("dashboard", str(short), "-o", str(out))
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["drift"] is None
    assert any(
        n.startswith("Drift not shown: --baseline last_month: no call") for n in doc["notes"]
    )


# --- every typed name is checked -----------------------------------------------------------


def test_fail_on_scope_typo_is_exit_2_with_a_suggestion() -> None:
    code, out, err = run("report", str(SAMPLE), "--fail-on", "route=chatt:latency_ms.p99 > 5s")
    assert code == 2 and out == ""  # before: exit 0, the gate could never fire
    assert one_line(err) == (
        "llmobs: --fail-on 'route=chatt:latency_ms.p99 > 5s': no call in "
        f"{SAMPLE} has route 'chatt' (did you mean 'chat'? route values there: chat, refunds, "
        "search_qa, summarize, support_agent)"
    )
    # The right name still gates, and a wildcard scope is not a name.
    assert run("report", str(SAMPLE), "--fail-on", "route=chat:latency_ms.p99 > 5")[0] == 1
    assert run("report", str(SAMPLE), "--fail-on", "route=*:calls < 0")[0] == 0


def test_config_alert_scope_typo_names_the_config(tmp_path: Path) -> None:
    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text("alerts:\n  - 'route=refund:error_rate > 0.5'\n")
    code, _, err = run("report", str(SAMPLE), "--config", str(cfg))
    assert code == 2
    assert one_line(err).startswith(
        f"llmobs: {cfg}: alerts[0] 'route=refund:error_rate > 0.5': no call in {SAMPLE} has "
        "route 'refund' (did you mean 'refunds'?"
    )
    code, _, err = run(
        "dashboard", str(SAMPLE), "--config", str(cfg), "-o", str(tmp_path / "d.html")
    )
    assert code == 2 and "did you mean 'refunds'?" in err


def test_fail_on_field_typo_suggests_the_field() -> None:
    code, _, err = run("report", str(SAMPLE), "--fail-on", "rout=chat:calls > 1")
    assert code == 2
    assert one_line(err).startswith("llmobs: --fail-on: unknown field 'rout' (did you mean 'route'")


def test_sample_rate_route_typo_is_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "s.parquet"
    for src in (SAMPLE, SAMPLE.with_suffix(".parquet")):
        code, _, err = run("sample", str(src), "-o", str(out), "--rate", "chatt=0.5")
        assert code == 2 and not out.exists()  # before: exit 0, everything kept
        assert one_line(err).startswith(
            f"llmobs: --rate: no call in {src} has route 'chatt' (did you mean 'chat'?"
        )
    code, _, _ = run("sample", str(SAMPLE), "-o", str(out), "--rate", "chat=0.5")
    assert code == 0 and out.exists()


@pytest.mark.parametrize("command", ["report", "drift", "eval"])
def test_by_metadata_key_typo_is_exit_2_with_the_keys_there(command: str) -> None:
    args = [command, str(SAMPLE), "--by", "metadata.topc"]
    code, out, err = run(*args, *([*DRY] if command == "eval" else []))
    assert code == 2 and out == ""  # before: exit 0 (one group of nulls)
    line = one_line(err)
    assert line.startswith(f"llmobs: --by: {SAMPLE} has no value for 'metadata.topc' in any row")
    assert "did you mean 'metadata.topic'" in line


def test_by_a_schema_field_the_dump_lacks_names_the_dump(minimal: Path) -> None:
    code, _, err = run("report", str(minimal), "--by", "session_id")
    assert code == 2  # before: exit 70, ColumnNotFoundError
    assert one_line(err) == (
        f"llmobs: --by: {minimal} has no value for 'session_id' in any row (fields with values "
        "there: trace_id, span_id, timestamp, latency_ms, route, model, status, sample_rate, "
        "metadata.tenant)"
    )


def test_by_session_id_on_a_dump_with_sessions_works() -> None:
    # before: exit 70 (the session column was dropped before grouping by it)
    code, out, err = run("report", str(SAMPLE), "--by", "session_id,route", "-f", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["by"] == ["session_id", "route"] and len(doc["groups"]) > 100
    assert sum(g["sampled"] for g in doc["groups"]) == doc["overall"]["sampled"]


def test_drift_feature_typos() -> None:
    code, _, err = run("drift", str(SAMPLE), "--features", "promt_length")
    assert code == 2 and "did you mean 'prompt_length'" in one_line(err)
    code, _, err = run("drift", str(SAMPLE), "--features", "metadata.typo")
    assert code == 2  # before: exit 0, the feature silently had no data
    assert one_line(err).startswith(
        f"llmobs: --features: {SAMPLE} has no value for 'metadata.typo'"
    )


def test_evaluator_typo_suggests() -> None:
    code, _, err = run("eval", str(SAMPLE), *DRY, "--evaluators", "relevnce")
    assert code == 2
    assert one_line(err).startswith(
        "llmobs: --evaluators/eval.evaluators: unknown evaluator 'relevnce' "
        "(did you mean 'relevance'"
    )


def test_config_key_typo_suggests(tmp_path: Path) -> None:
    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text("routes:\n  chat:\n    stake: high\n")
    code, _, err = run("report", str(SAMPLE), "--config", str(cfg))
    assert code == 2
    assert one_line(err) == (
        f"llmobs: {cfg}: routes.chat.stake: unknown key (did you mean 'stakes'? known: stakes, "
        "keep_rate, eval_budget, drop_text)"
    )


def test_names_helper() -> None:
    assert names.suggestions("chatt", ["chat", "refunds", "search_qa"]) == ["chat"]
    assert names.suggestions("CHAT", ["chat"]) == ["chat"]
    assert names.suggestions("zzz", ["chat"]) == []
    assert names.listing([str(i) for i in range(15)], 3) == "0, 1, 2, … (12 more)"
    assert names.listing([]) == "none"
    with pytest.raises(UsageError, match=r"^--x: unknown thing 'b' \(known: a\)$"):
        names.check_name("b", ["a"], "--x", "thing")
    frame = pl.DataFrame({"route": ["chat", None], "timestamp": [1, 2]})
    names.require_values(frame, [("route", "chat"), ("route", "null"), ("route", "*")], [], "--o")
    with pytest.raises(UsageError, match="no call in the input has route 'chap'"):
        names.require_values(frame, [("route", "chap")], [], "--o")


# --- no exit 70 ------------------------------------------------------------------------------


def test_otlp_document_of_the_wrong_shape_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "spans.json"
    path.write_text('{"resourceSpans": true}')
    code, _, err = run("validate", str(path))
    assert code == 2  # before: exit 70, TypeError
    assert one_line(err).startswith(f"{path}: cannot be read as otlp (")


def test_unreadable_parquet_in_sample_is_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"PAR1 not really")
    code, _, err = run("sample", str(path), "-o", str(tmp_path / "s.parquet"))
    assert code == 2  # before: exit 70, ComputeError
    assert str(path) in one_line(err)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report", "--since", "9999999d"], "--since: '9999999d' reaches back before the year 1"),
        (["report", "--until", "99999999999d"], "--until: '99999999999d': a duration longer"),
        (["drift", "--current", "9999999d"], "--current: '9999999d' reaches back before"),
        (["eval", *DRY, "--current", "9999999d"], "--current: '9999999d' reaches back"),
        (["dashboard", "-o", "x.html", "--since", "9999999d"], "--since: '9999999d' reaches"),
        (["eval", *DRY, "--baseline", "last_month", "--now", "0001-01-02T00:00:00Z"],
         "--current: 'last_week' reaches back before the year 1"),
    ],
)  # fmt: skip
def test_durations_beyond_the_calendar_are_exit_2(
    tmp_path: Path, args: list[str], message: str
) -> None:
    code, _, err = run(args[0], str(SAMPLE), *args[1:], cwd=tmp_path)
    assert code == 2  # before: exit 70, OverflowError
    assert one_line(err).startswith(f"llmobs: {message}")


def test_generate_period_beyond_year_9999_is_exit_2(tmp_path: Path) -> None:
    code, _, err = run(
        "generate", str(tmp_path / "g.jsonl"), "--rows", "1", "--start", "9999-12-31T00:00:00Z"
    )
    assert code == 2  # before: exit 70, OverflowError
    assert one_line(err) == "llmobs: --start/--days: the period would end after the year 9999"


# --- interrupts --------------------------------------------------------------------------------

#: Runs the CLI with a SIGTERM/SIGINT delivered to itself in the middle of the atomic write
#: of the output: just after the temporary file was fully written and fsynced, before it
#: is renamed into place (the worst moment for a half-written file).
_INTERRUPT = """
import os, signal, sys
from llmobs_cli.cli.app import main
real = os.fsync
def fsync(fd):
    real(fd)
    os.kill(os.getpid(), getattr(signal, os.environ["SIG"]))
os.fsync = fsync
main(sys.argv[1:])
"""


@pytest.mark.parametrize(
    ("command", "output", "sig"),
    [
        ("report", "out.json", "SIGTERM"),
        ("report", "out.parquet", "SIGINT"),
        ("drift", "out.html", "SIGTERM"),
        ("dashboard", "out.html", "SIGTERM"),
    ],
)
def test_interrupt_during_the_write_leaves_the_old_output_and_no_temporary_file(
    tmp_path: Path, command: str, output: str, sig: str
) -> None:
    target = tmp_path / output
    target.write_text("the previous run's output\n")
    proc = subprocess.run(
        [sys.executable, "-c", _INTERRUPT, command, str(SAMPLE), "-o", str(target)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SIG": sig},
    )
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip() == INTERRUPTED  # one line (before: nothing on stderr)
    assert target.read_text() == "the previous run's output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [output]


def test_sigterm_from_outside_exits_130_with_one_line(tmp_path: Path) -> None:
    # A real SIGTERM from another process (cron's timeout, CI cancelling a job) while
    # the command waits: same exit and line as Ctrl-C.
    script = (
        "import sys, time\n"
        "from llmobs_cli.cli import app\n"
        "from llmobs_cli.core.record import windows\n"
        "real = windows.require_rows\n"
        "def slow(*a, **k):\n"
        "    print('ready', flush=True); time.sleep(60)\n"
        "windows.require_rows = slow\n"
        "app.main(sys.argv[1:])\n"
    )
    target = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "drift", str(SAMPLE), "-o", str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == INTERRUPTED
    assert list(tmp_path.iterdir()) == []


def test_nan_and_infinite_numbers_are_bad_rows(tmp_path: Path) -> None:
    # before: NaN passed ">= 0" (NaN sorts above every number) and the report crashed
    # with exit 70 in the percentile sketch; now each is a bad row naming file:line.
    good = {"trace_id": "t", "timestamp": "2026-01-02T03:04:05Z", "model": "m"}
    path = tmp_path / "odd.jsonl"
    path.write_text(
        '{"trace_id": "t", "timestamp": "2026-01-02T03:04:05Z", "model": "m", "latency_ms": NaN}\n'
        + json.dumps({**good, "latency_ms": 1, "cost_usd": float("inf")})
        + "\n"
    )
    code, _, err = run("report", str(path))
    assert code == 2
    assert err.splitlines() == [
        f"{path}:1: latency_ms: must be a finite number, got NaN",
        f"{path}:2: cost_usd: must be a finite number, got inf",
    ]


def test_sample_of_a_wrong_shaped_export_is_exit_2(tmp_path: Path) -> None:
    # before: exit 70 (AttributeError in the OTLP reader, through sample's batch reader)
    path = tmp_path / "t.json"
    path.write_text('{"resourceSpans": [{"scopeSpans": [{"spans": [[], {"a": 1}]}]}]}')
    code, _, err = run("sample", str(path), "-o", str(tmp_path / "s.jsonl.gz"))
    assert code == 2 and one_line(err).startswith(f"{path}: cannot be read as otlp (")
    assert not (tmp_path / "s.jsonl.gz").exists()


def test_calls_top_larger_than_any_dump_lists_them_all() -> None:
    # before: exit 70 (OverflowError: Polars' top_k takes a 32-bit count)
    code, out, err = run("calls", str(SAMPLE), "--top", "99999999999", "-f", "json")
    assert code == 0, err
    assert len(json.loads(out)["calls"]) == 2400


def test_drift_slices_name_checked_against_the_dump() -> None:
    code, _, err = run("drift", str(SAMPLE), "--slices", "metadata.topc")
    assert code == 2  # before: exit 1, slicing by a key no row has
    assert one_line(err).startswith(f"llmobs: --slices: {SAMPLE} has no value for 'metadata.topc'")
    assert "did you mean 'metadata.topic'" in err
