"""The fitted text features over every row: drift's second, text-only pass.

Language, topics and the response vocabulary need a fit or a model, which the first pass
cannot apply while it streams: the topics and the vocabulary are fitted on the text
sample (a seeded, bounded sample of whole sessions of both windows, pooled; rows keep
their weights ``1/sample_rate``). Once fitted, :func:`text_parts` applies the fits to one
batch of rows and reduces the labels to additive partials, so a second pass over only the
columns these features read (the text, the window and weight columns, the groups) gives
exact totals over every row of both windows, merged by the same group-by-sum as the first
pass (:class:`llmobs_cli.core.partials.Merger`):

* part ``cat`` (feature ``language``, ``topic``, ``response_topic``): per window, level,
  group and category the rows, Σw and Σw² — the shape the categorical features have, so
  the same merged-partials test reads them (:meth:`.context._Context._shares_binned`);
  a topic's category is its index in the fit;
* part ``voc`` (``response_vocabulary``): per window, level and group, with ``e`` a
  response's vector of counts (each top word, the other words, all words): Σw·eᵢ in
  ``sum:w`` (``k:bin`` = -1) and Σw²·eᵢ·eⱼ in ``sum:w2`` (``k:bin`` = j), ``k:cat`` = i;
  and ``k:cat`` = ``n``: the rows with words, their Σw and Σw². These are the sufficient
  statistics of the share test (:class:`.stats.wald_shares.ShareStats`).

Language detection is a Python call per distinct text (~60 µs), so it is the one cost
that grows with distinct texts rather than with columnar work: a run remembers the texts
it detected (:class:`Memo`, as it does topics and word counts), and above
``drift.language_rows`` rows in a window, only the rows of the sessions whose hash falls
below ``language_rows / rows`` of the hash range are detected — an equal-probability
sample of whole sessions, whose rows keep their weights (shares are ratios of weighted
sums, so the common inclusion probability cancels) — see :func:`hash_limits`. Topics and
the vocabulary cost ~10–40 µs a distinct text (tokens, hashing, projection), so they are
capped the same way at ``drift.text_rows`` rows per window.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import polars as pl

from llmobs_cli.core.drift import language as lang_mod
from llmobs_cli.core.drift import topics as topic_mod
from llmobs_cli.core.drift.partials import (
    CL,
    TEXT_CHARS,
    DriftPlan,
    _text,
    conform,
    gcol,
    kcol,
    tag_rows,
)
from llmobs_cli.core.drift.result import BASE, CUR, WIN
from llmobs_cli.core.drift.stats import single_thread_blas
from llmobs_cli.core.record.weights import W

_MAX = (1 << 64) - 1
#: The share features whose labels become ``cat`` partials.
SHARES = ("language", "topic", "response_topic")
VOCAB = "response_vocabulary"
#: Characters of a response its words are counted in (as the fit does).
VOCAB_CHARS = TEXT_CHARS
#: Characters of a user text its language is detected on, and of a text its topic is
#: computed on (as the fits do).
LANG_CHARS = 300
TOPIC_CHARS = 2000
_WORD = r"[^\W\d_]+"


@dataclass
class TextModels:
    """What the second pass applies (plain data: numpy arrays, strings, ints).

    ``topics`` maps ``topic``/``response_topic`` to its fit; ``vocabulary`` is the top
    words of the responses (the categories of ``response_vocabulary``, the rest folding
    into "(other)"); ``limits`` per feature the cluster-hash threshold per window above
    which a row is not labelled (absent: every row)."""

    features: tuple[str, ...]
    topics: dict[str, topic_mod.TopicModel] = field(default_factory=dict)
    vocabulary: tuple[str, ...] = ()
    limits: dict[str, dict[int, int]] = field(default_factory=dict)


#: Distinct texts a :class:`Memo` remembers per feature (bounded memory: 64-bit hashes
#: and small results, ~30 MB for the vocabulary's 33 counts).
MEMO_TEXTS = 100_000
_MEMO_SEED = 29


class Memo:
    """Per-text results remembered across the batches of a run, keyed by a 64-bit hash of
    the text, so a text seen again (templates, retries, FAQs) is not detected, tokenised
    or projected again. Bounded: past :data:`MEMO_TEXTS` texts it keeps only the current
    batch's. ``computed`` counts the texts it had to compute."""

    def __init__(self, limit: int = MEMO_TEXTS) -> None:
        self.limit = limit
        self.frame: pl.DataFrame | None = None
        self.computed = 0

    def lookup(self, text: pl.Series, compute: Callable[[pl.Series], pl.DataFrame]) -> pl.DataFrame:
        """``compute``'s columns for each row of ``text`` (null rows null) and the text's
        hash ``_h``; ``compute`` maps distinct texts to one row each."""
        rows = pl.DataFrame({"t": text.cast(pl.String)}).with_columns(
            pl.col("t").hash(_MEMO_SEED).alias("_h")
        )
        uniq = rows.drop_nulls("t").unique("_h", keep="first", maintain_order=True)
        new = uniq if self.frame is None else uniq.join(self.frame, on="_h", how="anti")
        if new.height:
            got = compute(new["t"])
            self.computed += new.height
            add = pl.concat([new.select("_h"), got], how="horizontal")
            if self.frame is None:
                self.frame = add
            elif self.frame.height + add.height > self.limit:
                keep = self.frame.join(uniq.select("_h"), on="_h", how="semi")
                self.frame = pl.concat([keep, add])
            else:
                self.frame = pl.concat([self.frame, add])
        assert self.frame is not None or not uniq.height
        if self.frame is None:
            return rows.select("_h")
        out = rows.join(self.frame, on="_h", how="left", maintain_order="left")
        values = [c for c in self.frame.columns if c != "_h"]
        return out.select(
            "_h", *(pl.when(pl.col("t").is_not_null()).then(pl.col(c)).alias(c) for c in values)
        )


