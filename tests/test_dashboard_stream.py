"""The streaming dashboard (partials over batches) draws the figures of the whole-frame
dashboard it replaced (``dashboard_reference``: one load, then group-bys over all rows):
sums, counts, rates and costs to 1e-9 relative; percentiles identical (both are the
report's log-bucket sketch values), except the before/after percentiles of releases, which
were exact order statistics and are now within the sketch's α. Also: small batches give
the figures of one batch, windows resolve as before, drift equals ``llmobs drift`` on the
same paths, drift exemplars streamed equal the exemplars picked from all rows, and Spark /
Ray give the local figures."""

from __future__ import annotations

import importlib.util
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

import dashboard_reference as ref
from llmobs_cli.core.dashboard import build as dash
from llmobs_cli.core.partials.sketch import ALPHA
from llmobs_cli.core.synth.generate import DriftSpec, RegressionSpec, generate

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = [ROOT / "sample_traces" / "traces.jsonl", ROOT / "sample_traces" / "traces.parquet"]


def _sorted_groups(x: Any) -> Any:
    """Groups of one bucket in a stable order (the old path left them in hash order)."""
    if isinstance(x, list) and x and all(isinstance(e, dict) and "key" in e for e in x):
        return sorted(x, key=lambda e: json.dumps(e["key"], sort_keys=True, default=str))
    return x


