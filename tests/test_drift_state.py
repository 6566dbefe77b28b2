"""``llmobs drift --state DIR``: a run over a growing lake reads only what is new, and its
figures equal one run over everything; the folder is llmobs' own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.core.drift import run_drift
from llmobs_cli.core.synth.generate import DriftSpec, generate
from llmobs_cli.errors import UsageError
from test_eval_support import run_cli

START = datetime(2026, 1, 1, tzinfo=UTC)
CUT = START + timedelta(days=30)
NOW = "2026-02-07T23:59:59.999999+00:00"  # with --state, windows are whole days
FEATS = ["response_length", "latency_ms", "finish_reason", "refusal_rate"]
#: The text sample kept across runs too (language detection is the slow part).
TEXT = [*FEATS, "language"]


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pl.DataFrame]:
    spec = DriftSpec(after=CUT, language={"en": 0.6, "es": 0.25, "de": 0.1, "fr": 0.05})
    frame = generate(8_000, seed=1, start=START, days=37, drift=spec)
    tmp = tmp_path_factory.mktemp("lake")
    cut = START + timedelta(days=34)
    first, second = tmp / "part1.parquet", tmp / "part2.parquet"
    frame.filter(pl.col("timestamp") < cut).write_parquet(first)
    frame.filter(pl.col("timestamp") >= cut).write_parquet(second)
    return first, second, frame


def _figures(res: object) -> dict[tuple[str, str], tuple]:
    return {
        (r["feature"], str(r["group"])): (r["statistic"], r["p_value"], r["calls_current"])
        for r in res.features  # type: ignore[attr-defined]
    }


def _same(a: object, b: object) -> None:
    fa, fb = _figures(a), _figures(b)
    assert fa.keys() == fb.keys()
    for k, va in fa.items():
        for x, y in zip(va, fb[k], strict=True):
            assert (x is None and y is None) or x == pytest.approx(y, rel=1e-9), k


def test_a_second_run_reads_only_the_new_file_and_equals_one_run(
    days: tuple[Path, Path, pl.DataFrame], tmp_path: Path
) -> None:
    first, second, frame = days
    state = tmp_path / "state"
    said: list[str] = []
    run_drift([first], now=NOW, features=FEATS, state=state, progress=said.append)
    assert any("1 file(s) to read, 0 unchanged" in m for m in said)
    said.clear()
    inc = run_drift([first, second], now=NOW, features=FEATS, state=state, progress=said.append)
    assert any("1 file(s) to read, 1 unchanged" in m for m in said)
    whole = run_drift(frame, now=NOW, features=FEATS)
    _same(inc, whole)
    assert inc.current.sampled == whole.current.sampled
    assert inc.baseline.calls == pytest.approx(whole.baseline.calls, rel=1e-12)
    # A third run with nothing new reads nothing and says the same.
    said.clear()
    again = run_drift([first, second], now=NOW, features=FEATS, state=state, progress=said.append)
    assert any("0 file(s) to read, 2 unchanged" in m for m in said)
    _same(again, whole)


def test_partials_path_from_state_equals_one_run_over_the_files(
    days: tuple[Path, Path, pl.DataFrame], tmp_path: Path
) -> None:
    # Past the sample's cap the state keeps every cluster below its hash threshold; the
    # windows' bottom-k of those is the bottom-k of all rows.
    first, second, _ = days
    state = tmp_path / "state"
    run_drift([first], now=NOW, features=TEXT, state=state, sample_rows=2_000)
    inc = run_drift([first, second], now=NOW, features=TEXT, state=state, sample_rows=2_000)
    one = run_drift([first, second], now=NOW, features=TEXT, sample_rows=2_000)
    assert any("merged partials" in n for n in inc.notes)
    _same(inc, one)


def test_a_grown_file_is_read_after_the_watermark(
    days: tuple[Path, Path, pl.DataFrame], tmp_path: Path
) -> None:
    first, second, frame = days
    lake = tmp_path / "lake.parquet"
    pl.read_parquet(first).write_parquet(lake)
    state = tmp_path / "state"
    run_drift([lake], now=NOW, features=FEATS, state=state)
    pl.concat([pl.read_parquet(first), pl.read_parquet(second)]).write_parquet(lake)
    inc = run_drift([lake], now=NOW, features=FEATS, state=state)
    _same(inc, run_drift(frame, now=NOW, features=FEATS))


def test_foreign_folder_other_settings_and_part_day_windows(
    days: tuple[Path, Path, pl.DataFrame], tmp_path: Path
) -> None:
    first, _, _ = days
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="did not write"):
        run_drift([first], now=NOW, features=FEATS, state=foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    state = tmp_path / "state"
    run_drift([first], now=NOW, features=FEATS, state=state)
    other = run_drift([first], now=NOW, features=["latency_ms"], state=state)
    assert any("rebuilt from every row" in n for n in other.notes)
    (state / "sample.parquet").write_bytes(b"not parquet")
    with pytest.raises(UsageError, match=r"sample\.parquet is unreadable"):
        run_drift([first], now=NOW, features=["latency_ms"], state=state)
    with pytest.raises(UsageError, match="whole UTC days"):
        run_drift([first], now=NOW, current="36h", features=FEATS, state=state)


def test_cli_state_flag_and_json(days: tuple[Path, Path, pl.DataFrame], tmp_path: Path) -> None:
    first, second, _ = days
    state = tmp_path / "st"
    args = ["drift", "--now", NOW, "--features", "latency_ms,finish_reason", "-f", "json"]
    r1 = run_cli(*args, str(first), "--state", str(state))
    assert r1.returncode in (0, 1), r1.stderr
    manifest = json.loads((state / "llmobs-drift-state.json").read_text())
    assert manifest["tool"] == "llmobs" and len(manifest["files"]) == 1
    r2 = run_cli(*args, str(first), str(second), "--state", str(state))
    assert r2.returncode in (0, 1), r2.stderr
    assert len(json.loads((state / "llmobs-drift-state.json").read_text())["files"]) == 2
    assert json.loads(r2.stdout)["current"]["sampled"] > 0
