"""The fitted text features over every row (core/drift/textpass.py): shares and statistics
from the merged partials of the text pass against an independent computation on all
labelled rows, batch-independence, a shift the old text sample could not see, the
language cap, and no files left behind by an interrupted run."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from llmobs_cli.core.drift import engine as engine_mod
from llmobs_cli.core.drift import language as lang_mod
from llmobs_cli.core.drift import run_drift, textpass, topics
from llmobs_cli.core.drift.context import Merged
from llmobs_cli.core.drift.partials import _HASH_SEED, DriftPlan
from llmobs_cli.core.partials import Merger
from llmobs_cli.core.record.config import DriftConfig

NOW = "2026-11-30T00:00:00Z"
CUR0 = datetime(2026, 11, 23, tzinfo=UTC)
BASE0 = datetime(2026, 10, 24, tzinfo=UTC)

EN = [
    "How do I reset the password of my billing account today",
    "Where can I find the invoice for my last order please",
    "My package never arrived and the tracking page shows nothing",
    "Can you explain the warranty policy for damaged products",
    "I would like to cancel my subscription before the renewal date",
]
ES = [
    "¿Cómo puedo cambiar la contraseña de mi cuenta de facturación?",
    "Mi paquete nunca llegó y la página de seguimiento no muestra nada",
    "Quisiera cancelar mi suscripción antes de la fecha de renovación",
    "¿Dónde encuentro la factura de mi último pedido, por favor?",
]
ANSWERS = [
    "You can reset the password from the security page of your account settings.",
    "The invoice is in the orders section; download it as a PDF from there.",
    "I am sorry the package is late. I opened a ticket with the carrier for you.",
    "The warranty covers damaged products for two years from the purchase date.",
    "Your subscription is cancelled; you keep access until the end of the period.",
    "Puede cambiar la contraseña desde la página de seguridad de su cuenta.",
]


def _frame(n_base: int, n_cur: int, *, es_cur: float = 0.0, seed: int = 0) -> pl.DataFrame:
    """One row per session; routes with different storage rates (weights 1, 2, 4)."""
    rng = np.random.default_rng(seed)
    n = n_base + n_cur
    cur = np.r_[np.zeros(n_base, bool), np.ones(n_cur, bool)]
    span_b = (CUR0 - BASE0).total_seconds()
    secs = np.where(cur, rng.uniform(0, 7 * 86400 - 1, n), rng.uniform(0, span_b - 1, n))
    ts = [
        (CUR0 if c else BASE0) + timedelta(seconds=float(s)) for c, s in zip(cur, secs, strict=True)
    ]
    routes = rng.choice(["chat", "search", "support"], n, p=[0.5, 0.3, 0.2])
    rate = np.select([routes == "chat", routes == "search"], [1.0, 0.5], 0.25)
    spanish = rng.random(n) < np.where(cur, 0.15 + es_cur, 0.15)
    prompts = [
        str(rng.choice(ES)) if s else str(rng.choice(EN)) + f" order {i % 7}"
        for i, s in enumerate(spanish)
    ]
    answers = [str(rng.choice(ANSWERS)) for _ in range(n)]
    return pl.DataFrame(
        {
            "timestamp": ts,
            "sample_rate": rate,
            "session_id": [f"s{i}" for i in range(n)],
            "trace_id": [f"t{i}" for i in range(n)],
            "route": routes,
            "status": ["ok"] * n,
            "prompt": prompts,
            "response": answers,
        }
    )


def _windows(frame: pl.DataFrame) -> np.ndarray:
    ts = frame["timestamp"]
    return np.where(ts >= CUR0, 1, np.where(ts >= BASE0, 0, -1))


def _overall(res, name: str) -> dict:
    return next(r for r in res.features if r["feature"] == name and r["group"] is None)


def _run(frame: pl.DataFrame, **cfg) -> object:
    return run_drift(
        frame,
        now=NOW,
        config=DriftConfig(**{"language_sample": 100, **cfg}),
        features=["language", "response_vocabulary", "topic"],
        slices="none",
    )


def test_language_and_vocabulary_shares_equal_numpy_on_every_row() -> None:
    frame = _frame(1500, 700, es_cur=0.2)
    res = _run(frame)
    assert any(n.startswith("language: detected on every row") for n in res.notes)
    win = _windows(frame)
    w = 1.0 / frame["sample_rate"].to_numpy()
    # Language: each row detected on its own (no cache, no dedupe), weighted shares.
    langs = np.array([lang_mod.detect(pl.Series([p]))[0] for p in frame["prompt"].to_list()])
    row = _overall(res, "language")
    for side, key in ((0, "baseline"), (1, "current")):
        sel = win == side
        for lab, share in row[key].items():
            expect = w[sel & (langs == lab)].sum() / w[sel].sum()
            assert share == pytest.approx(expect, rel=1e-9, abs=1e-12)
    assert row["sampled_baseline"] == 1500 and row["sampled_current"] == 700
    assert row["drifted"]
    # Vocabulary: the fitted words (the result's categories), counted with Python's re.
    voc = _overall(res, "response_vocabulary")
    words = [k for k in voc["baseline"] if k != "(other)"]
    counts = np.zeros((frame.height, len(words) + 1))
    for i, text in enumerate(frame["response"].to_list()):
        toks = re.findall(r"[^\W\d_]+", text[:4000].lower())
        for t in toks:
            counts[i, words.index(t) if t in words else len(words)] += 1
    for side, key in ((0, "baseline"), (1, "current")):
        sel = win == side
        tot = (w[sel, None] * counts[sel]).sum(axis=0)
        expect = tot / tot.sum()
        got = np.array([voc[key][k] for k in [*words, "(other)"]])
        np.testing.assert_allclose(got, expect, rtol=1e-9, atol=1e-12)


def test_statistic_from_merged_partials_is_pearson_chi2_with_unit_weights() -> None:
    frame = _frame(1500, 700, es_cur=0.1).with_columns(pl.lit(1.0).alias("sample_rate"))
    res = _run(frame)
    win = _windows(frame)
    langs = np.array([lang_mod.detect(pl.Series([p]))[0] for p in frame["prompt"].to_list()])
    labels = sorted(set(langs))
    table = np.array([[np.sum((win == s) & (langs == lab)) for lab in labels] for s in (0, 1)])
    table = table[:, table.sum(axis=0) > 0]
    chi2, p, _dof, _e = stats.chi2_contingency(table, correction=False)
    row = _overall(res, "language")
    assert row["statistic"] == pytest.approx(chi2, rel=1e-6)
    assert row["p_value"] == pytest.approx(p, rel=1e-6, abs=1e-300)


def test_topics_applied_batch_by_batch_equal_labelling_every_row() -> None:
    frame = _frame(900, 400, es_cur=0.3)
    fit = topics.fit_topics(frame["prompt"].head(300), 4, seed=3)
    assert fit.model is not None
    models = textpass.TextModels(("topic", "language"), {"topic": fit.model})
    plan = DriftPlan(
        features=(),
        by=("route",),
        slices=(),
        current=(CUR0, None),
        baseline=(BASE0, CUR0),
        text=("user",),
    )

    def merged(size: int) -> Merged:
        m = Merger()
        memos: dict[str, textpass.Memo] = {}
        for i, batch in enumerate(frame.iter_slices(size)):
            m.add(textpass.text_parts(batch, plan, models, seq=i, memos=memos))
        out = m.result()
        assert out is not None
        return Merged(out, plan)

    one, many = merged(frame.height), merged(97)
    lab = topics.apply_topics(fit.model, frame["prompt"])
    win = _windows(frame)
    w = 1.0 / frame["sample_rate"].to_numpy()
    routes = frame["route"].to_numpy()
    for m in (one, many):
        for group in (None, {"route": "search"}):
            cats = m.scope("cat", "topic", group)
            for side in (0, 1):
                sel = win == side
                if group is not None:
                    sel &= routes == "search"
                part = cats.filter(pl.col("k:win") == side)
                got = dict(zip(part["k:cat"].cast(pl.Int64), part["sum:w"], strict=True))
                got2 = dict(zip(part["k:cat"].cast(pl.Int64), part["sum:w2"], strict=True))
                for k in range(len(fit.names)):
                    assert got.get(k, 0.0) == pytest.approx(w[sel & (lab == k)].sum(), rel=1e-12)
                    assert got2.get(k, 0.0) == pytest.approx(
                        (w[sel & (lab == k)] ** 2).sum(), rel=1e-12
                    )
    # Labels of the fit's own texts mostly agree with the fit (the out-of-sample map).
    assert np.mean(topics.apply_topics(fit.model, frame["prompt"].head(300)) == fit.labels) > 0.8


def test_multi_chunk_run_equals_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame(1200, 600, es_cur=0.1)
    one = _run(frame)
    monkeypatch.setattr(engine_mod, "BATCH_ROWS", 137)
    many = _run(frame)
    for a, b in zip(one.features, many.features, strict=True):
        assert a["feature"] == b["feature"]
        assert a["statistic"] == pytest.approx(b["statistic"], rel=1e-9)
        assert a["p_value"] == pytest.approx(b["p_value"], rel=1e-9, abs=1e-300)
        assert a["baseline"] == pytest.approx(b["baseline"], rel=1e-9)
        assert a["current"] == pytest.approx(b["current"], rel=1e-9)


def test_shift_outside_the_text_sample_is_now_detected() -> None:
    """Spanish grows only in current-window sessions the bottom-k text sample leaves out:
    tested on the sample (the old way) nothing moved; on every row it is flagged."""
    frame = _frame(2000, 2000)
    cap = 100
    h = frame.select(pl.col("session_id").hash(_HASH_SEED).alias("h"))["h"].to_numpy()
    win = _windows(frame)
    cur_h = np.sort(h[win == 1])
    in_sample = (win == 1) & (h <= cur_h[cap - 1])
    rng = np.random.default_rng(5)
    shift = (win == 1) & ~in_sample & (rng.random(frame.height) < 0.5)
    prompts = [
        ES[i % len(ES)] if s else p
        for i, (s, p) in enumerate(zip(shift, frame["prompt"], strict=True))
    ]
    frame = frame.with_columns(pl.Series("prompt", prompts))
    # The old text sample of the current window saw no Spanish added.
    assert not shift[in_sample].any()
    res = _run(frame, language_sample=cap)
    row = _overall(res, "language")
    assert row["sampled_current"] == 2000
    assert row["drifted"], row
    assert row["current"]["es"] > row["baseline"]["es"] + 0.3


def test_caps_label_a_hash_sample_of_sessions_and_say_so() -> None:
    frame = _frame(3000, 1000, es_cur=0.4)
    res = _run(frame, language_rows=1000)
    row = _overall(res, "language")
    note = next(n for n in res.notes if n.startswith("language: detected on"))
    assert "hash falls in the lowest" in note and "all 1,000 current rows" in note
    # About a third of the baseline's 3,000 sessions (a hash threshold, not an exact count).
    assert 800 <= row["sampled_baseline"] <= 1200
    assert row["sampled_current"] == 1000
    assert row["drifted"]
    # Topics and vocabulary still read every row.
    assert _overall(res, "topic")["sampled_baseline"] == 3000
    # Their own cap: the same hash sample of sessions (nested in the language's).
    res = _run(frame, language_rows=500, text_rows=1000)
    for name in ("topic", "response_vocabulary"):
        assert 800 <= _overall(res, name)["sampled_baseline"] <= 1200
        assert _overall(res, name)["sampled_current"] == 1000
    assert 350 <= _overall(res, "language")["sampled_baseline"] <= 650
    assert 350 <= _overall(res, "language")["sampled_current"] <= 650
    assert any("past drift.text_rows" in n for n in res.notes)
    assert _overall(res, "language")["drifted"]


def test_small_input_keeps_the_sample_path() -> None:
    frame = _frame(300, 200, es_cur=0.3)
    res = _run(frame, language_sample=1000)
    assert not any("every row of both windows" in n for n in res.notes)
    assert _overall(res, "language")["sampled_baseline"] == 300


def test_interrupted_text_pass_leaves_no_files(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    path = tmp_path / "t.parquet"
    _frame(1500, 700, es_cur=0.2).write_parquet(path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    calls = {"n": 0}
    real = textpass.text_parts

    def boom(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    from llmobs_cli.core.ingest.readers import stream as stream_mod

    monkeypatch.setattr(textpass, "text_parts", boom)
    monkeypatch.setattr(stream_mod, "MIN_BATCH", 300)
    monkeypatch.setattr(stream_mod, "MAX_BATCH", 300)
    with pytest.raises(KeyboardInterrupt):
        run_drift(
            [path],
            now=NOW,
            config=DriftConfig(language_sample=100),
            features=["language", "topic"],
            slices="none",
            memory=1,
        )
    assert calls["n"] == 2
    assert list(scratch.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.parquet", "tmp"]


def test_engine_path_computes_the_same_text_partials(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--engine spark|ray`` runs the text pass as a job of the same batch function; with
    a stand-in engine (local batches, the engines' group-by merge) it equals the local run."""
    from llmobs_cli.core.engines import EngineSettings
    from llmobs_cli.core.engines import run as run_mod
    from llmobs_cli.core.ingest.readers.formats import ReadOptions
    from llmobs_cli.core.ingest.readers.stream import Stream
    from llmobs_cli.core.partials import merge

    def fake(settings, paths, columns, fn, *, since, until, required=(), **kw):
        frames = [
            fn(b)
            for b in Stream(
                paths,
                columns=columns,
                since=since,
                until=until,
                options=ReadOptions(keep_duplicates=kw.get("keep_duplicates", False)),
            )
        ]
        frames = [f.drop("k:metric") for f in frames if f.height]
        merged = merge(frames).with_columns(pl.lit(None, pl.String).alias("k:metric"))
        return run_mod.EngineRun(merged)

    path = tmp_path / "t.parquet"
    _frame(1500, 700, es_cur=0.2).write_parquet(path)
    kwargs = {
        "now": NOW,
        "config": DriftConfig(language_sample=100),
        "features": ["language", "topic", "response_vocabulary"],
        "slices": "none",
    }
    local = run_drift([path], **kwargs)
    monkeypatch.setattr(run_mod, "merged_partials", fake)
    eng = run_drift([path], engine=EngineSettings(name="spark"), **kwargs)
    assert any("every row of both windows" in n for n in eng.notes)
    for a, b in zip(local.features, eng.features, strict=True):
        assert (a["feature"], a["group"]) == (b["feature"], b["group"])
        assert a["sampled_baseline"] == b["sampled_baseline"] == 1500
        assert a["statistic"] == pytest.approx(b["statistic"], rel=1e-9)
        assert a["current"] == pytest.approx(b["current"], rel=1e-9)


