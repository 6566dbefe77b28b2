"""Per-feature work over both windows: the registered test of each feature's kind in every
scope (overall, each ``--by`` group, each slice), row by row on the cluster sample when it
holds every row, else from merged partials (:mod:`.binned`); the fitted text features on
the text sample; and the choice of groups and slices from exact partials."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from llmobs_cli.core.drift import binned, textpass
from llmobs_cli.core.drift import language as lang_mod
from llmobs_cli.core.drift import topics as topic_mod
from llmobs_cli.core.drift.binned import Bins
from llmobs_cli.core.drift.features import FITTED, STANDARD, FeatureSpec
from llmobs_cli.core.drift.partials import CL, SEQ, DriftPlan, gcol, kcol, ncol, vcol
from llmobs_cli.core.drift.result import BASE, CUR, MAX_CATEGORIES, OTHER, VOCAB_TOKENS, WIN
from llmobs_cli.core.drift.rows import (
    _fill,
    _histogram,
    _numeric_summary,
    _row,
    _row_sums,
    _share_summary,
)
from llmobs_cli.core.drift.slices import MAX_SLICES, MIN_SLICE_SHARE, _gkey
from llmobs_cli.core.drift.stats import BY_KIND, TESTS, rng_for
from llmobs_cli.core.drift.stats.ks import _cluster_deff
from llmobs_cli.core.drift.stats.wald_shares import ShareStats, from_codes, from_counts
from llmobs_cli.core.record.config import DriftConfig
from llmobs_cli.core.record.weights import W
from llmobs_cli.errors import InputError


class Merged:
    """The merged drift partials, split by part and feature for quick lookups."""

    def __init__(self, frame: pl.DataFrame, plan: DriftPlan) -> None:
        self.plan = plan
        self.levels = plan.levels
        self._empty = frame.head(0)
        self._parts: dict[tuple[str, str], pl.DataFrame] = {
            (str(p), str(f)): df
            for (p, f), df in frame.partition_by(["k:part", "k:feat"], as_dict=True).items()
        }

    def part(self, part: str, feat: str = "") -> pl.DataFrame:
        return self._parts.get((part, feat), self._empty)

    def level_of(self, group: dict[str, Any] | None) -> int:
        return 0 if group is None else self.levels.index(tuple(group))

    def scope(self, part: str, feat: str, group: dict[str, Any] | None) -> pl.DataFrame:
        """The rows of ``part`` for ``feat`` in one scope (overall or one group)."""
        df = self.part(part, feat)
        if not df.height:
            return df
        cond = pl.col("k:level") == self.level_of(group)
        for f, v in (group or {}).items():
            cond = cond & (pl.col(kcol(f)).fill_null(NONE) == v)
        return df.filter(cond)

    def moments(self, feat: str, group: dict[str, Any] | None) -> dict[int, dict[str, float]]:
        df = self.scope("mom", feat, group)
        out = {}
        for side in (BASE, CUR):
            r = df.filter(pl.col("k:win") == side)
            out[side] = {
                "n": float(r["sum:n"].sum()) if r.height else 0.0,
                "w": float(r["sum:w"].sum()) if r.height else 0.0,
                "w2": float(r["sum:w2"].sum()) if r.height else 0.0,
                "wx": float(r["sum:wx"].sum()) if r.height else 0.0,
                "wx2": float(r["sum:wx2"].sum()) if r.height else 0.0,
                "min": float(r["min:x"].min()) if r.height else math.nan,  # type: ignore[arg-type]
                "max": float(r["max:x"].max()) if r.height else math.nan,  # type: ignore[arg-type]
            }
        return out


#: How a missing group value is named.
NONE = "(none)"


def response_words(text: pl.Series) -> pl.DataFrame:
    """One row per word occurrence of each text (``doc``: its position, ``tok``: the word,
    lowercased letters only) in its first 4,000 characters: what the response vocabulary
    counts, for the fit and for the test alike."""
    return (
        pl.DataFrame({"t": text.str.slice(0, 4000)})
        .with_row_index("doc")
        .select("doc", pl.col("t").str.to_lowercase().str.extract_all(r"[^\W\d_]+").alias("tok"))
        .explode("tok")
        .drop_nulls("tok")
    )


class _Context:
    """Tests of every feature over both windows.

    ``both`` is the cluster sample (:mod:`.sample`): every row of both windows when
    ``merged`` is None (``exact``), else a bounded sample of whole clusters while the
    tests read ``merged`` partials (:mod:`.binned`). Groups are given (chosen from exact
    partials by :func:`choose_groups`), each a mask over ``both``.
    """

    def __init__(
        self,
        both: pl.DataFrame,
        cfg: DriftConfig,
        notes: list[str],
        groups: list[dict[str, Any]],
        say: Callable[[str], None],
        *,
        merged: Merged | None = None,
        slice_keys: set[str] | None = None,
        presence: dict[str, tuple[int, int]] | None = None,
        cost_note: str | None = None,
        absent: set[str] | None = None,
    ) -> None:
        self.both = both
        self.merged = merged
        self.cfg = cfg
        self.notes = notes
        self.say = say
        self.slice_keys = slice_keys or set()
        self.presence = presence or {}
        self.cost_note = cost_note
        self.absent = absent or set()
        self.win = both[WIN].to_numpy() if both.height else np.zeros(0, dtype=np.int8)
        self.w = both[W].to_numpy().astype(np.float64) if both.height else np.zeros(0)
        self.cl = self._clusters()
        self.groups = [(g, self._mask(g)) for g in groups]
        self.distributions: dict[str, dict[str, Any]] = {}
        # Fits of the text features on ``both`` (the text sample), made once.
        self._fits: dict[str, topic_mod.Topics] = {}
        self._vocab: list[str] | None = None

    # -- clusters ----------------------------------------------------------------------
    def _clusters(self) -> np.ndarray | None:
        """Integer cluster id per row: the session, else the trace (rows of one session
        share language, topic and style, so they are not independent draws)."""
        if CL not in self.both.columns or self.both.height == 0:
            return None
        ids = self.both.select(pl.col(CL).rank("dense").alias("c"))["c"]
        if ids.max() == ids.len():
            return None  # every row its own cluster: the row formulas are exact
        return ids.to_numpy().astype(np.int64) - 1

    def _cl(self, mask: np.ndarray) -> np.ndarray | None:
        return None if self.cl is None else self.cl[mask]

    # -- groups ------------------------------------------------------------------------
    def _mask(self, group: dict[str, Any]) -> np.ndarray:
        cond = pl.lit(True)
        for f, v in group.items():
            cond = cond & (pl.col(gcol(f)).fill_null(NONE) == v)
        if not self.both.height:
            return np.zeros(0, dtype=bool)
        return self.both.select(cond.alias("m"))["m"].to_numpy()

    def _scopes(self) -> list[tuple[dict[str, Any] | None, np.ndarray | None]]:
        return [(None, None), *self.groups]

    # -- rows --------------------------------------------------------------------------
    def feature_rows(self, spec: FeatureSpec) -> list[dict[str, Any]]:
        missing = [c for c in spec.columns if c in self.absent]
        if missing and len(missing) == len(spec.columns):
            self.notes.append(f"{spec.name}: skipped, the data has no {missing[0]} field")
            return []
        if spec.name in FITTED:
            return self._fitted(spec)
        if spec.name == "cost_usd" and self.cost_note:
            self.notes.append(self.cost_note)
        nonnull, numeric = self.presence.get(spec.name, (1, 1))
        kind = spec.kind
        if kind == "auto":
            kind = "numeric" if nonnull and numeric >= 0.95 * nonnull else "categorical"
            spec = FeatureSpec(spec.name, kind, spec.layer, spec.columns, spec.unit, spec.expr)
        if nonnull == 0:
            what = "log-probs" if spec.columns == ("logprobs",) else "values"
            self.notes.append(f"{spec.name}: skipped, no {what} in either window")
            return []
        col = ncol(spec.name) if spec.kind == "auto" and kind == "numeric" else vcol(spec.name)
        values = self.both[col] if self.both.height else pl.Series(col, [], pl.Float64)
        if self.merged is not None:
            if kind == "numeric":
                return self._numeric_binned(spec, values.cast(pl.Float64).to_numpy())
            return self._shares_binned(spec, values, rate=kind == "rate")
        if kind == "numeric":
            return self._numeric(spec, values.cast(pl.Float64).to_numpy())
        if kind == "rate":
            v = values.cast(pl.Float64).to_numpy()
            codes = np.where(np.isnan(v), -1, (v > 0).astype(np.int64))
            return self._shares(spec, codes, ["no", "yes"], rate=True)
        codes, labels = self._categories(values.cast(pl.String))
        return self._shares(spec, codes, labels)

    def _categories(self, values: pl.Series) -> tuple[np.ndarray, list[str]]:
        """Codes of the top categories by pooled weight; the rest fold into (other)."""
        frame = pl.DataFrame({"v": values, "w": self.w})
        top = (
            frame.drop_nulls("v")
            .group_by("v")
            .agg(pl.col("w").sum())
            .sort(["w", "v"], descending=[True, False])
        )
        labels = top["v"].head(MAX_CATEGORIES).to_list()
        if top.height > MAX_CATEGORIES:
            labels.append(OTHER)
        return self._codes(values, labels), labels

    def _codes(self, values: pl.Series, labels: list[str]) -> np.ndarray:
        frame = pl.DataFrame({"v": values.cast(pl.String)})
        lookup = pl.DataFrame(
            {"v": labels[:MAX_CATEGORIES], "c": np.arange(min(len(labels), MAX_CATEGORIES))},
            schema={"v": pl.String, "c": pl.Int64},
        )
        return (
            frame.join(lookup, on="v", how="left", maintain_order="left")
            .select(
                pl.when(pl.col("v").is_null())
                .then(-1)
                .otherwise(pl.col("c").fill_null(MAX_CATEGORIES))
                .alias("c")
            )["c"]
            .to_numpy()
            .astype(np.int64)
        )

    # -- numeric -----------------------------------------------------------------------
    def _numeric(self, spec: FeatureSpec, v: np.ndarray) -> list[dict[str, Any]]:
        ok = ~np.isnan(v)
        rows = []
        for group, mask in self._scopes():
            m = ok if mask is None else ok & mask
            b = m & (self.win == BASE)
            c = m & (self.win == CUR)
            xb, wb, xc, wc = v[b], self.w[b], v[c], self.w[c]
            row = _row(spec, group, "ks", xb.size, xc.size, wb, wc)
            if xb.size >= 2 and xc.size >= 2:
                res = TESTS[BY_KIND["numeric"]](
                    (xb, wb),
                    (xc, wc),
                    rng=rng_for(self.cfg.seed, spec.name, str(group)),
                    replicates=self.cfg.bootstrap,
                    clusters=None if self.cl is None else (self._cl(b), self._cl(c)),
                )
                _fill(row, res)
                row["baseline"] = {
                    "median": res.extras["median_baseline"],
                    "mean": res.extras["mean_baseline"],
                }
                row["current"] = {
                    "median": res.extras["median_current"],
                    "mean": res.extras["mean_current"],
                }
                row["summary"] = _numeric_summary(spec, res)
                if group is None:
                    self.distributions[spec.name] = _histogram(xb, wb, xc, wc)
            rows.append(row)
        return rows

    # -- shares ------------------------------------------------------------------------
    def _shares(
        self,
        spec: FeatureSpec,
        codes: np.ndarray,
        labels: list[str],
        *,
        rate: bool = False,
        counts: tuple[Any, np.ndarray] | None = None,
    ) -> list[dict[str, Any]]:
        k = len(labels)
        rows = []
        ok = codes >= 0
        for group, mask in self._scopes():
            m = ok if mask is None else ok & mask
            b = m & (self.win == BASE)
            c = m & (self.win == CUR)
            wb, wc = self.w[b], self.w[c]
            row = _row(spec, group, "wald_chi2", int(b.sum()), int(c.sum()), wb, wc)
            if b.sum() >= 1 and c.sum() >= 1:
                if counts is not None:
                    mat, tot = counts
                    sb = from_counts(mat[b], wb, tot[b], self._cl(b))
                    sc = from_counts(mat[c], wc, tot[c], self._cl(c))
                else:
                    sb = from_codes(codes[b], wb, k, self._cl(b))
                    sc = from_codes(codes[c], wc, k, self._cl(c))
                self._share_test(row, spec, group, labels, sb, sc, rate)
            rows.append(row)
        return rows

    def _share_test(
        self,
        row: dict[str, Any],
        spec: FeatureSpec,
        group: dict[str, Any] | None,
        labels: list[str],
        sb: ShareStats,
        sc: ShareStats,
        rate: bool,
    ) -> None:
        """Run the shares test of ``spec``'s kind and fill ``row`` (and, overall, the
        distribution drawn in the dashboard)."""
        res = TESTS[BY_KIND[spec.kind if not rate else "rate"]](sb, sc, rate=rate)
        _fill(row, res)
        pb, pc = sb.shares, sc.shares
        row["baseline"] = {lab: float(x) for lab, x in zip(labels, pb, strict=True)}
        row["current"] = {lab: float(x) for lab, x in zip(labels, pc, strict=True)}
        row["summary"] = _share_summary(spec, labels, pb, pc, rate)
        if group is None:
            self.distributions[spec.name] = {
                "type": "categories",
                "categories": labels,
                "baseline": [float(x) for x in pb],
                "current": [float(x) for x in pc],
            }

    # -- numeric and shares from merged partials ----------------------------------------
    def _numeric_binned(self, spec: FeatureSpec, v: np.ndarray) -> list[dict[str, Any]]:
        assert self.merged is not None
        ok = ~np.isnan(v)
        rows = []
        for group, mask in self._scopes():
            mom = self.merged.moments(spec.name, group)
            mb, mc = mom[BASE], mom[CUR]
            row = _row_sums(spec, group, "ks", mb, mc)
            if mb["n"] >= 2 and mc["n"] >= 2:
                bins = Bins(self.merged.scope("num", spec.name, group), self.merged.plan.alpha)
                m = ok if mask is None else ok & mask
                deff = []
                for side in (BASE, CUR):
                    sel = m & (self.win == side)
                    cl = self._cl(sel)
                    if cl is None or sel.sum() < 2:
                        deff.append(1.0)
                        continue
                    order = np.argsort(v[sel], kind="stable")
                    deff.append(_cluster_deff(v[sel][order], self.w[sel][order], cl[order]))
                res = binned.numeric_test(
                    bins,
                    mom,
                    rng=rng_for(self.cfg.seed, spec.name, str(group)),
                    replicates=self.cfg.bootstrap,
                    deff=(deff[0], deff[1]),
                )
                _fill(row, res)
                row["baseline"] = {
                    "median": res.extras["median_baseline"],
                    "mean": res.extras["mean_baseline"],
                }
                row["current"] = {
                    "median": res.extras["median_current"],
                    "mean": res.extras["mean_current"],
                }
                row["summary"] = _numeric_summary(spec, res)
                if group is None:
                    self.distributions[spec.name] = binned.histogram(bins)
            rows.append(row)
        return rows

    def _shares_binned(
        self,
        spec: FeatureSpec,
        values: pl.Series,
        *,
        rate: bool,
        categories: tuple[list[str], list[str]] | None = None,
    ) -> list[dict[str, Any]]:
        """Shares from the merged ``cat`` partials of ``spec``; ``values`` are the sample's
        categories (for the clustering design effect). ``categories`` fixes the keys and
        their labels (a fit's topics) instead of the top categories by weight."""
        assert self.merged is not None
        overall = self.merged.scope("cat", spec.name, None)
        if categories is not None:
            keys, labels = list(categories[0]), list(categories[1])
        elif rate:
            labels, keys = ["no", "yes"], ["0", "1"]
        else:
            top = (
                overall.group_by("k:cat")
                .agg(pl.col("sum:w").sum())
                .sort(["sum:w", "k:cat"], descending=[True, False])
            )
            keys = top["k:cat"].head(MAX_CATEGORIES).to_list()
            labels = list(keys) + ([OTHER] if top.height > MAX_CATEGORIES else [])
        k = len(labels)
        lookup = pl.DataFrame(
            {"k:cat": keys, "code": np.arange(len(keys))},
            schema={"k:cat": pl.String, "code": pl.Int64},
        )
        if rate:
            v = values.cast(pl.Float64).to_numpy()
            sample_codes = np.where(np.isnan(v), -1, (v > 0).astype(np.int64))
        elif categories is not None:
            sample_codes = self._codes(values, keys)
        else:
            sample_codes = self._codes(values, labels)
        rows = []
        for group, mask in self._scopes():
            cats = (
                self.merged.scope("cat", spec.name, group)
                .join(lookup, on="k:cat", how="left")
                .with_columns(pl.col("code").fill_null(MAX_CATEGORIES))
            )
            st, w, w2, n = {}, {}, {}, {}
            for side in (BASE, CUR):
                part = cats.filter(pl.col("k:win") == side)
                s = np.bincount(part["code"].to_numpy(), part["sum:w"].to_numpy(), k)
                q = np.bincount(part["code"].to_numpy(), part["sum:w2"].to_numpy(), k)
                sel = (sample_codes >= 0) & (self.win == side)
                if mask is not None:
                    sel &= mask
                deff = binned.shares_deff(sample_codes[sel], self.w[sel], k, self._cl(sel))
                st[side] = binned.share_stats(s, q, deff)
                w[side], w2[side] = float(s.sum()), float(q.sum())
                n[side] = float(part["sum:n"].sum()) if part.height else 0.0
            row = _row_sums(
                spec,
                group,
                "wald_chi2",
                {"n": n[BASE], "w": w[BASE], "w2": w2[BASE]},
                {"n": n[CUR], "w": w[CUR], "w2": w2[CUR]},
            )
            if n[BASE] >= 1 and n[CUR] >= 1:
                sb, sc = st[BASE], st[CUR]
                self._share_test(row, spec, group, labels, sb, sc, rate)
            rows.append(row)
        return rows

    # -- fitted text features ------------------------------------------------------------
    def _text_of(self, spec: FeatureSpec, *, quiet: bool = False) -> pl.Series | None:
        """The sample's text a fitted feature reads (None when absent: a note says so,
        unless ``quiet``)."""
        source = "response" if spec.name.startswith("response_") else "user"
        col = "response" if source == "response" else "user_text"
        note = None
        if col not in self.both.columns:
            what = "response" if source == "response" else "prompt or messages"
            note = f"{spec.name}: skipped, the data has no {what} field"
        elif self.both[col].null_count() == self.both.height:
            note = f"{spec.name}: skipped, no text in either window"
        if note is not None:
            if not quiet:
                self.notes.append(note)
            return None
        return self.both[col]

    def topic_fit(self, spec: FeatureSpec, text: pl.Series) -> topic_mod.Topics:
        """The topics of ``spec`` fitted on the text sample (both windows pooled), once."""
        fits = self._fits
        if spec.name not in fits:
            self.say(f"{spec.name}: fitting {self.cfg.topics} topics on {text.len()} rows")
            source = "response" if spec.name.startswith("response_") else "user"
            emb = self._embedding(self.both) if source == "user" else None
            if emb is not None:
                fit = topic_mod.fit_embeddings(emb, self.cfg.topics, self.cfg.seed)
                self.notes.append(f"{spec.name}: clusters of the precomputed embedding column")
            else:
                fit = topic_mod.fit_topics(text, self.cfg.topics, self.cfg.seed)
            fits[spec.name] = fit
        return fits[spec.name]

    def vocab_top(self, text: pl.Series) -> list[str]:
        """The :data:`VOCAB_TOKENS` commonest response words of the text sample, by weight
        (ties by the word), fitted once."""
        if self._vocab is not None:
            return list(self._vocab)
        toks = response_words(text)
        per_doc = toks.group_by("doc", "tok").agg(pl.len().alias("n"))
        weights = pl.DataFrame({"doc": np.arange(text.len(), dtype=np.uint32), "w": self.w})
        top = (
            per_doc.join(weights, on="doc")
            .group_by("tok")
            .agg((pl.col("n") * pl.col("w")).sum().alias("s"))
            # Words of equal weight tie whatever order the parallel sums took.
            .with_columns(pl.col("s").round_sig_figs(12))
            .sort(["s", "tok"], descending=[True, False])
            .head(VOCAB_TOKENS)["tok"]
            .to_list()
        )
        self._vocab = top
        return list(top)

    def text_models(
        self, names: list[str], limits: dict[str, dict[int, int]] | None = None
    ) -> textpass.TextModels:
        """The fits the text pass applies to every row (features without text left out;
        their notes come with their rows)."""
        topics: dict[str, topic_mod.TopicModel] = {}
        vocabulary: tuple[str, ...] = ()
        use = []
        for name in names:
            spec = STANDARD[name]
            text = self._text_of(spec, quiet=True)
            if text is None:
                continue
            use.append(name)
            if spec.kind == "topic":
                fit = self.topic_fit(spec, text)
                assert fit.model is not None
                topics[name] = fit.model
            elif spec.kind == "vocabulary":
                vocabulary = tuple(self.vocab_top(text))
        return textpass.TextModels(tuple(use), topics, vocabulary, dict(limits or {}))

    def _fitted(self, spec: FeatureSpec) -> list[dict[str, Any]]:
        """Language, topics and vocabulary: fitted on the text sample (``both`` holds at
        most ``language_sample`` rows of each window, whole clusters chosen by hash) and
        tested there, or — with ``merged`` text partials of every row (:mod:`.textpass`) —
        tested on those, with the clustering design effect from the sample."""
        text = self._text_of(spec)
        if text is None:
            return []
        if self.merged is not None:
            return self._fitted_binned(spec, text)
        sub = np.arange(self.both.height)
        full_codes = np.full(self.both.height, -1, dtype=np.int64)
        if spec.name == "language":
            self.say(f"language: detecting on {text.len()} rows")
            langs = lang_mod.detect(text)
            codes_s, labels = self._categories(langs)
            full_codes[sub] = codes_s
            return self._shares(spec, full_codes, labels)
        if spec.name == "response_vocabulary":
            return self._vocabulary(spec, text, sub)
        fit = self.topic_fit(spec, text)
        full_codes[sub] = fit.labels
        return self._shares(spec, full_codes, fit.names)

    def _fitted_binned(self, spec: FeatureSpec, text: pl.Series) -> list[dict[str, Any]]:
        if spec.name == "language":
            return self._shares_binned(spec, lang_mod.detect(text), rate=False)
        if spec.kind == "vocabulary":
            return self._vocabulary_binned(spec, text)
        fit = self.topic_fit(spec, text)
        assert fit.model is not None
        models = textpass.TextModels((spec.name,), {spec.name: fit.model})
        values = textpass.labels(self.both, models)[spec.name]
        keys = [str(i) for i in range(len(fit.names))]
        return self._shares_binned(spec, values, rate=False, categories=(keys, fit.names))

    def _vocabulary_binned(self, spec: FeatureSpec, text: pl.Series) -> list[dict[str, Any]]:
        assert self.merged is not None
        top = self.vocab_top(text)
        k = len(top) + 1
        labels = [*top, OTHER]
        counts, totals = textpass.vocab_counts(text, top)
        has = totals > 0
        rows = []
        for group, mask in self._scopes():
            stats = textpass.vocab_stats(self.merged.scope("voc", spec.name, group), k)
            st: dict[int, ShareStats] = {}
            for side in (BASE, CUR):
                s, m, _sums = stats[side]
                sel = has & (self.win == side)
                if mask is not None:
                    sel &= mask
                deff = binned.counts_deff(counts[sel], self.w[sel], totals[sel], self._cl(sel))
                st[side] = ShareStats(
                    s[:k], float(s[k]), m[:k, :k] * deff, m[:k, k] * deff, float(m[k, k] * deff)
                )
            sb, sc = stats[BASE][2], stats[CUR][2]
            row = _row_sums(spec, group, "wald_chi2", sb, sc)
            if sb["n"] >= 1 and sc["n"] >= 1:
                self._share_test(row, spec, group, labels, st[BASE], st[CUR], False)
            rows.append(row)
        return rows

    def _embedding(self, part: pl.DataFrame) -> np.ndarray | None:
        if "embedding" not in part.columns or not isinstance(part.schema["embedding"], pl.List):
            return None
        col = part["embedding"]
        lens = col.list.len().drop_nulls()
        if lens.len() == 0:
            return None
        dim = int(lens.mode().first() or 0)  # type: ignore[arg-type]
        if dim < 2:
            return None
        good = col.list.len() == dim
        arr = np.full((col.len(), dim), np.nan)
        ok = good.fill_null(False).to_numpy()
        if ok.any():
            arr[ok] = np.vstack(col.filter(good.fill_null(False)).to_list())
        return arr

    def _vocabulary(
        self, spec: FeatureSpec, text: pl.Series, sub: np.ndarray
    ) -> list[dict[str, Any]]:
        from scipy import sparse

        toks = response_words(text)
        if toks.height == 0:
            self.notes.append(f"{spec.name}: skipped, no words in the responses")
            return []
        per_doc = toks.group_by("doc", "tok").agg(pl.len().alias("n"))
        top = self.vocab_top(text)
        lookup = pl.DataFrame({"tok": top, "k": np.arange(len(top))})
        hits = per_doc.join(lookup, on="tok")
        totals = np.zeros(sub.size)
        tot = toks.group_by("doc").agg(pl.len().alias("n"))
        totals[tot["doc"].to_numpy()] = tot["n"].to_numpy()
        k = len(top)
        mat = sparse.csr_matrix(
            (
                hits["n"].to_numpy().astype(float),
                (hits["doc"].to_numpy().astype(np.int64), hits["k"].to_numpy().astype(np.int64)),
            ),
            shape=(sub.size, k + 1),
        ).tolil()
        covered = np.asarray(mat[:, :k].sum(axis=1)).ravel()
        mat[:, k] = (totals - covered).reshape(-1, 1)
        mat = mat.tocsr()
        codes = np.full(self.both.height, -1, dtype=np.int64)
        has = totals > 0
        codes[sub[has]] = 0
        full_mat = sparse.csr_matrix((self.both.height, k + 1))
        full_tot = np.zeros(self.both.height)
        # Scatter the subsample's rows into full-height arrays (rows outside are unused).
        perm = sparse.csr_matrix(
            (np.ones(sub.size), (sub, np.arange(sub.size))), shape=(self.both.height, sub.size)
        )
        full_mat = perm @ mat
        full_tot[sub] = totals
        return self._shares(spec, codes, [*top, OTHER], counts=(full_mat, full_tot))

    # -- calibration -------------------------------------------------------------------
    def calibration_rows(
        self, evals: str | Path | pl.DataFrame, top1: pl.DataFrame | None
    ) -> list[dict[str, Any]]:
        """Score calibration: ``top1`` holds (trace_id, window, weight, top1) of the
        judged traces, collected while streaming."""
        ev = _read_evals(evals)
        if top1 is None:
            self.notes.append("score calibration: skipped, traces lack trace_id or retrieved")
            return []
        top1 = (
            top1.sort([WIN, SEQ])
            .drop_nulls("top1")
            .unique("trace_id", keep="first", maintain_order=True)
        )
        if top1.height == 0:
            self.notes.append("score calibration: skipped, no retrieval scores in the windows")
            return []
        evaluators = sorted(set(ev["evaluator"].drop_nulls().unique().to_list()))
        wanted = [e for e in evaluators if e in ("relevance", "faithfulness")] or evaluators
        ev = ev.filter(pl.col("score").is_not_null())
        if "error" in ev.columns:
            ev = ev.filter(pl.col("error").is_null())
        wcol = "weight" if "weight" in ev.columns else None
        joined = ev.join(top1, on="trace_id", how="inner")
        rows = []
        for name in wanted:
            part = joined.filter(pl.col("evaluator") == name)
            wcolumn = part[wcol] if wcol else part[W]
            wv = wcolumn.fill_null(part[W]).cast(pl.Float64).to_numpy()
            x, y, wn = (
                part["top1"].to_numpy(),
                part["score"].cast(pl.Float64).to_numpy(),
                part[WIN].to_numpy(),
            )
            spec = FeatureSpec(
                f"retrieval_calibration.{name}",
                "calibration",
                "retrieval",
                ("retrieved",),
                "score/score",
            )
            b, c = wn == BASE, wn == CUR
            row = _row(spec, None, "slope_wald", int(b.sum()), int(c.sum()), wv[b], wv[c])
            if b.sum() >= 3 and c.sum() >= 3:
                res = TESTS[BY_KIND["calibration"]]((x[b], y[b], wv[b]), (x[c], y[c], wv[c]))
                _fill(row, res)
                row["baseline"] = {"slope": res.extras.get("slope_baseline")}
                row["current"] = {"slope": res.extras.get("slope_current")}
                sb, sc = res.extras.get("slope_baseline"), res.extras.get("slope_current")
                if sb is not None and sc is not None:
                    row["summary"] = f"{name} per unit of top-1 score: slope {sb:.2f} -> {sc:.2f}"
            rows.append(row)
        if not wanted:
            self.notes.append("score calibration: skipped, the evals file has no judgments")
        return rows


def _read_evals(evals: str | Path | pl.DataFrame) -> pl.DataFrame:
    if isinstance(evals, pl.DataFrame):
        frame = evals
    else:
        p = Path(evals)
        if not p.exists():
            raise InputError([f"{p}: no such file (--evals expects an llmobs eval -o .parquet)"])
        try:
            frame = pl.read_parquet(p)
        except Exception as exc:  # polars raises several kinds for a bad file
            raise InputError([f"{p}: not a readable Parquet file of judgments ({exc})"]) from exc
    for col in ("trace_id", "evaluator", "score"):
        if col not in frame.columns:
            name = "evals" if isinstance(evals, pl.DataFrame) else str(evals)
            raise InputError(
                [f"{name}: {col}: missing column (an llmobs eval -o file is expected)"]
            )
    return frame


# --------------------------------------------------------------------------------------
# Rows, verdicts, summaries
# --------------------------------------------------------------------------------------


def choose_groups(
    merged: Merged, by: list[str], slices: list[str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The ``--by`` groups present in both windows (sorted by value) and the slices: per
    slice dimension with two or more values, the values present in both windows holding
    :data:`MIN_SLICE_SHARE` of either window's calls, largest first, at most
    :data:`MAX_SLICES` (a value already a ``--by`` group is not repeated)."""
    rows = merged.part("rows")
    by_groups: list[dict[str, Any]] = []
    if by and rows.height:
        li = merged.levels.index(tuple(by))
        df = rows.filter(pl.col("k:level") == li).with_columns(
            pl.col(kcol(f)).fill_null(NONE) for f in by
        )
        both = (
            df.group_by([kcol(f) for f in by])
            .agg(pl.col("k:win").n_unique().alias("wins"))
            .filter(pl.col("wins") == 2)
            .sort([kcol(f) for f in by])
        )
        by_groups = [{f: r[kcol(f)] for f in by} for r in both.iter_rows(named=True)]
    taken = {_gkey(g) for g in by_groups}
    slice_groups: list[dict[str, Any]] = []
    if not rows.height:
        return by_groups, slice_groups
    totals = rows.filter(pl.col("k:level") == 0).group_by("k:win").agg(pl.col("sum:w").sum())
    tot = {int(r["k:win"]): float(r["sum:w"]) for r in totals.iter_rows(named=True)}
    if tot.get(BASE, 0.0) <= 0 or tot.get(CUR, 0.0) <= 0:
        return by_groups, slice_groups
    for dim in slices:
        li = merged.levels.index((dim,))
        df = rows.filter(pl.col("k:level") == li)
        if df[kcol(dim)].drop_nulls().n_unique() < 2:
            continue
        per = (
            df.with_columns(pl.col(kcol(dim)).fill_null(NONE).alias("v"))
            .group_by("v")
            .agg(
                pl.col("sum:w").filter(pl.col("k:win") == BASE).sum().alias("wb"),
                pl.col("sum:w").filter(pl.col("k:win") == CUR).sum().alias("wc"),
                pl.col("sum:n").filter(pl.col("k:win") == BASE).sum().alias("nb"),
                pl.col("sum:n").filter(pl.col("k:win") == CUR).sum().alias("nc"),
            )
            .sort("v")
        )
        cands = []
        for r in per.iter_rows(named=True):
            sb, sc = r["wb"] / tot[BASE], r["wc"] / tot[CUR]
            if r["nb"] > 0 and r["nc"] > 0 and max(sb, sc) >= MIN_SLICE_SHARE:
                cands.append((sb + sc, str(r["v"])))
        for _, value in sorted(cands, key=lambda c: -c[0])[:MAX_SLICES]:
            g = {dim: value}
            if _gkey(g) in taken:
                continue
            slice_groups.append(g)
    return by_groups, slice_groups
