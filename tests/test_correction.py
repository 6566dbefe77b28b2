"""Judge-error-corrected quality, checked by simulation: with a biased judge the judge-only
interval stops covering the true pass rate while the corrected one covers it ~95 % of the
time; with an unbiased judge the corrected interval is not much wider."""

from __future__ import annotations

import numpy as np
import pytest

from llmobs_cli.core.eval.correction import MIN_LABELS, ppi_mean, rogan_gladen
from llmobs_cli.core.record.weights import hajek_mean_ci

RUNS = 600


def _simulate(
    rng: np.random.Generator, p: tuple[float, float], tpr: float, fpr: float, pi: float
) -> tuple[np.ndarray, ...]:
    """Two routes judged at different rates (weights 20 and 2), 1,500 judged calls each;
    labels drawn by Poisson sampling with probability ``pi``."""
    n = 1500
    w = np.r_[np.full(n, 20.0), np.full(n, 2.0)]
    strata = np.r_[np.zeros(n), np.ones(n)]
    y = np.r_[rng.random(n) < p[0], rng.random(n) < p[1]].astype(float)
    f = np.where(y == 1, rng.random(2 * n) < tpr, rng.random(2 * n) < fpr).astype(float)
    lab = rng.random(2 * n) < pi
    return w, strata, y, f, lab


def _truth(p: tuple[float, float]) -> float:
    return (1500 * 20 * p[0] + 1500 * 2 * p[1]) / (1500 * 22)


