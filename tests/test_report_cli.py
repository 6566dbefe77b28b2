"""``llmobs report`` end to end (in process through the real entry point): formats,
outputs, windows, exit codes and the exact error lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.cli.app import main
from llmobs_cli.core.ingest.convert import output_format, write_frame
from test_report import canonical

T0 = datetime(2026, 3, 2, tzinfo=UTC)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    n = 40
    df = canonical(
        {
            "timestamp": [T0 + timedelta(hours=6 * i) for i in range(n)],
            "route": ["chat" if i % 2 else "refunds" for i in range(n)],
            "model": ["gpt-4o-mini" if i % 4 else "house-model" for i in range(n)],
            "latency_ms": [100.0 + 10 * i for i in range(n)],
            "ttft_ms": [20.0 + i for i in range(n)],
            "input_tokens": [1000] * n,
            "cached_tokens": [250] * n,
            "output_tokens": [100] * n,
            "status": ["error" if i % 10 == 0 else "ok" for i in range(n)],
            "response": ["I cannot help with that." if i % 7 == 0 else "Done." for i in range(n)],
            "sample_rate": [0.1 if i % 2 else 1.0 for i in range(n)],
            "metadata": [
                '{"tier": "gold"}' if i % 3 == 0 else '{"tier": "free"}' for i in range(n)
            ],
        }
    )
    p = tmp_path / "traces.parquet"
    write_frame(df, p, output_format(p))
    return p


def test_json_is_one_document_with_contract_keys(
    dump: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["report", str(dump), "-f", "json"], capsys)
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"window", "overall", "groups", "buckets", "alerts"}
    assert doc["overall"]["sampled"] == 40
    assert doc["overall"]["calls"] == pytest.approx(20 * 10 + 20)
    assert {g["key"]["route"] for g in doc["groups"]} == {"chat", "refunds"}
    # house-model is not in the shipped table: counted and listed on stderr, loudly.
    assert (
        doc["overall"]["unpriced_calls"] > 0 and doc["unpriced_models"][0]["model"] == "house-model"
    )
    assert "warning:" in err and "house-model" in err and "--prices" in err


def test_table_shows_sampled_and_estimated(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["report", str(dump), "--by", "route,model"], capsys)
    assert code == 0
    assert "sampled" in out and "(est.)" in out and "refunds" in out and "all" in out
    assert "gpt-4o-mini" in out and "per call" not in out


def test_markdown_and_csv(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["report", str(dump), "-f", "markdown", "--bucket", "day"], capsys)
    assert code == 0 and out.startswith("### llmobs report by route") and "#### per day" in out
    code, out, _ = run(["report", str(dump), "-f", "csv", "--by", "metadata.tier"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("level,bucket_start,bucket_end,metadata.tier,sampled,calls")
    assert {line.split(",")[0] for line in lines[1:]} == {"overall", "group"}


def test_outputs_parquet_json_and_html_hook(
    dump: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pq = tmp_path / "r.parquet"
    code, _, _ = run(["report", str(dump), "--bucket", "day", "-o", str(pq), "-f", "json"], capsys)
    assert code == 0
    frame = pl.read_parquet(pq)
    assert set(frame["level"]) == {"overall", "group", "bucket", "bucket_group"}
    js = tmp_path / "r.json"
    code, out, _ = run(["report", str(dump), "-o", str(js), "-f", "json"], capsys)
    assert json.loads(js.read_text()) == json.loads(out)
    html = tmp_path / "r.html"
    code, _, err = run(["report", str(dump), "-o", str(html)], capsys)
    try:
        from llmobs_cli.render.html import report_html  # noqa: F401
    except ImportError:
        assert code == 2 and "html output needs" in err
    else:
        assert code == 0 and html.read_text().lstrip().lower().startswith("<!doctype html")


def test_fail_on_breached_exits_1_with_rule_value_threshold(
    dump: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        [
            "report",
            str(dump),
            "-f",
            "json",
            "--fail-on",
            "route=chat:latency_ms.p99 > 200",
            "--fail-on",
            "error_rate > 0.5",
        ],
        capsys,
    )
    assert code == 1
    (alert,) = json.loads(out)["alerts"]
    assert alert["rule"] == "route=chat:latency_ms.p99 > 200" and alert["threshold"] == 200
    line = next(ln for ln in err.splitlines() if ln.startswith("ALERT"))
    assert (
        line == "ALERT route=chat:latency_ms.p99 > 200: route=chat latency_ms.p99 = "
        f"{alert['value']:g} > 200"
    )


def test_fail_on_held_exits_0(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        ["report", str(dump), "-f", "json", "--fail-on", "latency_ms.p99 > 100000"], capsys
    )
    assert code == 0 and json.loads(out)["alerts"] == [] and "ALERT" not in err


def test_unpriced_gate_and_prices_override(
    dump: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run(["report", str(dump), "-f", "json", "--fail-on", "unpriced_calls > 0"], capsys)
    assert code == 1
    prices = tmp_path / "prices.yaml"
    prices.write_text("models:\n  - {model: house-model, input: 1.0, output: 2.0}\n")
    code, out, err = run(
        [
            "report",
            str(dump),
            "-f",
            "json",
            "--prices",
            str(prices),
            "--fail-on",
            "unpriced_calls > 0",
        ],
        capsys,
    )
    assert (
        code == 0 and json.loads(out)["overall"]["cost_complete"] is True and "warning" not in err
    )


def test_config_alerts_and_refusals(
    dump: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text(
        "report: {by: [model]}\n"
        "refusals: {patterns: ['^done']}\n"
        "alerts:\n  - {rule: 'refusal_rate > 0.5', name: too-many-refusals}\n"
    )
    code, out, err = run(["report", str(dump), "-f", "json", "--config", str(cfg)], capsys)
    doc = json.loads(out)
    assert code == 1 and doc["by"] == ["model"]
    assert doc["alerts"][0]["name"] == "too-many-refusals"
    assert "ALERT [too-many-refusals] refusal_rate > 0.5" in err


def test_since_until_now_window(dump: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["report", str(dump), "-f", "json", "--since", "2026-03-05", "--until", "2026-03-07"],
        capsys,
    )
    doc = json.loads(out)
    assert code == 0 and doc["overall"]["sampled"] == 8  # 4 per day, 6-hourly
    assert doc["window"] == {
        "start": "2026-03-05T00:00:00+00:00",
        "end": "2026-03-07T00:00:00+00:00",
    }
    # Durations count back from the latest timestamp (or --now).
    # [latest − 24 h, ...): the rows at −24, −18, −12, −6 and 0 hours.
    code, out, _ = run(["report", str(dump), "-f", "json", "--since", "1d"], capsys)
    assert json.loads(out)["overall"]["sampled"] == 5
    code, out, _ = run(
        [
            "report",
            str(dump),
            "-f",
            "json",
            "--since",
            "2d",
            "--until",
            "0d",
            "--now",
            "2026-03-05T00:00:00Z",
        ],
        capsys,
    )
    doc = json.loads(out)
    assert doc["overall"]["sampled"] == 8
    assert doc["window"] == {
        "start": "2026-03-03T00:00:00+00:00",
        "end": "2026-03-05T00:00:00+00:00",
    }


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["--fail-on", "latency_ms.p99 >> 3"],
            "llmobs: --fail-on: cannot parse 'latency_ms.p99 >> 3'",
        ),
        (["--fail-on", "speed > 3"], "llmobs: --fail-on: unknown metric 'speed' in 'speed > 3'"),
        (["--by", "colour"], "llmobs: --by: unknown field 'colour'"),
        # A field the report also totals was an internal error (a duplicate column).
        (["--by", "route,output_tokens"], "llmobs: --by: 'output_tokens' is a figure the"),
        (["--by", "cost_usd"], "llmobs: --by: 'cost_usd' is a figure the report totals"),
        (
            ["--fail-on", "input_tokens=*:latency_ms.p99 > 5000"],
            "llmobs: --fail-on: 'input_tokens' is a figure the report totals",
        ),
        (["-o", "x.xlsx"], "llmobs: --output: unknown extension of 'x.xlsx'"),
        (
            ["--since", "yesterday"],
            "llmobs: --since: not an RFC 3339 time or a duration like 7d/24h ('yesterday')",
        ),
        (["--prices", "nope.yaml"], "llmobs: nope.yaml: price file not found"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    dump: Path, args: list[str], line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["report", str(dump), *args], capsys)
    assert code == 2 and out == ""
    assert err.splitlines()[0].startswith(line)
    assert "Traceback" not in err


def test_bad_input_exits_2_naming_file_line_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text(
        '{"trace_id": "a", "timestamp": "2026-03-02T00:00:00Z", "model": "m", "latency_ms": 5}\n'
        '{"trace_id": "b", "timestamp": "2026-03-02T00:00:00Z", "model": "m", "latency_ms": -5}\n'
    )
    code, _, err = run(["report", str(p)], capsys)
    assert code == 2 and err.splitlines()[0] == f"{p}:2: latency_ms: must be >= 0, got -5.0"
    code, out, err = run(["report", str(p), "--on-error", "skip", "-f", "json"], capsys)
    assert code == 0 and json.loads(out)["overall"]["sampled"] == 1 and "skipped 1 bad row" in err