def _diffs(a: Any, b: Any, path: str = "", sketched: bool = True) -> list[str]:
    """Every difference between two dashboard documents (see the module docstring);
    ``sketched`` False: release percentiles too must agree to 1e-9."""
    a, b = _sorted_groups(a), _sorted_groups(b)
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _diffs(a[k], b[k], f"{path}/{k}", sketched)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} != {len(b)} items"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in _diffs(x, y, f"{path}[{i}]", sketched)]
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return [f"{path}: {a} != {b}"]
        was_exact = path.startswith("/releases") and ("latency_ms" in path or "ttft_ms" in path)
        rel = ALPHA * (1 + 1e-9) if sketched and was_exact else 1e-9
        if not math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-12):
            return [f"{path}: {a} != {b}"]
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _both(paths: list[Path], **kw: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    old = ref.build(paths, ref.DashboardOptions(drift=False, **kw)).as_dict()
    new = dash.build(paths, dash.DashboardOptions(drift=False, **kw)).as_dict()
    return old, new


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six weeks with release changes, a regression and 400 customers (folded into
    ``(other)`` past the top 12), with some rows without a session."""
    start = datetime(2026, 10, 12, tzinfo=UTC)
    df = generate(
        40_000,
        seed=11,
        start=start,
        days=42,
        regression=RegressionSpec(after=start + timedelta(days=35)),
    )
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) % 7 == 0)
        .then(None)
        .otherwise(pl.col("session_id"))
        .alias("session_id")
    )
    path = tmp_path_factory.mktemp("gen") / "g.parquet"
    df.write_parquet(path)
    return path


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.suffix)
def test_sample_traces_draw_the_same_figures(path: Path) -> None:
    old, new = _both([path])
    diffs = _diffs(old, new)
    assert not diffs, diffs[:10]
    assert old["releases"]["changes"], "the sample has release changes to compare"


def test_generated_dump_draws_the_same_figures(generated: Path) -> None:
    old, new = _both([generated], bucket="day")
    diffs = _diffs(old, new)
    assert not diffs, diffs[:10]
    by_id = {r["id"]: r["report"] for r in new["reports"]}
    assert by_id["customer_id"]["folded_into_other"] > 0  # the (other) series is compared
    assert any(
        g["key"].get("customer_id") == dash.OTHER
        for b in by_id["customer_id"]["buckets"]
        for g in b["groups"]
    )
    assert len(new["releases"]["comparisons"]) >= 2


@pytest.mark.parametrize(
    "window",
    [
        {"since": "14d"},
        {"since": "2026-11-01", "until": "2026-11-15"},
        {"until": "10d", "now": "2026-11-20T00:00:00Z"},
    ],
)
def test_windows_resolve_as_before(generated: Path, window: dict[str, str]) -> None:
    old, new = _both([generated], bucket="week", **window)
    assert new["window"] == old["window"]
    diffs = _diffs(old, new)
    assert not diffs, diffs[:10]


def test_small_batches_give_the_figures_of_one_batch(generated: Path) -> None:
    """A tiny memory budget cuts the dump into many batches (merged partials); the figures
    are those of the whole-frame path."""
    old = ref.build([generated], ref.DashboardOptions(drift=False, bucket="week")).as_dict()
    new = dash.build(
        [generated], dash.DashboardOptions(drift=False, bucket="week", memory=1)
    ).as_dict()
    diffs = _diffs(old, new)
    assert not diffs, diffs[:10]


def _spill_early(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, batch_rows: int) -> Path:
    """Spill parts past 300 rows, read batches of ``batch_rows``, and put the spill files
    in a fresh directory (returned) so a test can check that none is left."""
    import importlib
    import tempfile

    merge_mod = importlib.import_module("llmobs_cli.core.partials.merge")
    monkeypatch.setattr(merge_mod, "SPILL_ROWS", 300)
    monkeypatch.setattr("llmobs_cli.core.ingest.readers.stream.MIN_BATCH", batch_rows)
    spill_dir = tmp_path / "spill"
    spill_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spill_dir))
    return spill_dir


def test_sessions_spilled_to_disk_draw_the_same_figures(
    generated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Session rows (route and dimension sessions, release first calls), sketch bins and
    the dimensions' per-bucket sums forced to disk after a few hundred rows and merged
    partition by partition: the figures are those of the whole-frame path, every spilled
    part really spilled, and no spill file is left."""
    import importlib
    import tempfile

    merge_mod = importlib.import_module("llmobs_cli.core.partials.merge")
    monkeypatch.setattr(merge_mod, "SPILL_ROWS", 300)
    # Batches of 2,000 rows: enough merges for the parts to pass the spill size.
    monkeypatch.setattr("llmobs_cli.core.ingest.readers.stream.MIN_BATCH", 2000)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    spilled: set[str] = set()
    real = merge_mod.Merger._to_disk

    def counting(self: Any, part: str) -> None:
        spilled.add(part)
        real(self, part)

    monkeypatch.setattr(merge_mod.Merger, "_to_disk", counting)
    old = ref.build([generated], ref.DashboardOptions(drift=False, bucket="day")).as_dict()
    new = dash.build(
        [generated], dash.DashboardOptions(drift=False, bucket="day", memory=1)
    ).as_dict()
    assert spilled == {"sess", "first", "q", "bsum"}
    assert list(tmp_path.iterdir()) == []
    diffs = _diffs(old, new)
    assert not diffs, diffs[:10]


def test_many_models_spilled_fold_their_percentiles_into_other(
    generated: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Twenty models (a dimension whose latency percentiles are drawn per bucket) with the
    sketch bins forced to disk: each bucket's partition is reduced to quantiles after the
    models past the top 12 are merged into ``(other)``, and every figure — the
    ``(other)`` series' percentiles included — is the whole-frame path's."""

    path = tmp_path / "many_models.parquet"
    df = pl.read_parquet(generated)
    # Spread unevenly, so the top 12 by cost are well defined.
    pick = (pl.int_range(pl.len()) * 7919 % 211) % 20
    df = df.with_columns(
        pl.concat_str(pl.lit("model-"), pick.cast(pl.String).str.zfill(2)).alias("model")
    )
    df.write_parquet(path)
    spill_dir = _spill_early(monkeypatch, tmp_path, batch_rows=2000)
    old = ref.build([path], ref.DashboardOptions(drift=False, bucket="day")).as_dict()
    new = dash.build([path], dash.DashboardOptions(drift=False, bucket="day", memory=1)).as_dict()
    assert list(spill_dir.iterdir()) == []
    model = next(r["report"] for r in new["reports"] if r["id"] == "model")
    assert model["folded_into_other"] == 8
    other = [
        g
        for b in model["buckets"]
        for g in b["groups"]
        if g["key"]["model"] == dash.OTHER and g["latency_ms"]["p95"] is not None
    ]
    assert len(other) == len(model["buckets"])
    diffs = _diffs(old, new)
    assert not diffs, diffs[:10]


def test_empty_window_is_exit_2_naming_the_data(generated: Path) -> None:
    from llmobs_cli.errors import UsageError

    with pytest.raises(UsageError, match="since"):
        dash.build([generated], dash.DashboardOptions(drift=False, since="2030-01-01"))


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    start = datetime(2026, 10, 12, tzinfo=UTC)
    df = generate(
        30_000,
        seed=3,
        start=start,
        days=42,
        drift=DriftSpec(after=start + timedelta(days=35)),
        drift_kinds=["length", "refusals"],
    )
    path = tmp_path_factory.mktemp("drift") / "d.parquet"
    df.write_parquet(path)
    return path


def test_drift_is_llmobs_drift_on_the_paths_with_streamed_exemplars(drifted: Path) -> None:
    """The drift section is the drift core's answer on the same files (now = the last call
    drawn), and its example calls — kept as a bounded top-k while streaming — are those
    picked from every call of the current window at once."""
    from llmobs_cli.core.drift import run_drift
    from llmobs_cli.core.explore.exemplars import attach_drift_frame
    from llmobs_cli.core.ingest.readers import load

    res = dash.build([drifted], dash.DashboardOptions(memory=1))
    assert res.drift_fired
    last = res.reports[0]["report"]["overall"]["last_timestamp"]
    direct = run_drift([str(drifted)], now=last)
    assert direct.as_dict()["drifted"] == res.drift["drifted"]
    frame = load([drifted]).frame
    attach_drift_frame(direct, frame, sources=res.sources)
    want = {
        f["feature"]: [e["trace_id"] for e in f.get("exemplars") or []]
        for f in direct.as_dict()["features"]
        if f.get("drifted")
    }
    got = {
        f["feature"]: [e["trace_id"] for e in f.get("exemplars") or []]
        for f in res.drift["features"]
        if f.get("drifted")
    }
    assert got == want
    assert any(got.values())


HAS = {
    e: importlib.util.find_spec(m) is not None for e, m in (("spark", "pyspark"), ("ray", "ray"))
}


@pytest.mark.slow
@pytest.mark.parametrize(
    "engine",
    [
        pytest.param(
            e,
            marks=pytest.mark.skipif(
                not HAS[e], reason=f'the {e} extra is not installed (pip install "llmobs[{e}]")'
            ),
        )
        for e in ("spark", "ray")
    ],
)
def test_engines_draw_the_local_figures(engine: str, tmp_path: Path) -> None:
    from test_eval_support import run_cli

    src = tmp_path / "g.parquet"
    start = datetime(2026, 1, 1, tzinfo=UTC)
    generate(20_000, seed=5, start=start, days=20).write_parquet(src)
    base = ["dashboard", str(src), "--no-drift", "--exit-zero", "--bucket", "day"]
    local = run_cli(*base, "-o", str(tmp_path / "local.json"))
    assert local.returncode == 0, local.stderr
    other = run_cli(*base, "-o", str(tmp_path / "other.json"), "--engine", engine)
    assert other.returncode == 0, other.stderr
    a = json.loads((tmp_path / "local.json").read_text())
    b = json.loads((tmp_path / "other.json").read_text())
    assert a["releases"]["comparisons"], "the dump has release changes (second pass ran)"
    diffs = _diffs(a, b, sketched=False)
    assert not diffs, diffs[:10]


def test_release_sessions_folded_by_hour_count_the_same_units(generated: Path) -> None:
    """Folding each session of the release partials into the hour of its first call, on
    disjoint halves of the sessions, gives the units per (route, value, hour) of the
    unfolded partials (sessions counted once, calls without a session by their calls)."""
    from llmobs_cli.core.dashboard import views
    from llmobs_cli.core.dashboard.partials import (
        UNIT,
        first_by_hour,
        plan_dashboard,
        release_partials,
    )
    from llmobs_cli.core.partials import merge
    from llmobs_cli.core.partials.compute import key
    from llmobs_cli.core.report import pricing

    plan = plan_dashboard(
        bucket="day", table=pricing.build_price_table(), refusal_patterns=None, rules=[]
    )
    frame = pl.read_parquet(generated)
    raw = merge([release_partials(frame.slice(i, 5000), plan) for i in range(0, 40_000, 5000)])
    odd = pl.col(key(UNIT)).is_not_null() & (pl.col(key(UNIT)) % 2 == 1)
    halves = [first_by_hour(raw.filter(odd)), first_by_hour(raw.filter(~odd | odd.is_null()))]
    folded = merge(halves)
    assert folded[key(UNIT)].null_count() == folded.height
    for i, kind in enumerate(plan.kinds):
        want = views.hourly_units(raw, i, kind)
        got = views.hourly_units(folded, i, kind)
        cols = ["route", kind, "_h"]
        assert want.height and want.sort(cols).equals(got.sort(cols))


def test_reduced_percentiles_equal_the_bins_with_ties_and_a_model_named_other(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Twenty models with equal calls (unit weights) and no price (the top 12 chosen by
    the tie-break on the key alone), one of them literally named ``(other)``: the
    dashboard whose sketch bins go to disk and are reduced to quantiles partition by
    partition (the models past the top 12 merged into ``(other)`` first) equals the one
    that keeps every bin to the end and folds them there (what a run on an engine
    does), the percentiles included."""
    import importlib

    from llmobs_cli.core.dashboard import partials as dash_partials

    sample = Path(__file__).parent.parent / "sample_traces" / "traces.parquet"
    i = pl.int_range(pl.len())
    name = pl.concat_str(pl.lit("model-"), (i % 20).cast(pl.String).str.zfill(2))
    df = pl.read_parquet(sample).with_columns(
        pl.when(i % 20 == 0).then(pl.lit(dash.OTHER)).otherwise(name).alias("model"),
        pl.lit(None, pl.Float64).alias("cost_usd"),
        pl.lit(1.0).alias("sample_rate"),
    )
    path = tmp_path / "ties.parquet"
    df.write_parquet(path)

    def keep_bins(plan: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "q"} for r in real_reducers(plan)]

    real_reducers = dash_partials.block_reducers
    monkeypatch.setattr(dash, "block_reducers", keep_bins)
    opts = dash.DashboardOptions(drift=False, bucket="day")
    bins = dash.build([path], opts).as_dict()
    monkeypatch.setattr(dash, "block_reducers", real_reducers)
    spill_dir = _spill_early(monkeypatch, tmp_path, batch_rows=200)
    merge_mod = importlib.import_module("llmobs_cli.core.partials.merge")
    spilled: list[str] = []
    real_to_disk = merge_mod.Merger._to_disk

    def counting(self: Any, part: str) -> None:
        spilled.append(part)
        real_to_disk(self, part)

    monkeypatch.setattr(merge_mod.Merger, "_to_disk", counting)
    reduced = dash.build([path], dash.DashboardOptions(drift=False, bucket="day", memory=1))
    doc = reduced.as_dict()
    assert "q" in spilled
    assert list(spill_dir.iterdir()) == []
    model = next(r["report"] for r in doc["reports"] if r["id"] == "model")
    assert model["folded_into_other"] == 8
    # Equal calls: the top 12 are the first keys in order, "(other)" sorting first.
    assert [g["key"]["model"] for g in model["groups"][:13]] == [
        dash.OTHER,
        *(f"model-{k:02d}" for k in range(1, 13)),
    ]
    assert all(g["latency_ms"]["p95"] is not None for b in model["buckets"] for g in b["groups"])
    diffs = _diffs(bins, doc, sketched=False)
    assert not diffs, diffs[:10]