def _coverage(tpr: float, fpr: float, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    p = (0.7, 0.5)
    truth = _truth(p)
    cov_judge = cov_ppi = cov_rg = 0
    width_judge, width_ppi = [], []
    for _ in range(RUNS):
        w, strata, y, f, lab = _simulate(rng, p, tpr, fpr, pi=0.1)
        _m, lo, hi, _se = hajek_mean_ci(f, w, strata)
        cov_judge += lo <= truth <= hi
        width_judge.append(hi - lo)
        est = ppi_mean(f, w, f[lab], y[lab], w[lab], np.full(lab.sum(), 0.1))
        assert est is not None
        cov_ppi += est.ci_low <= truth <= est.ci_high
        width_ppi.append(est.ci_high - est.ci_low)
        rg = est.alternatives["rogan_gladen"]
        cov_rg += rg["ci_low"] <= truth <= rg["ci_high"]
    return {
        "judge": cov_judge / RUNS,
        "corrected": cov_ppi / RUNS,
        "rogan_gladen": cov_rg / RUNS,
        "width_ratio": float(np.mean(width_ppi) / np.mean(width_judge)),
    }


def test_biased_judge_corrected_interval_covers_the_truth() -> None:
    # The judge passes 40 % of bad answers and 95 % of good ones: about +0.11 too kind.
    cov = _coverage(tpr=0.95, fpr=0.40, seed=1)
    print(
        f"\nbiased judge, {RUNS} runs: judge-only coverage {cov['judge']:.3f}, "
        f"corrected (PPI) {cov['corrected']:.3f}, Rogan-Gladen {cov['rogan_gladen']:.3f}, "
        f"width ratio {cov['width_ratio']:.2f}"
    )
    assert cov["judge"] < 0.05
    assert 0.925 <= cov["corrected"] <= 0.975
    assert 0.9 <= cov["rogan_gladen"] <= 0.985


def test_unbiased_judge_corrected_interval_is_not_much_wider() -> None:
    cov = _coverage(tpr=0.97, fpr=0.03, seed=2)
    print(
        f"\nnear-perfect judge, {RUNS} runs: judge-only coverage {cov['judge']:.3f}, "
        f"corrected {cov['corrected']:.3f}, width ratio {cov['width_ratio']:.2f}"
    )
    assert 0.925 <= cov["corrected"] <= 0.975
    assert cov["width_ratio"] < 1.5


def test_continuous_scores_and_the_bias_estimate() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    y = rng.beta(4, 2, n)  # true quality in [0, 1]
    f = np.clip(y + 0.12 + rng.normal(0, 0.05, n), 0, 1)  # a judge about 0.12 too kind
    w = rng.choice([1.0, 5.0, 50.0], n)
    pi = np.where(w > 10, 0.3, 0.05)  # labels drawn at two rates: the weights must follow
    lab = rng.random(n) < pi
    est = ppi_mean(f, w, f[lab], y[lab], w[lab], pi[lab])
    truth = float(np.sum(w * y) / w.sum())
    assert est is not None
    assert est.ci_low <= truth <= est.ci_high
    assert est.judge_bias == pytest.approx(float(np.sum(w * (f - y)) / w.sum()), abs=0.01)
    assert est.judge_bias_ci[0] > 0.09
    assert est.alternatives is None  # not 0/1 data


def test_too_few_labels_gives_no_estimate_and_perfect_judge_gives_judge_mean() -> None:
    f = np.array([1.0, 0.0] * 50)
    w = np.ones(100)
    assert ppi_mean(f, w, f[: MIN_LABELS - 1], f[: MIN_LABELS - 1], w[:9], np.full(9, 0.1)) is None
    est = ppi_mean(f, w, f[:40], f[:40], w[:40], np.full(40, 0.4))
    assert est is not None
    assert est.score == pytest.approx(0.5)
    assert est.judge_bias == 0.0 and est.agreement == 1.0


def test_rogan_gladen_matches_the_closed_form_and_refuses_a_chance_judge() -> None:
    f_all = np.array([1.0] * 70 + [0.0] * 30)
    y = np.array([1.0] * 40 + [0.0] * 10 + [1.0] * 5 + [0.0] * 15)
    f = np.array([1.0] * 40 + [1.0] * 10 + [0.0] * 5 + [0.0] * 15)
    rg = rogan_gladen(f_all, np.ones(100), f, y, np.ones(70))
    sens, spec = 40 / 45, 15 / 25
    assert rg["score"] == pytest.approx((0.7 + spec - 1) / (sens + spec - 1))
    chance = rogan_gladen(
        f_all, np.ones(100), np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.ones(2)
    )
    assert chance["score"] is None


# --- end to end: eval → review export (random part) → labels → summarize ------------------


def test_biased_judge_end_to_end_corrected_interval_covers_each_route(tmp_path) -> None:
    import csv
    import json
    import zlib

    import polars as pl

    from openai_stub import OpenAIStub, Reply
    from test_eval_support import judged_response, records, run_cli, truth, write_jsonl

    def kind_judge(request: dict) -> Reply:
        """Passes every GOOD answer and half of the BAD ones (by a hash of the text)."""
        text = judged_response(request)
        good = text.startswith("GOOD") or zlib.crc32(text.encode()) % 2 == 0
        return Reply(content=json.dumps({"reasoning": "r", "score": 5 if good else 1}))

    recs = records(5, per_route=400)
    traces = write_jsonl(tmp_path / "t.jsonl", recs)
    evals = tmp_path / "evals.parquet"
    with OpenAIStub(kind_judge) as stub:
        r = run_cli(
            "eval",
            str(traces),
            "--base-url",
            stub.base_url,
            "--evaluators",
            "relevance",
            "--budget",
            "300",
            "--cache-dir",
            str(tmp_path / "c"),
            "-o",
            str(evals),
            env={"OPENAI_API_KEY": "sk-test"},
        )
    assert r.returncode == 0, r.stderr
    r = run_cli("review", "export", str(evals), "-o", str(tmp_path / "q"), "--random", "150")
    assert r.returncode == 0, r.stderr
    good = {x["trace_id"]: x["response"].startswith("GOOD") for x in recs}
    with (tmp_path / "q.csv").open() as fh:
        items = list(csv.DictReader(fh))
    assert {i["random"] for i in items} == {"True", "False"} or all(
        i["random"] == "True" for i in items
    )
    with (tmp_path / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(items[0]))
        w.writeheader()
        for i in items:  # reviewers label what they were given, truthfully
            w.writerow({**i, "label": "pass" if good[i["trace_id"]] else "fail"})
    r = run_cli("review", "import", str(tmp_path / "labels.csv"), "--evals", str(evals))
    assert r.returncode == 0, r.stderr
    r = run_cli("eval", "summarize", str(evals), "--format", "json")
    assert r.returncode == 0, r.stderr
    groups = {g["key"]["route"]: g for g in json.loads(r.stdout)["groups"]}
    rates = dict(truth(recs).iter_rows())
    for route, true_rate in rates.items():
        g = groups[route]
        c = g["corrected"]
        print(
            f"\n{route}: truth {true_rate:.3f}; judge {g['score']:.3f} "
            f"[{g['ci_low']:.3f}, {g['ci_high']:.3f}]; corrected {c['score']:.3f} "
            f"[{c['ci_low']:.3f}, {c['ci_high']:.3f}] from {c['labels']} labels, "
            f"judge bias {c['judge_bias']:+.3f}"
        )
        assert not g["ci_low"] <= true_rate <= g["ci_high"]
        assert c["ci_low"] <= true_rate <= c["ci_high"]
        assert c["judge_bias"] > 0.03 and c["method"] == "ppi"
    assert pl.read_parquet(evals)["review_random"].drop_nulls().sum() > 0
    md = run_cli("eval", "summarize", str(evals), "--format", "markdown").stdout
    assert "Corrected for judge error" in md and "judge bias" in md
    csv_text = run_cli("eval", "summarize", str(evals), "--format", "csv").stdout
    assert csv_text.splitlines()[0].endswith(
        "corrected,corrected_ci_low,corrected_ci_high,judge_bias"
    )