def hash_limits(rows: dict[int, int], cap: int) -> dict[int, int]:
    """Per window with more than ``cap`` rows, the cluster-hash threshold keeping about
    ``cap`` of them (every session whose hash is at most ``cap / rows`` of the range)."""
    out = {}
    for side, n in rows.items():
        if n > cap:
            out[side] = int(_MAX * (cap / n))
    return out


def pass_columns(columns: Sequence[str], plan: DriftPlan) -> list[str]:
    """The columns the text pass reads: of the first pass's, the window, weight and
    cluster columns, the group fields, the text and (topics) an embedding."""
    from llmobs_cli.core.record.fields import base_column

    wanted = {"timestamp", "sample_rate", "session_id", "trace_id"}
    wanted |= {base_column(f) for f in plan.group_fields}
    if "user" in plan.text:
        wanted |= {"prompt", "messages"}
    if "response" in plan.text:
        wanted.add("response")
    if plan.embedding:
        wanted |= {"embedding", "metadata"}
    return [c for c in columns if c in wanted]


def vocab_counts(texts: pl.Series, words: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per text: the count of each of ``words`` and of the other words (n × (K+1)), and
    all words (n), over its first :data:`VOCAB_CHARS` characters, lower-cased letter
    runs — computed once per distinct text."""
    u_cnt, u_tot, inv = _distinct_counts(texts, words)
    counts = np.zeros((inv.size, len(words) + 1))
    totals = np.zeros(inv.size)
    ok = inv >= 0
    counts[ok] = u_cnt[inv[ok]]
    totals[ok] = u_tot[inv[ok]]
    return counts, totals


def _distinct_counts(
    texts: pl.Series, words: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`vocab_counts` of each distinct text, and each row's distinct text (-1 for
    null)."""
    k = len(words)
    text = texts.cast(pl.String).str.slice(0, VOCAB_CHARS)
    uniq = text.drop_nulls().unique()
    u_tot = np.zeros(uniq.len())
    u_cnt = np.zeros((uniq.len(), k + 1))
    toks = (
        pl.DataFrame({"t": uniq})
        .with_row_index("doc")
        .select("doc", pl.col("t").str.to_lowercase().str.extract_all(_WORD).alias("tok"))
        .explode("tok")
        .drop_nulls("tok")
    )
    if toks.height:
        tot = toks.group_by("doc").agg(pl.len().alias("n"))
        u_tot[tot["doc"].to_numpy()] = tot["n"].to_numpy()
        lookup = pl.DataFrame(
            {"tok": list(words), "k": np.arange(k, dtype=np.int64)},
            schema={"tok": pl.String, "k": pl.Int64},
        )
        hits = toks.join(lookup, on="tok").group_by("doc", "k").agg(pl.len().alias("n"))
        u_cnt[hits["doc"].to_numpy(), hits["k"].to_numpy()] = hits["n"].to_numpy()
        u_cnt[:, k] = u_tot - u_cnt[:, :k].sum(axis=1)
    inv = (
        pl.DataFrame({"t": text})
        .join(
            pl.DataFrame({"t": uniq}).with_row_index("u"), on="t", how="left", maintain_order="left"
        )["u"]
        .cast(pl.Int64)
        .fill_null(-1)
        .to_numpy()
    )
    return u_cnt, u_tot, inv


def embedding_matrix(col: pl.Series, dim: int) -> np.ndarray:
    """Rows of an embedding list column as an (n × dim) array; NaN rows where the length
    is not ``dim``."""
    arr = np.full((col.len(), dim), np.nan)
    good = (col.list.len() == dim).fill_null(False)
    ok = good.to_numpy()
    if ok.any():
        arr[ok] = np.vstack(col.filter(good).to_list())
    return arr


def labels(
    frame: pl.DataFrame, models: TextModels, memos: dict[str, Memo] | None = None
) -> dict[str, pl.Series]:
    """Each share feature's label per row of ``frame`` (a text frame: window, cluster hash,
    ``user_text``/``response``/``embedding``), null where it has none. ``memos`` (one per
    feature) remember the texts of earlier batches."""
    memos = {} if memos is None else memos
    out: dict[str, pl.Series] = {}
    if "language" in models.features and "user_text" in frame.columns:
        text = _within(frame, frame["user_text"].str.slice(0, LANG_CHARS), models, "language")
        memo = memos.setdefault("language", Memo())
        got = memo.lookup(text, lambda t: pl.DataFrame({"v": lang_mod.detect(t, LANG_CHARS)}))
        out["language"] = got["v"].alias("language") if "v" in got.columns else _nulls(frame)
    for name, model in models.topics.items():
        if name not in models.features:
            continue
        if model.embedding:
            if "embedding" not in frame.columns or not isinstance(
                frame.schema["embedding"], pl.List
            ):
                lab = pl.Series(name, np.full(frame.height, -1, dtype=np.int64))
            else:
                emb = embedding_matrix(frame["embedding"], model.dim)
                lab = pl.Series(name, topic_mod.apply_embeddings(model, emb))
        else:
            col = "response" if name == "response_topic" else "user_text"
            if col not in frame.columns:
                continue
            memo = memos.setdefault(name, Memo())
            text = _within(frame, frame[col].str.slice(0, TOPIC_CHARS), models, name)
            got = memo.lookup(text, partial(_topics_of, model))
            lab = got["v"].fill_null(-1) if "v" in got.columns else _nulls(frame).fill_null(-1)
        out[name] = (
            pl.select(pl.when(lab >= 0).then(lab.cast(pl.String)).alias(name))
            .to_series()
            .alias(name)
        )
    return out


def _within(frame: pl.DataFrame, text: pl.Series, models: TextModels, name: str) -> pl.Series:
    """``text`` with the rows above ``name``'s hash thresholds set to null (not labelled)."""
    limits = models.limits.get(name)
    if not limits:
        return text
    cond = pl.lit(True)
    for side, lim in limits.items():
        cond = cond & ~((pl.col(WIN) == side) & (pl.col(CL) > lim))
    return frame.select(pl.when(cond).then(text).alias("t"))["t"]


def _topics_of(model: topic_mod.TopicModel, texts: pl.Series) -> pl.DataFrame:
    return pl.DataFrame({"v": topic_mod.apply_topics(model, texts)})


def _nulls(frame: pl.DataFrame) -> pl.Series:
    return pl.Series("v", [None] * frame.height, dtype=pl.String)


def text_parts(
    batch: pl.DataFrame,
    plan: DriftPlan,
    models: TextModels,
    *,
    seq: int = 0,
    fixed_window: int | None = None,
    memos: dict[str, Memo] | None = None,
) -> pl.DataFrame:
    """One batch's partials of the fitted text features (module docstring); ``memos``
    remember per-text results across a run's batches (:class:`Memo`)."""
    memos = {} if memos is None else memos
    tagged = tag_rows(batch, plan, seq=seq, fixed_window=fixed_window)
    frame = _text(tagged.filter(pl.col(WIN).is_not_null() & _labelled(models)).collect(), plan)
    if not frame.height:
        return conform(pl.DataFrame({"k:part": ["cat"]}).head(0), plan)
    frames: list[pl.DataFrame] = []
    labs = labels(frame, models, memos)
    if labs:
        frames.append(_share_parts(frame.select(WIN, W, *_gcols(plan)).with_columns(**labs), plan))
    if VOCAB in models.features and "response" in frame.columns:
        memo = memos.setdefault(VOCAB, Memo())
        text = _within(frame, frame["response"].str.slice(0, VOCAB_CHARS), models, VOCAB)
        frames.append(_vocab_parts(frame, text, plan, models.vocabulary, memo))
    frames = [f for f in frames if f.height]
    if not frames:
        return conform(pl.DataFrame({"k:part": ["cat"]}).head(0), plan)
    return conform(pl.concat(frames, how="diagonal_relaxed"), plan)


def _labelled(models: TextModels) -> pl.Expr:
    """True for the rows some feature labels: a row above every feature's hash threshold
    in its window gets no label (:func:`_within`) and adds nothing to any partial, so its
    text is never prepared (past the caps, most rows of a large window)."""
    keep = pl.lit(True)
    if any(m.embedding for n, m in models.topics.items() if n in models.features):
        return keep  # embedding topics label every row
    for side in (BASE, CUR):
        lims = [models.limits.get(f, {}).get(side) for f in models.features]
        if lims and all(lim is not None for lim in lims):
            top = max(lim for lim in lims if lim is not None)
            keep = keep & ~((pl.col(WIN) == side) & (pl.col(CL) > top))
    return keep


def _gcols(plan: DriftPlan) -> list[str]:
    return [gcol(f) for f in plan.group_fields]


def _aggs() -> list[pl.Expr]:
    w = pl.col(W)
    return [
        pl.len().cast(pl.Int64).alias("sum:n"),
        w.sum().alias("sum:w"),
        (w * w).sum().alias("sum:w2"),
    ]


def _share_parts(frame: pl.DataFrame, plan: DriftPlan) -> pl.DataFrame:
    lf = frame.lazy()
    queries = []
    for li, level in enumerate(plan.levels):
        keys = [WIN, *(gcol(f) for f in level)]
        names = {WIN: "k:win", **{gcol(f): kcol(f) for f in level}}
        for feat in SHARES:
            if feat not in frame.columns:
                continue
            q = (
                lf.filter(pl.col(feat).is_not_null())
                .group_by([*keys, feat])
                .agg(_aggs())
                .rename({**names, feat: "k:cat"})
                .with_columns(
                    pl.lit("cat").alias("k:part"),
                    pl.lit(feat).alias("k:feat"),
                    pl.lit(li, pl.Int32).alias("k:level"),
                )
            )
            queries.append(q)
    if not queries:
        return pl.DataFrame()
    return pl.concat(pl.collect_all(queries), how="diagonal_relaxed")


def _vocab_parts(
    frame: pl.DataFrame, text: pl.Series, plan: DriftPlan, words: Sequence[str], memo: Memo
) -> pl.DataFrame:
    d = len(words) + 2
    ecols = [f"e{i}" for i in range(d)]

    def vectors(texts: pl.Series) -> pl.DataFrame:
        # e per distinct response: the counts of each category, then all words.
        cnt, tot = vocab_counts(texts, words)
        e = np.column_stack([cnt, tot])
        return pl.DataFrame({c: e[:, i] for i, c in enumerate(ecols)})

    got = memo.lookup(text, vectors)
    if ecols[-1] not in got.columns:
        return pl.DataFrame()
    rows = pl.concat([frame.select(WIN, W, *_gcols(plan)), got], how="horizontal")
    rows = rows.filter(pl.col(ecols[-1]) > 0)
    if not rows.height:
        return pl.DataFrame()
    ii, jj = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
    cats = [*(str(i) for i in ii.ravel()), *(str(i) for i in range(d)), "n"]
    bins = [*jj.ravel().tolist(), *([-1] * d), -1]
    out = []
    for li, level in enumerate(plan.levels):
        keys = [WIN, *(gcol(f) for f in level)]
        # Rows of one distinct response in one group add up before the products.
        per = rows.group_by([*keys, "_h"]).agg(*_aggs(), pl.col(ecols).first())
        for key, part_rows in per.partition_by(keys, as_dict=True, maintain_order=True).items():
            eu = part_rows.select(ecols).to_numpy()
            sw = part_rows["sum:w"].to_numpy()
            sw2 = part_rows["sum:w2"].to_numpy()
            s = sw @ eu
            with single_thread_blas():
                m = eu.T @ (eu * sw2[:, None])
            values = dict(zip(keys, key, strict=True))
            part = pl.DataFrame(
                {
                    "k:cat": cats,
                    "k:bin": bins,
                    "sum:n": [*([None] * (d * d + d)), int(part_rows["sum:n"].sum())],
                    "sum:w": [*([None] * (d * d)), *s.tolist(), float(sw.sum())],
                    "sum:w2": [*m.ravel().tolist(), *([None] * d), float(sw2.sum())],
                },
                schema={
                    "k:cat": pl.String,
                    "k:bin": pl.Int64,
                    "sum:n": pl.Int64,
                    "sum:w": pl.Float64,
                    "sum:w2": pl.Float64,
                },
            ).with_columns(
                pl.lit("voc").alias("k:part"),
                pl.lit(VOCAB).alias("k:feat"),
                pl.lit(int(values[WIN]), pl.Int8).alias("k:win"),
                pl.lit(li, pl.Int32).alias("k:level"),
                *(pl.lit(values[gcol(f)], pl.String).alias(kcol(f)) for f in level),
            )
            out.append(part)
    return pl.concat(out, how="diagonal_relaxed")


def vocab_stats(
    frame: pl.DataFrame, k: int
) -> dict[int, tuple[np.ndarray, np.ndarray, dict[str, float]]]:
    """From one scope's merged ``voc`` rows: per window Σw·e (K+2), Σw²·e·eᵀ and the rows'
    n, Σw, Σw² (``k`` = the categories, top words and "(other)")."""
    d = k + 1
    out: dict[int, Any] = {}
    for side in (BASE, CUR):
        part = frame.filter(pl.col("k:win") == side)
        s = np.zeros(d)
        m = np.zeros((d, d))
        sums = {"n": 0.0, "w": 0.0, "w2": 0.0}
        if part.height:
            first = part.filter((pl.col("k:bin") == -1) & (pl.col("k:cat") != "n"))
            ci = first["k:cat"].cast(pl.Int64).to_numpy()
            np.add.at(s, ci, first["sum:w"].fill_null(0.0).to_numpy())
            second = part.filter(pl.col("k:bin") >= 0)
            np.add.at(
                m,
                (second["k:cat"].cast(pl.Int64).to_numpy(), second["k:bin"].to_numpy()),
                second["sum:w2"].fill_null(0.0).to_numpy(),
            )
            nrow = part.filter(pl.col("k:cat") == "n")
            sums = {
                "n": float(nrow["sum:n"].sum()),
                "w": float(nrow["sum:w"].sum()),
                "w2": float(nrow["sum:w2"].sum()),
            }
        out[side] = (s, m, sums)
    return out


def describe(
    merged: Any, models: TextModels, rows: dict[int, int], sample: pl.DataFrame
) -> list[str]:
    """One note per text feature saying which rows fed its test (``merged``: the text
    pass's :class:`~.context.Merged` partials; ``rows``: each window's rows)."""
    fit = f"the text sample ({sample.height:,} rows of whole sessions, both windows pooled)"
    out = []
    for name in models.features:
        if name == VOCAB:
            part = merged.scope("voc", name, None).filter(pl.col("k:cat") == "n")
        else:
            part = merged.scope("cat", name, None)
        got = {
            side: int(part.filter(pl.col("k:win") == side)["sum:n"].sum()) for side in (BASE, CUR)
        }
        what = {"language": "a language", VOCAB: "words"}.get(name, "text")
        counted = f"{got[BASE]:,} baseline and {got[CUR]:,} current rows with {what}"
        limits = models.limits.get(name) or {}
        knob = "drift.language_rows" if name == "language" else "drift.text_rows"
        if not limits:
            rows_used = "every row of both windows"
        else:
            parts = []
            for side, label in ((BASE, "baseline"), (CUR, "current")):
                lim = limits.get(side)
                if lim is None:
                    parts.append(f"all {rows[side]:,} {label} rows")
                else:
                    parts.append(
                        f"the {label} rows of the sessions whose hash falls in the lowest "
                        f"{100.0 * lim / _MAX:.2f} % of its range (of {rows[side]:,} rows)"
                    )
            rows_used = (
                " and ".join(parts) + f" (an equal-probability sample of sessions per window "
                f"past {knob}; rows keep their weights)"
            )
        if name == "language":
            out.append(
                f"language: detected on {rows_used}: {counted}; clustering design effect "
                "from the text sample"
            )
        elif name == VOCAB:
            out.append(
                f"{name}: the {len(models.vocabulary)} commonest words fitted on {fit}, "
                f"then counted in {rows_used}: {counted}"
            )
        else:
            out.append(
                f"{name}: topics fitted on {fit}; the nearest topic given to {rows_used}: {counted}"
            )
    return out
