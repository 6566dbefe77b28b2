"""Human review: Cohen's kappa against a hand-computed case, queue export, label import,
agreement in the summary, and the exact error line for a bad label."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from llmobs_cli.core.eval.judges.human import cohen_kappa, confusion
from llmobs_cli.core.eval.judgments import JUDGMENT_SCHEMA
from llmobs_cli.core.eval.review import build_queue, import_labels, read_labels
from llmobs_cli.core.eval.summary import summarize
from llmobs_cli.errors import InputError
from test_eval_support import run_cli


def test_kappa_hand_computed() -> None:
    # judge:  P P P P P P F F F F   human: P P P P F F P F F F
    # confusion (judge x human): PP=4, PF=2, FP=1, FF=3; n=10
    # p_o = 7/10; p_e = (6/10)(5/10) + (4/10)(5/10) = 0.5; kappa = (0.7-0.5)/(0.5) = 0.4
    judge = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    human = [1, 1, 1, 1, 0, 0, 1, 0, 0, 0]
    assert cohen_kappa(judge, human) == pytest.approx(0.4)
    m = confusion(judge, human)
    assert m.tolist() == [[3, 1], [2, 4]]
    assert cohen_kappa([1, 1], [1, 1]) is None  # one class only: undefined
    assert cohen_kappa([1, 0, 1, 0], [0, 1, 0, 1]) == pytest.approx(-1.0)


def evals_frame() -> pl.DataFrame:
    rows = []
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    spec = [  # trace, route, evaluator, score
        ("t1", "refunds", "relevance", 1.0),
        ("t2", "chat", "relevance", 0.5),
        ("t3", "chat", "relevance", 1.0),
        ("t4", "qa", "relevance", 0.0),
        ("t4", "qa", "reference", 1.0),
        ("t5", "chat", "self_consistency", 0.2),
        ("t6", "chat", "relevance", 0.0),
        ("t7", "chat", "relevance", 1.0),
    ]
    for t, route, ev, score in spec:
        row = {c: None for c in JUDGMENT_SCHEMA}
        row.update(
            trace_id=t,
            span_id=t,
            route=route,
            timestamp=ts,
            evaluator=ev,
            criterion=ev,
            score=score,
            weight=2.0,
            sample_rate=0.5,
            eval_rate=1.0,
            window="current",
            stratum=f"route={route}",
            cached=False,
            attempts=1,
            judge_cost_usd=0.0,
            flagged=(ev == "self_consistency"),
            explanation="why",
            input_text="q",
            response_text="a",
            judge_model="j",
        )
        rows.append(row)
    return pl.DataFrame(rows, schema=JUDGMENT_SCHEMA)


def test_queue_picks_high_stakes_borderline_and_disagreements() -> None:
    q = build_queue(evals_frame(), high_stakes={"refunds"}, random_per_group=0)
    got = {(r["trace_id"], r["evaluator"]): r["reasons"] for r in q.iter_rows(named=True)}
    assert got == {
        ("t1", "relevance"): "high_stakes",
        ("t2", "relevance"): "borderline",
        ("t4", "relevance"): "judge_reference_disagree",
        ("t5", "self_consistency"): "self_inconsistent",
    }
    assert q["trace_id"][0] == "t1"  # high stakes first


def test_export_import_roundtrip_and_agreement(tmp_path: Path) -> None:
    ev = tmp_path / "evals.parquet"
    frame = evals_frame()
    frame.write_parquet(ev)
    # export everything judged (borderline range 0..1) to get a queue of all judge rows
    cfg = tmp_path / "llmobs.yaml"
    cfg.write_text("eval:\n  borderline: [0.0, 1.0]\n")
    r = run_cli("review", "export", str(ev), "-o", str(tmp_path / "queue"), "--config", str(cfg))
    assert r.returncode == 0, r.stderr
    items = [json.loads(x) for x in (tmp_path / "queue.jsonl").read_text().splitlines()]
    with (tmp_path / "queue.csv").open() as fh:
        assert [row["trace_id"] for row in csv.DictReader(fh)] == [i["trace_id"] for i in items]
    labels = {"t1": "pass", "t2": "fail", "t3": "fail", "t4": "0", "t6": "1", "t7": "pass"}
    with (tmp_path / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(items[0]))
        w.writeheader()
        for i in items:
            if i["evaluator"] == "relevance":
                w.writerow({**i, "label": labels[i["trace_id"]]})
    r = run_cli(
        "review", "import", str(tmp_path / "labels.csv"), "--evals", str(ev), "--format", "json"
    )
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["imported"] == 6 and doc["unmatched"] == 0
    # judge (≥0.5 pass): t1 P, t2 P, t3 P, t4 F, t6 F, t7 P; human: P F F F P P
    # confusion: PP=2 (t1,t7), PF=2 (t2,t3), FP=1 (t6), FF=1 (t4)
    # p_o = 3/6, p_e = (4/6)(3/6) + (2/6)(3/6) = 0.5 → kappa 0
    a = doc["agreement"][0]
    assert a["evaluator"] == "relevance" and a["pairs"] == 6
    assert a["agreement"] == pytest.approx(0.5) and a["kappa"] == pytest.approx(0.0)
    assert a["confusion"] == {
        "judge_fail_human_fail": 1,
        "judge_fail_human_pass": 1,
        "judge_pass_human_fail": 2,
        "judge_pass_human_pass": 2,
    }
    saved = pl.read_parquet(ev)
    assert saved.filter(pl.col("evaluator") == "human").height == 6
    # human rows never enter the score groups (not a probability sample)
    assert {g["evaluator"] for g in summarize(saved).groups} == {
        "relevance",
        "reference",
        "self_consistency",
    }
    # importing again replaces, not duplicates
    run_cli("review", "import", str(tmp_path / "labels.csv"), "--evals", str(ev))
    assert pl.read_parquet(ev).filter(pl.col("evaluator") == "human").height == 6


def test_bad_label_names_file_line_and_field(tmp_path: Path) -> None:
    p = tmp_path / "labels.jsonl"
    p.write_text(
        json.dumps({"trace_id": "t1", "evaluator": "relevance", "label": ""})
        + "\n"
        + json.dumps({"trace_id": "t2", "evaluator": "relevance", "label": "maybe"})
        + "\n"
    )
    with pytest.raises(InputError) as exc:
        read_labels(p)
    assert str(exc.value) == (
        f"{p}:2: label: expected a score from 0 to 1 or pass/fail (got 'maybe')"
    )
    _frame, n, unmatched = import_labels(evals_frame(), read_labels(_ok(tmp_path)))
    assert n == 1 and unmatched == 1


def _ok(tmp_path: Path) -> Path:
    p = tmp_path / "ok.jsonl"
    p.write_text(
        json.dumps({"trace_id": "t3", "span_id": "t3", "evaluator": "relevance", "label": 0.9})
        + "\n"
        + json.dumps({"trace_id": "nope", "evaluator": "relevance", "label": 1})
        + "\n"
    )
    return p
