"""The streaming Merger (log-structured runs, grouping fields numbered) against one merge."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from llmobs_cli.core.partials import PartialSpec, merge, partials
from llmobs_cli.core.partials.merge import ByKeys, Deferred, Merger

SPEC = PartialSpec(
    levels=((), ("g", "h"), ("h",)),
    sums=("w", "wx"),
    extrema=("x",),
    sketches=(("x", "w"),),
    session=("sid", "w"),
    session_levels=(0, 1, 2),
)


def _batches(n_batches: int, seed: int) -> list[pl.DataFrame]:
    rng = np.random.default_rng(seed)
    out = []
    for b in range(n_batches):
        n = int(rng.integers(1, 400))
        x = rng.lognormal(3, 1, n)
        w = rng.choice([1.0, 10.0, 4.0], n)
        # Some groups appear late (new key tuples mid-stream), some keys are null, and
        # sessions span neighbouring batches.
        g = rng.choice(["a", "b", None, f"late{b // 5}"], n)
        h = rng.choice(["x", "y", None], n)
        sid = (rng.integers(0, 60, n) + 40 * b).astype(np.uint64)
        out.append(
            pl.DataFrame(
                {
                    "x": x,
                    "w": w,
                    "g": pl.Series(list(g), dtype=pl.String),
                    "h": pl.Series(list(h), dtype=pl.String),
                    "sid": sid,
                }
            ).with_columns((pl.col("w") * pl.col("x")).alias("wx"))
        )
    return out


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    keys = [c for c in df.columns if c.startswith("k:")]
    return df.sort(keys, nulls_last=True)


@pytest.mark.parametrize(("n_batches", "pending"), [(1, 4), (7, 1), (37, 4), (64, 3)])
def test_merger_equals_one_merge_of_every_batch(n_batches: int, pending: int) -> None:
    parts = [partials(b, SPEC) for b in _batches(n_batches, seed=n_batches)]
    merger = Merger(pending=pending)
    for p in parts:
        merger.add(p)
    got = merger.result()
    assert got is not None
    want = merge(parts)
    assert got.columns == want.columns
    assert got.schema == want.schema
    got, want = _sorted(got), _sorted(want)
    keys = [c for c in got.columns if c.startswith("k:") and c != "k:metric"]
    assert got.select(keys).equals(want.select(keys))
    for c in ("sum:n", "min:v", "max:v"):
        assert got[c].equals(want[c])
    np.testing.assert_allclose(got["sum:v"].to_numpy(), want["sum:v"].to_numpy(), rtol=1e-12)


def test_merger_without_grouping_fields_and_when_empty() -> None:
    spec = PartialSpec(levels=((),), sums=("w",))
    merger = Merger()
    assert merger.result() is None
    for b in _batches(9, seed=1):
        merger.add(partials(b, spec))
    got = merger.result()
    assert got is not None
    total = sum(float(b["w"].sum()) for b in _batches(9, seed=1))
    assert got.filter(pl.col("k:metric") == "w")["sum:v"].item() == pytest.approx(total, rel=1e-12)


def test_derived_sessions_equal_kept_sessions() -> None:
    """With ``derive_sessions`` only the finest session levels keep session partials; the
    coarser levels' session figures are regrouped from them and equal the kept ones."""
    from dataclasses import replace

    from llmobs_cli.core.partials.finalize import level_sessions

    derived = replace(SPEC, derive_sessions=True)
    assert [derived.session_source(i) for i in range(3)] == [1, 1, 1]
    batches = _batches(11, seed=5)
    kept = merge([partials(b, SPEC) for b in batches])
    got = merge([partials(b, derived) for b in batches])
    sess_levels = got.filter(pl.col("k:part") == "sess")["k:level"].unique().to_list()
    assert sess_levels == [1]
    assert (
        got.filter(pl.col("k:part") == "sess").height
        < kept.filter(pl.col("k:part") == "sess").height
    )
    for level, keys in enumerate(SPEC.levels):
        a = level_sessions(kept, SPEC, level)
        b = level_sessions(got, derived, level)
        if keys:
            a, b = a.sort(list(keys), nulls_last=True), b.sort(list(keys), nulls_last=True)
            assert a.select(keys).equals(b.select(keys))
        assert a["sessions_sampled"].equals(b["sessions_sampled"])
        np.testing.assert_allclose(b["sessions"].to_numpy(), a["sessions"].to_numpy(), rtol=1e-12)
    # Without a refining level, a level keeps its own sessions.
    alone = PartialSpec(
        levels=((), ("g",)),
        sums=("w",),
        session=("sid", "w"),
        session_levels=(0,),
        derive_sessions=True,
    )
    assert alone.session_source(0) == 0