def test_text_pass_drops_duplicates_as_the_first_pass(tmp_path) -> None:
    """A call read twice is counted once by the text pass too (the same Stream rules)."""
    frame = _frame(1500, 700, es_cur=0.2).with_columns(
        pl.format("sp{}", pl.int_range(pl.len())).alias("span_id")
    )
    path = tmp_path / "dup.parquet"
    pl.concat([frame, frame.head(300)]).write_parquet(path)
    res = run_drift(
        [path],
        now=NOW,
        config=DriftConfig(language_sample=100),
        features=["language", "topic", "response_vocabulary"],
        slices="none",
    )
    assert res.baseline.sampled + res.current.sampled == 2200
    for name in ("language", "topic", "response_vocabulary"):
        row = _overall(res, name)
        assert (row["sampled_baseline"], row["sampled_current"]) == (1500, 700), name


def test_rows_past_every_cap_are_not_prepared_and_change_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Past every feature's hash threshold a row gets no label, so the text pass drops it
    before preparing its text; the figures equal those of preparing every row."""
    frame = _frame(3000, 1000, es_cur=0.4)
    cut = _run(frame, language_rows=500, text_rows=1000)
    seen: list[int] = []
    real_text = textpass._text

    def counting(rows: pl.DataFrame, plan: object) -> pl.DataFrame:
        seen.append(rows.height)
        return real_text(rows, plan)

    monkeypatch.setattr(textpass, "_text", counting)
    _run(frame, language_rows=500, text_rows=1000)
    assert 0 < sum(seen) < 3000 + 1000  # rows past both caps were dropped first
    seen.clear()
    monkeypatch.setattr(textpass, "_labelled", lambda models: pl.lit(True))
    every = _run(frame, language_rows=500, text_rows=1000)
    assert sum(seen) == 4000
    for name in ("language", "topic", "response_vocabulary"):
        a, b = _overall(cut, name), _overall(every, name)
        assert a == b, name
