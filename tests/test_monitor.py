"""Anytime-valid monitoring, checked by simulation through the same code the commands use:
60 nightly looks on a steady stream alarm in at most α of the streams (naive nightly
testing in ~45 %), and a step change is detected within a few nights."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from llmobs_cli.core.monitor import run
from llmobs_cli.core.monitor.eprocess import mixture_evalue
from llmobs_cli.core.monitor.quantities import (
    Quantity,
    above,
    reference,
    reference_z,
    weighted_mean,
    weighted_median,
)

ALPHA = 0.01
STREAMS = 200
NIGHTS = 60


def _calls(rng: np.random.Generator, n: int, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """Answer lengths of two routes stored at different rates (weights 1 and 10)."""
    route = rng.random(n) < 0.5
    w = np.where(route, 1.0, 10.0)
    length = rng.lognormal(np.where(route, 5.0, 6.0), 0.6) * scale
    return length, w


def _stream(rng: np.random.Generator, step_night: int | None, scale: float) -> tuple:
    base_len, base_w = _calls(rng, 6000)
    med = weighted_median(base_len, base_w)
    est = weighted_mean(above(base_len, med), base_w)
    z = reference_z(ALPHA, 1)
    lo, hi = reference(est, z, floor=0.02)
    q = Quantity(
        "response_length",
        "response_length",
        "above_median",
        ("down", "up"),
        est.x,
        lo,
        hi,
        {"median": med},
    )
    state = run.start("drift", ALPHA, {}, [q])
    fired = None
    naive = False
    for night in range(NIGHTS):
        s = scale if step_night is not None and night >= step_night else 1.0
        cur_len, cur_w = _calls(rng, 2000, s)
        e = weighted_mean(above(cur_len, med), cur_w)
        res = run.fold(state, f"n{night:03d}", {"response_length": e})
        if res.new_alarms and fired is None:
            fired = night
        # naive: a fresh two-sided test against the baseline every night at α
        zz = (e.x - est.x) / math.sqrt(e.se**2 + est.se**2)
        naive = naive or 2 * (1 - NormalDist().cdf(abs(zz))) < ALPHA
    return fired, naive


def test_steady_streams_stay_quiet_over_60_nights_unlike_naive_testing() -> None:
    rng = np.random.default_rng(7)
    alarms = naive = 0
    for _ in range(STREAMS):
        fired, nv = _stream(rng, None, 1.0)
        alarms += fired is not None
        naive += nv
    print(
        f"\n{STREAMS} steady streams x {NIGHTS} nights: monitor alarmed in "
        f"{alarms / STREAMS:.1%} (alpha {ALPHA:.0%}); naive nightly testing in "
        f"{naive / STREAMS:.1%}"
    )
    assert alarms / STREAMS <= ALPHA + 0.01
    assert naive / STREAMS > 0.25


def test_a_step_change_is_detected_within_a_few_nights() -> None:
    rng = np.random.default_rng(8)
    delays = []
    for _ in range(100):
        fired, _ = _stream(rng, step_night=10, scale=1.25)  # answers 25 % longer
        assert fired is not None and fired >= 10
        delays.append(fired - 10)
    print(
        f"\nstep change (+25 % length) at night 10: median delay {np.median(delays):.0f} "
        f"night(s), 90th percentile {np.percentile(delays, 90):.0f}"
    )
    assert np.median(delays) <= 3


def test_quality_monitor_one_sided_with_effect_floor() -> None:
    rng = np.random.default_rng(9)

    def stream(drop: float) -> int | None:
        base = (rng.random(2000) < 0.8).astype(float)
        est = weighted_mean(base, np.ones(2000))
        lo, hi = reference(est, reference_z(ALPHA, 1), floor=0.05)
        q = Quantity("chat/relevance", "chat relevance", "quality", ("down",), est.x, lo, hi)
        state = run.start("eval", ALPHA, {}, [q])
        for night in range(NIGHTS):
            p = 0.8 - (drop if night >= 5 else 0.0)
            y = (rng.random(150) < p).astype(float)
            res = run.fold(state, f"{night:03d}", {q.qid: weighted_mean(y, np.ones(150))})
            if res.new_alarms:
                return night
        return None

    quiet = sum(stream(0.0) is not None for _ in range(STREAMS))
    small = sum(stream(0.03) is not None for _ in range(50))  # below the 0.05 floor
    delays = [stream(0.15) for _ in range(50)]
    print(
        f"\nquality: steady alarms {quiet}/{STREAMS}; drop below floor {small}/50; "
        f"-0.15 drop median delay {np.median([d - 5 for d in delays if d is not None])}"
    )
    assert quiet / STREAMS <= ALPHA + 0.01
    assert small <= 2
    assert all(d is not None for d in delays)


def test_evalue_closed_form_matches_numerical_mixture() -> None:
    from scipy import integrate

    for s, n in ((0.0, 1), (3.0, 4), (-2.0, 9), (12.0, 30)):

        def f(lam: float, s: float = s, n: int = n) -> float:
            return (
                math.exp(lam * s - n * lam * lam / 2)
                * 2
                * math.exp(-lam * lam / 2)
                / math.sqrt(2 * math.pi)
            )

        num, _ = integrate.quad(f, 0, np.inf)
        assert mixture_evalue(s, n) == pytest.approx(num, rel=1e-6)


def test_rerunning_a_night_replaces_it_and_reports_the_alarm_again() -> None:
    q = Quantity("q", "q", "quality", ("down",), 0.8, 0.75, 1.0)
    state = run.start("eval", ALPHA, {}, [q])
    from llmobs_cli.core.monitor.quantities import Estimate

    bad = Estimate(0.5, 0.02, 500.0)
    res = run.fold(state, "2026-01-01", {"q": bad})
    assert [s.qid for s in res.new_alarms] == ["q"]
    res = run.fold(state, "2026-01-02", {"q": bad})
    assert res.nights == 2 and not res.new_alarms and res.standing
    again = run.fold(state, "2026-01-01", {"q": bad})  # rerun of the night it fired
    assert again.nights == 2 and [s.qid for s in again.new_alarms] == ["q"]
    later = run.fold(state, "2026-01-03", {"q": bad})
    assert not later.new_alarms and [s.qid for s in later.standing] == ["q"]


# --- the commands: nightly runs with --monitor ---------------------------------------------


def test_drift_monitor_nightly_quiet_then_alarms_once_on_a_step(tmp_path) -> None:
    import json

    from test_eval_support import run_cli

    data = tmp_path / "g.parquet"
    r = run_cli(
        "generate",
        str(data),
        "--rows",
        "60000",
        "--days",
        "50",
        "--start",
        "2026-01-01",
        "--drift-after",
        "2026-02-10",
        "--drift-kinds",
        "length",
        "--drift-length",
        "1.3",
        "--seed",
        "3",
    )
    assert r.returncode == 0, r.stderr
    from http_receiver import Receiver

    state = tmp_path / "state"
    fired = []
    hook = Receiver().__enter__()
    for day in range(1, 14):
        r = run_cli(
            "drift",
            str(data),
            "--monitor",
            str(state),
            "--current",
            "last_day",
            "--baseline",
            "2026-01-01..2026-01-31",
            "--now",
            f"2026-02-{day:02d}T00:00:00Z",
            "--features",
            "response_length,prompt_length,output_tokens,refusal_rate",
            "--format",
            "json",
            "--notify",
            hook.url,
            "--notify-format",
            "json",
        )
        assert r.returncode in (0, 1), r.stderr
        mon = json.loads(r.stdout)["monitor"]
        assert mon["nights"] == day
        if r.returncode == 1:
            assert mon["new_alarms"]
            fired.append((day, mon["new_alarms"]))
        else:
            assert not mon["new_alarms"]
    # quiet for the nine steady nights (current window = the day before --now) ...
    assert all(day >= 11 for day, _ in fired)
    # ... and the longer answers alarm on the first drifted night, reported once
    assert fired and fired[0] == (11, ["response_length>median"])
    names = [n for _, ns in fired for n in ns]
    assert len(names) == len(set(names))
    # one webhook message per night an alarm fired, none on quiet or standing nights
    hook.__exit__(None, None, None)
    posted = [json.loads(q.body) for q in hook.accepted]
    assert len(posted) == len(fired)
    assert posted[0]["command"] == "drift monitor" and posted[0]["verdict"] == "alarm"
    assert "response_length" in posted[0]["findings"][0]["what"]
    doc = json.loads((state / "llmobs-monitor-drift.json").read_text())
    assert doc["alarms"]["response_length>median"]["night"].startswith("2026-02-11")
    # a rebaseline re-arms: the drifted days become the reference
    r = run_cli(
        "drift",
        str(data),
        "--monitor",
        str(state),
        "--rebaseline",
        "--current",
        "last_day",
        "--baseline",
        "2026-02-10..2026-02-14",
        "--now",
        "2026-02-16T00:00:00Z",
        "--features",
        "response_length",
        "--format",
        "json",
    )
    assert r.returncode == 0 and json.loads(r.stdout)["monitor"]["started"]


def test_eval_monitor_judges_the_baseline_once_and_alarms_on_a_drop(tmp_path) -> None:
    import json
    from datetime import timedelta

    from openai_stub import OpenAIStub
    from test_eval_support import START, marker_judge, records, run_cli, write_jsonl

    recs = records(
        21,
        per_route=2400,
        days=40,
        routes={"qa": (1.0, 0.8, False)},
        drop={"qa": 0.3},
        drop_after=START + timedelta(days=35),
    )
    traces = write_jsonl(tmp_path / "t.jsonl", recs)
    state = tmp_path / "state"
    first = [
        "--baseline",
        "2026-03-01..2026-03-21",
    ]
    results = []
    with OpenAIStub(marker_judge) as stub:
        for i, day in enumerate(range(31, 40)):
            now = (START + timedelta(days=day)).isoformat()
            r = run_cli(
                "eval",
                str(traces),
                "--base-url",
                stub.base_url,
                "--evaluators",
                "relevance",
                "--budget",
                "200",
                "--current",
                "last_day",
                "--now",
                now,
                "--monitor",
                str(state),
                "--cache-dir",
                str(tmp_path / "c"),
                *(first if i == 0 else []),
                "--format",
                "json",
                env={"OPENAI_API_KEY": "sk-test"},
            )
            assert r.returncode in (0, 1), r.stderr
            doc = json.loads(r.stdout)
            results.append((day, r.returncode, doc["monitor"]["new_alarms"]))
            if i == 0:
                assert doc["monitor"]["started"] and "baseline" in doc["windows"]
            else:
                assert "baseline" not in doc["windows"]  # not judged again
    quiet = [rc for day, rc, _ in results if day <= 35]
    assert quiet and all(rc == 0 for rc in quiet)
    alarms = [(day, a) for day, rc, a in results if rc == 1]
    assert alarms and alarms[0][1] == ["route=qa/relevance"] and len(alarms) == 1


def test_monitor_needs_a_baseline_first_and_refuses_a_foreign_state(tmp_path) -> None:
    from pathlib import Path

    from test_eval_support import run_cli

    sample = str(Path(__file__).resolve().parents[1] / "sample_traces" / "traces.parquet")
    r = run_cli("eval", sample, "--monitor", str(tmp_path), "--base-url", "http://127.0.0.1:9")
    assert r.returncode == 2 and "--baseline" in r.stderr
    (tmp_path / "llmobs-monitor-drift.json").write_text("{not json")
    r = run_cli("drift", sample, "--monitor", str(tmp_path), "--features", "response_length")
    assert r.returncode == 2 and "monitor state" in r.stderr