def test_merger_takes_the_supertype_of_a_key_typed_differently_in_a_batch() -> None:
    def part(g: pl.Series, w: float) -> pl.DataFrame:
        return pl.DataFrame({"k:part": ["sum"], "k:level": [1], "k:g": g, "sum:v": [w]})

    merger = Merger(pending=1)
    merger.add(part(pl.Series([None]), 1.0))  # all-null batch: dtype Null
    merger.add(part(pl.Series(["a"]), 2.0))
    merger.add(part(pl.Series([None], dtype=pl.String), 4.0))
    got = merger.result()
    assert got is not None
    assert got.schema["k:g"] == pl.String
    assert sorted(got.select("k:g", "sum:v").rows(), key=str) == [("a", 2.0), (None, 5.0)]


def _hashed(batches: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """The batches with session ids spread over the whole 64-bit range (as hashes are)."""
    return [b.with_columns(pl.col("sid").hash(seed=3)) for b in batches]


@pytest.mark.parametrize("derive", [False, True])
def test_spilled_sessions_equal_the_in_memory_sessions(derive: bool, tmp_path) -> None:
    """Session rows sent to disk in hash partitions and reduced partition by partition give
    the same per-group sessions as one merge of everything, and the other parts are
    untouched; the spill directory is gone afterwards."""
    from dataclasses import replace
    from functools import partial as bind

    from llmobs_cli.core.partials.finalize import level_sessions, session_totals

    spec = replace(SPEC, derive_sessions=derive)
    batches = _hashed(_batches(40, seed=9))
    parts = [partials(b, spec) for b in batches]
    want = merge(parts)
    merger = Merger(pending=2, spill={"sess": "k:sid"}, spill_rows=300, spill_dir=str(tmp_path))
    for p in parts:
        merger.add(p)
    assert merger.spilled_rows > 0
    got = merger.result(reduce={"sess": bind(session_totals, spec=spec)})
    assert got is not None
    assert list(tmp_path.iterdir()) == []
    assert set(got["k:part"].unique()) == {"sum", "q", "sessn"}
    for level, keys in enumerate(spec.levels):
        a = level_sessions(want, spec, level)
        b = level_sessions(got, spec, level)
        if keys:
            a, b = a.sort(list(keys), nulls_last=True), b.sort(list(keys), nulls_last=True)
            assert a.select(keys).equals(b.select(keys))
        assert a["sessions_sampled"].to_list() == b["sessions_sampled"].to_list()
        np.testing.assert_allclose(b["sessions"].to_numpy(), a["sessions"].to_numpy(), rtol=1e-12)
    # Independently: overall sessions = Σ over sessions of their rows' mean weight.
    rows = pl.concat(batches)
    sid, w = rows["sid"].to_numpy(), rows["w"].to_numpy()
    uniq, inv = np.unique(sid, return_inverse=True)
    mean_w = np.bincount(inv, weights=w) / np.bincount(inv)
    overall = level_sessions(got, spec, 0)
    assert overall["sessions_sampled"].item() == len(uniq)
    assert overall["sessions"].item() == pytest.approx(mean_w.sum(), rel=1e-12)
    same = got.filter(pl.col("k:part") != "sessn").drop("k:sid")
    base = want.filter(pl.col("k:part") != "sess").drop("k:sid")
    assert same.height == base.height
    g, b2 = _sorted(same), _sorted(base)
    np.testing.assert_allclose(g["sum:v"].to_numpy(), b2["sum:v"].to_numpy(), rtol=1e-12)


def test_a_spilled_part_needs_a_reducer(tmp_path) -> None:
    merger = Merger(pending=1, spill={"sess": "k:sid"}, spill_rows=10, spill_dir=str(tmp_path))
    for b in _hashed(_batches(6, seed=2)):
        merger.add(partials(b, SPEC))
    assert merger.spilled_rows > 0
    with pytest.raises(ValueError, match="need a reducer"):
        merger.result()


def test_key_hash_spill_gives_the_one_merge(tmp_path) -> None:
    """Parts spilled by a hash of their keys (no reducer) come back as the merge of every
    batch: each key in one partition, partitions concatenated."""
    parts = [partials(b, SPEC) for b in _hashed(_batches(30, seed=12))]
    want = merge(parts).filter(pl.col("k:part") != "sess").drop("k:sid")
    merger = Merger(
        pending=2,
        spill={"sum": None, "q": None},
        spill_rows=200,
        spill_dir=str(tmp_path),
    )
    for p in parts:
        merger.add(p)
    assert merger.spilled_rows > 0
    got = merger.result()
    assert got is not None
    assert list(tmp_path.iterdir()) == []
    got = got.filter(pl.col("k:part") != "sess").drop("k:sid").select(want.columns)
    got, want = _sorted(got), _sorted(want)
    keys = [c for c in got.columns if c.startswith("k:")]
    assert got.select(keys).equals(want.select(keys))
    for c in ("sum:n", "min:v", "max:v"):
        assert got[c].equals(want[c])
    np.testing.assert_allclose(got["sum:v"].to_numpy(), want["sum:v"].to_numpy(), rtol=1e-12)


def test_key_numbering_grows_with_each_fields_values_not_their_combinations(tmp_path) -> None:
    """Customers by the hour: 150 customers × 400 hours × 3 metrics make ~180,000 key
    tuples. The merger numbers each field's values on its own (a dictionary of ~550
    values, not one of every tuple joined with every batch: 6 GB at 2M rows), merges to
    the one merge of every batch, and a frame of more rows than the part may hold is
    merged and spilled at once, not after ``pending`` frames."""
    rng = np.random.default_rng(5)
    frames = []
    for _ in range(6):
        n = 60_000
        frames.append(
            pl.DataFrame(
                {
                    "k:part": ["sum"] * n,
                    "k:level": np.full(n, 1, np.int32),
                    "k:customer": [f"c{i}" for i in rng.integers(0, 150, n)],
                    "k:hour": (rng.integers(0, 400, n) * 3_600_000_000).astype("datetime64[us]"),
                    "k:metric": rng.choice(["calls", "cost", "tokens"], n),
                    "sum:v": rng.random(n),
                    "sum:n": np.ones(n, np.int64),
                }
            )
        )
    merger = Merger(pending=4, spill={"sum": None}, spill_rows=25_000, spill_dir=str(tmp_path))
    merger.add(frames[0])
    assert merger.spilled_rows > 0  # one frame past the size: on disk already
    for f in frames[1:]:
        merger.add(f)
    assert sum(v.len() for v in merger._keys["sum"].values.values()) <= 150 + 400 + 3 + 3
    got = merger.result()
    assert got is not None
    want = merge(frames)
    assert want.height > 100_000
    got, want = _sorted(got.select(want.columns)), _sorted(want)
    keys = [c for c in want.columns if c.startswith("k:")]
    assert got.select(keys).equals(want.select(keys))
    assert got["sum:n"].equals(want["sum:n"])
    np.testing.assert_allclose(got["sum:v"].to_numpy(), want["sum:v"].to_numpy(), rtol=1e-12)


def test_large_merge_on_the_streaming_engine_equals_the_in_memory_group_by() -> None:
    """Past the streaming threshold merge() gives the in-memory group-by's rows: sums add,
    extrema take min/max, null keys form their own group."""
    from llmobs_cli.core.partials.merge import _STREAMING_ROWS

    rng = np.random.default_rng(5)
    n = _STREAMING_ROWS + 1000
    frames = [
        pl.DataFrame(
            {
                "k:level": pl.Series(rng.integers(0, 2, n), dtype=pl.Int32),
                "k:g": pl.Series(list(rng.choice(["a", "b", None], n)), dtype=pl.String),
                "k:sid": pl.Series(rng.integers(0, 30_000, n), dtype=pl.UInt64),
                "sum:v": rng.random(n),
                "sum:n": pl.Series(rng.integers(1, 5, n), dtype=pl.Int64),
                "min:v": rng.random(n),
                "max:v": rng.random(n),
            }
        )
        for _ in range(2)
    ]
    got = merge(frames)
    keys = ["k:level", "k:g", "k:sid"]
    want = (
        pl.concat(frames)
        .group_by(keys)
        .agg(
            pl.col("sum:v").sum(),
            pl.col("sum:n").sum(),
            pl.col("min:v").min(),
            pl.col("max:v").max(),
        )
    )
    assert got.columns == frames[0].columns
    both = got.join(want, on=keys, how="full", nulls_equal=True, suffix="_w")
    assert both.height == got.height == want.height
    assert both["k:g"].null_count() > 0
    assert (both["sum:v"] - both["sum:v_w"]).abs().max() <= 1e-9
    for c in ("sum:n", "min:v", "max:v"):
        assert both[c].equals(both[f"{c}_w"], check_names=False)


@pytest.mark.parametrize(
    "by",
    [ByKeys(exclude=("k:bin",)), ByKeys(only=("k:level", "k:metric", "k:h"))],
    ids=["per-group", "per-level-metric-h"],
)
def test_key_subset_spill_reduces_whole_groups_to_their_quantiles(by: ByKeys, tmp_path) -> None:
    """Sketch bins spilled by a hash of some of their keys (each group's bins, or every
    group of a (level, metric, h), in one partition) and reduced partition by partition to
    quantiles give the quantiles of the bins of one merge of everything; the reducer sees
    every bin of each key it is handed."""
    from llmobs_cli.core.partials.finalize import level_quantiles, sketch_values

    qs = (0.5, 0.9, 0.99)
    parts = [partials(b, SPEC) for b in _batches(30, seed=21)]
    want = merge(parts)
    full_bins = want.filter(pl.col("k:part") == "q")
    seen: list[pl.DataFrame] = []

    def reducer(bins: pl.DataFrame) -> pl.DataFrame:
        seen.append(bins)
        return sketch_values(bins, SPEC, qs)

    merger = Merger(pending=2, spill={"q": by}, spill_rows=200, spill_dir=str(tmp_path))
    for p in parts:
        merger.add(p)
    assert merger.spilled_rows > 0
    got = merger.result(reduce={"q": reducer})
    assert got is not None
    assert list(tmp_path.iterdir()) == []
    assert len(seen) > 1  # partition by partition
    for bins in seen:  # every bin of each hashed key handed over is there
        hashed = [c for c in bins.columns if c.startswith("k:") and by.chooses(c)]
        keys = bins.select(hashed).unique()
        whole = full_bins.join(keys, on=hashed, how="semi", nulls_equal=True)
        assert whole.height == bins.height
    assert "q" not in set(got["k:part"])
    for level in range(len(SPEC.levels)):
        a = level_quantiles(want, SPEC, level, "x", qs)
        b = level_quantiles(got, SPEC, level, "x", qs)
        keys = list(SPEC.levels[level])
        if keys:
            a, b = a.sort(keys, nulls_last=True), b.sort(keys, nulls_last=True)
        assert a.equals(b)
    # Other quantiles than the ones kept cannot be read from the reduced rows.
    with pytest.raises(ValueError, match="other quantiles"):
        level_quantiles(got, SPEC, 1, "x", (0.5, 0.75))


def test_deferred_reducer_is_made_from_the_other_parts(tmp_path) -> None:
    """A Deferred reducer is built once every other part is merged (their result, without
    its own part) and then reduces its part; the result holds both."""
    from llmobs_cli.core.partials.finalize import sketch_values

    parts = [partials(b, SPEC) for b in _batches(12, seed=5)]
    seen: list[set[str]] = []

    def make(others: pl.DataFrame | None) -> Any:
        assert others is not None
        seen.append(set(others["k:part"]))
        return lambda bins: sketch_values(bins, SPEC, (0.5,))

    merger = Merger(
        spill={"q": ByKeys(exclude=("k:bin",))}, spill_rows=100, spill_dir=str(tmp_path)
    )
    for p in parts:
        merger.add(p)
    got = merger.result(reduce={"q": Deferred(make)})
    assert seen == [{"sum", "sess"}]
    assert got is not None
    assert set(got["k:part"]) == {"sum", "sess", "qv"}


@pytest.mark.parametrize("spill_rows", [100, None], ids=["spilled", "in-memory"])
def test_reduced_quantiles_on_levels_without_bins_and_groups_without_values(
    spill_rows: int | None, tmp_path
) -> None:
    """Sketch bins reduced to quantiles (on disk or in memory) where only one level is
    sketched, one group has rows but no value (no bins), another one row: each level's
    quantiles are those of the bins of one merge of everything — none for the levels
    without bins and for the group without values, though its sums are there — and the
    one-row group's every quantile is its value (clamped to its min/max)."""
    from llmobs_cli.core.partials.finalize import level_quantiles, level_sums, sketch_values

    spec = PartialSpec(
        levels=((), ("g", "h"), ("h",)),
        sums=("w", "wx"),
        extrema=("x",),
        sketches=(("x", "w"),),
        sketch_levels=(1,),
    )
    qs = (0.5, 0.95)
    batches = _batches(24, seed=8)
    empty = pl.DataFrame(
        {"x": [None, None], "w": [2.0, 3.0], "g": ["nothing", "nothing"], "h": ["x", "x"]},
        schema_overrides={"x": pl.Float64},
    )
    one = pl.DataFrame({"x": [7.25], "w": [4.0], "g": ["one"], "h": [None]})
    extra = [
        f.with_columns(
            (pl.col("w") * pl.col("x")).alias("wx"), pl.lit(0, pl.UInt64).alias("sid")
        ).select(batches[0].columns)
        for f in (empty, one)
    ]
    parts = [partials(b, spec) for b in [*batches[:12], *extra, *batches[12:]]]
    want = merge(parts)
    merger = Merger(
        pending=2,
        spill={"q": ByKeys(exclude=("k:bin",))},
        spill_rows=spill_rows,
        spill_dir=str(tmp_path),
    )
    for p in parts:
        merger.add(p)
    assert (merger.spilled_rows > 0) == (spill_rows is not None)
    got = merger.result(reduce={"q": lambda bins: sketch_values(bins, spec, qs)})
    assert got is not None
    assert set(got["k:part"]) == {"sum", "qv"}
    assert list(tmp_path.iterdir()) == []
    for level, keys in enumerate(spec.levels):
        a = level_quantiles(want, spec, level, "x", qs)
        b = level_quantiles(got, spec, level, "x", qs)
        if level != 1:
            assert a.height == b.height == 0
            continue
        a, b = a.sort(list(keys), nulls_last=True), b.sort(list(keys), nulls_last=True)
        assert a.equals(b)
        assert b.filter(pl.col("g") == "nothing").height == 0
        assert b.filter(pl.col("g") == "one")["x__q"].to_list() == [[7.25, 7.25]]
    sums = level_sums(got, spec, 1).filter(pl.col("g") == "nothing")
    assert sums["sampled"].to_list() == [2]
    assert sums["w"].to_list() == [5.0]
