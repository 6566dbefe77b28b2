"""Drift in bounded memory: the streaming path equals the whole-frame path on small
inputs, the partials path (past the cluster sample's cap) agrees with the row-level tests
within the buckets' resolution, and the cluster sample is a bottom-k of session hashes
that does not depend on how the input was split."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from llmobs_cli.core.drift import run_drift
from llmobs_cli.core.drift.partials import CL, SEQ
from llmobs_cli.core.drift.result import WIN
from llmobs_cli.core.drift.sample import ClusterSample
from llmobs_cli.core.partials.sketch import ALPHA
from llmobs_cli.core.synth.generate import DriftSpec, generate

START = datetime(2026, 1, 1, tzinfo=UTC)
CUT = START + timedelta(days=30)
NUMERIC = ["prompt_length", "response_length", "retrieval_top1_score", "latency_ms"]
SHARES = ["refusal_rate", "finish_reason", "cited_rank"]


@pytest.fixture(scope="module")
def drifted() -> pl.DataFrame:
    spec = DriftSpec(after=CUT, language={"en": 0.6, "es": 0.25, "de": 0.1, "fr": 0.05})
    return generate(14_000, seed=1, start=START, days=37, drift=spec)


def _rows(res: object) -> dict[tuple[str, str], dict]:
    return {(r["feature"], str(r["group"])): r for r in res.features}  # type: ignore[attr-defined]


def test_streamed_files_equal_the_whole_frame(drifted: pl.DataFrame, tmp_path: Path) -> None:
    # Split over three files: batches, files and order do not change a figure.
    paths = []
    for i, part in enumerate(np.array_split(np.arange(drifted.height), 3)):
        p = tmp_path / f"part{i}.parquet"
        drifted[part.tolist()].write_parquet(p)
        paths.append(p)
    feats = [*NUMERIC, *SHARES, "language"]
    a = run_drift(drifted, features=feats, by="model")
    b = run_drift(paths, features=feats, by="model")
    ra, rb = _rows(a), _rows(b)
    assert ra.keys() == rb.keys()
    for k, r in ra.items():
        s = rb[k]
        for f in ("statistic", "p_value", "effect_size", "drifted", "sampled_current"):
            if r[f] is None:
                assert s[f] is None, (k, f)
            else:
                assert s[f] == pytest.approx(r[f], rel=1e-9, abs=1e-12), (k, f)
        assert s["calls_baseline"] == pytest.approx(r["calls_baseline"], rel=1e-12)
    assert a.current.calls == pytest.approx(b.current.calls, rel=1e-12)
    assert a.baseline.sampled == b.baseline.sampled


def test_partials_path_agrees_with_the_row_level_tests(drifted: pl.DataFrame) -> None:
    feats = [*NUMERIC, *SHARES]
    exact = run_drift(drifted, features=feats, by="route")
    binned = run_drift(drifted, features=feats, by="route", sample_rows=3_000)
    assert any("merged partials" in n for n in binned.notes)
    assert not any("merged partials" in n for n in exact.notes)
    re_, rb = _rows(exact), _rows(binned)
    assert re_.keys() == rb.keys()
    for k, r in re_.items():
        s = rb[k]
        pa = (r["p_adjusted"], s["p_adjusted"])
        eff = r["effect_size"]
        near_floor = eff is not None and abs(eff - r["threshold"]) < 0.2 * r["threshold"]
        if None not in pa and not (0.01 / 20 < min(pa) < 0.01 * 20) and not near_floor:
            # A clear verdict stays; a borderline one may move with the sampled design effect.
            assert s["drifted"] == r["drifted"], (k, r["summary"], s["summary"], pa)
        assert s["sampled_baseline"] == r["sampled_baseline"]
        assert s["calls_current"] == pytest.approx(r["calls_current"], rel=1e-9)
        assert s["n_eff_current"] == pytest.approx(r["n_eff_current"], rel=1e-9)
        if r["statistic"] is None:
            continue
        if r["kind"] == "numeric":
            # D is read at bucket edges: off by at most the weight inside one bucket.
            assert abs(s["statistic"] - r["statistic"]) <= 0.02, k
            for side in ("baseline", "current"):
                assert s[side]["mean"] == pytest.approx(r[side]["mean"], rel=1e-9)
                assert s[side]["median"] == pytest.approx(r[side]["median"], rel=2 * ALPHA)
        else:
            assert s["baseline"] == pytest.approx(r["baseline"], rel=1e-9, abs=1e-12)
            assert s["current"] == pytest.approx(r["current"], rel=1e-9, abs=1e-12)
            # Same shares; the variance differs only by the sampled design effect.
            assert s["statistic"] == pytest.approx(r["statistic"], rel=0.5), k
        both = (r["p_value"], s["p_value"])
        if min(both) > 1e-3:
            assert max(both) / min(both) < 10, (k, both)


def test_partials_path_stays_quiet_on_identical_windows() -> None:
    same = generate(14_000, seed=2, start=START, days=37)
    res = run_drift(same, features=[*NUMERIC, *SHARES], sample_rows=2_000)
    assert res.drifted == [], [(r["feature"], r["p_adjusted"]) for r in res.features]


def test_distribution_histogram_from_buckets_matches_the_rows(drifted: pl.DataFrame) -> None:
    exact = run_drift(drifted, features=["response_length"])
    binned = run_drift(drifted, features=["response_length"], sample_rows=2_000)
    he, hb = exact.distributions["response_length"], binned.distributions["response_length"]
    assert len(hb["edges"]) == len(he["edges"])
    assert np.abs(np.array(hb["current"]) - np.array(he["current"])).max() < 0.03
    assert sum(hb["baseline"]) == pytest.approx(1.0)


def _frame(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            WIN: rng.integers(0, 2, n).astype(np.int8),
            CL: pl.Series(rng.integers(0, 500, n)).hash(1),
            SEQ: np.arange(n, dtype=np.int64),
            "x": rng.normal(size=n),
        }
    )


@pytest.mark.parametrize("per_window", [False, True])
def test_cluster_sample_is_the_bottom_k_whatever_the_split(per_window: bool) -> None:
    frame = _frame(20_000, 3)
    cap = 1_500
    results = []
    for order in (np.arange(frame.height), np.random.default_rng(4).permutation(frame.height)):
        s = ClusterSample(cap, per_window=per_window)
        shuffled = frame[order.tolist()]
        for chunk in shuffled.iter_slices(777):
            s.add(chunk)
        out = s.result()
        assert out is not None and not s.complete
        results.append(out.sort(SEQ))
    assert results[0].equals(results[1])
    kept = results[0]
    # Whole clusters: every row of a kept cluster is kept.
    for side in (0, 1) if per_window else (None,):
        part = kept if side is None else kept.filter(pl.col(WIN) == side)
        src = frame if side is None else frame.filter(pl.col(WIN) == side)
        assert part.height <= cap
        limit = part[CL].max()
        assert src.filter(pl.col(CL) <= limit).height == part.height
        # ... and no smaller cluster was left out while the cap allowed it.
        nxt = src.filter(pl.col(CL) > limit)[CL].min()
        assert part.height + src.filter(pl.col(CL) == nxt).height > cap


def test_cluster_sample_holds_at_most_a_quarter_over_its_cap() -> None:
    """Between thinnings the sample holds at most 1.25 × its cap plus one batch (it
    thinned at 2 × before: 0.4 GB more at the default 250,000 rows on kB-wide rows), and
    thinning that often keeps the same bottom-k as thinning once at the end."""
    frame = _frame(20_000, 7)
    cap, step = 1_000, 300
    s = ClusterSample(cap)
    for chunk in frame.iter_slices(step):
        s.add(chunk)
        assert s._rows <= cap + cap // 4 + step
    once = ClusterSample(cap)
    once._frames, once._rows = [frame], frame.height  # every row, thinned once in result()
    a, b = s.result(), once.result()
    assert a is not None and b is not None
    assert a.sort(SEQ).equals(b.sort(SEQ))


def test_cluster_sample_under_its_cap_is_complete() -> None:
    frame = _frame(1_000, 5)
    s = ClusterSample(5_000)
    for chunk in frame.iter_slices(100):
        s.add(chunk)
    assert s.complete
    out = s.result()
    assert out is not None and out.height == 1_000


def test_partials_path_does_not_depend_on_how_the_input_is_split(
    drifted: pl.DataFrame, tmp_path: Path
) -> None:
    # Each file's batch cuts its own bottom-k; adopting those cuts gives the bottom-k of
    # all rows, so five files and one frame hold the same sample and the same figures.
    paths = []
    for i, part in enumerate(np.array_split(np.arange(drifted.height), 5)):
        p = tmp_path / f"p{i}.parquet"
        drifted[part.tolist()].write_parquet(p)
        paths.append(p)
    feats = ["response_length", "finish_reason", "language"]
    a = run_drift(drifted, features=feats, sample_rows=2_500)
    b = run_drift(paths, features=feats, sample_rows=2_500)
    assert a.notes == b.notes
    ra, rb = _rows(a), _rows(b)
    for k, r in ra.items():
        for f in ("statistic", "p_value", "effect_size"):
            if r[f] is None:
                assert rb[k][f] is None
            else:
                assert rb[k][f] == pytest.approx(r[f], rel=1e-9), (k, f)
