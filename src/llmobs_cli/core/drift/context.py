"""Per-feature work over both windows: values, clusters, groups and slices, the registered
test of each feature's kind, and the fitted text features on a seeded subsample."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from llmobs_cli.core.drift import language as lang_mod
from llmobs_cli.core.drift import topics as topic_mod
from llmobs_cli.core.drift.features import (
    FITTED,
    FeatureSpec,
    _user_text,
)
from llmobs_cli.core.drift.result import BASE, CUR, MAX_CATEGORIES, OTHER, VOCAB_TOKENS, WIN
from llmobs_cli.core.drift.rows import _fill, _histogram, _numeric_summary, _row, _share_summary
from llmobs_cli.core.drift.slices import MAX_SLICES, MIN_SLICE_SHARE, _gkey
from llmobs_cli.core.drift.stats import BY_KIND, TESTS, rng_for
from llmobs_cli.core.drift.stats.wald_shares import from_codes, from_counts
from llmobs_cli.core.record.config import DriftConfig
from llmobs_cli.core.record.fields import base_column, field_expr
from llmobs_cli.core.record.weights import W
from llmobs_cli.errors import InputError


class _Context:
    def __init__(
        self,
        both: pl.DataFrame,
        cfg: DriftConfig,
        notes: list[str],
        by: list[str],
        patterns: list[str] | None,
        say: Callable[[str], None],
        slices: Sequence[str] = (),
    ) -> None:
        self.both = both
        self.slices = list(slices)
        self.slice_keys: set[str] = set()
        self.slice_dicts: list[dict[str, Any]] = []
        self.cfg = cfg
        self.notes = notes
        self.by = by
        self.patterns = patterns
        self.say = say
        self.win = both[WIN].to_numpy()
        self.w = both[W].to_numpy().astype(np.float64)
        self.cl = self._clusters()
        self.groups = self._groups()
        self.distributions: dict[str, dict[str, Any]] = {}
        self._sub: np.ndarray | None = None
        self._part: pl.DataFrame | None = None

    # -- clusters ----------------------------------------------------------------------
    def _clusters(self) -> np.ndarray | None:
        """Integer cluster id per row: the session, else the trace (rows of one session
        share language, topic and style, so they are not independent draws)."""
        keys = [c for c in ("session_id", "trace_id") if c in self.both.columns]
        if not keys or self.both.height == 0:
            return None
        key = pl.coalesce(
            [pl.col(c).cast(pl.String) for c in keys]
            + [pl.int_range(pl.len()).cast(pl.String).alias("_r")]
        )
        # Hash, then dense ids over the integers: ranking 2M strings costs 10x more.
        ids = self.both.select(key.hash(11).rank("dense").alias("c"))["c"]
        if ids.max() == ids.len():
            return None  # every row its own cluster: the row formulas are exact
        return ids.to_numpy().astype(np.int64) - 1

    def _cl(self, mask: np.ndarray) -> np.ndarray | None:
        return None if self.cl is None else self.cl[mask]

    # -- groups ------------------------------------------------------------------------
    def _groups(self) -> list[tuple[dict[str, Any], np.ndarray]]:
        return self._by_groups() + self._slice_groups()

    def _slice_groups(self) -> list[tuple[dict[str, Any], np.ndarray]]:
        """One group per value of each slice dimension with two or more values (largest
        first, at most MAX_SLICES, each holding MIN_SLICE_SHARE of a window's calls)."""
        out: list[tuple[dict[str, Any], np.ndarray]] = []
        if self.both.height == 0:
            return out
        taken = {_gkey(g) for g, _ in self._by_groups()} if self.by else set()
        for dim in self.slices:
            if base_column(dim) not in self.both.columns:
                continue
            vals = self.both.select(field_expr(dim).cast(pl.String).alias("v"))["v"]
            if vals.drop_nulls().n_unique() < 2:
                continue
            v = vals.fill_null("(none)").to_numpy()
            wb, wc = self.win == BASE, self.win == CUR
            tot_b, tot_c = self.w[wb].sum(), self.w[wc].sum()
            if tot_b <= 0 or tot_c <= 0:
                continue
            cands = []
            for value in np.unique(v):
                mask = v == value
                sb = self.w[mask & wb].sum() / tot_b
                sc = self.w[mask & wc].sum() / tot_c
                if (mask & wb).any() and (mask & wc).any() and max(sb, sc) >= MIN_SLICE_SHARE:
                    cands.append((sb + sc, str(value), mask))
            for _, value, mask in sorted(cands, key=lambda c: -c[0])[:MAX_SLICES]:
                g = {dim: value}
                if _gkey(g) in taken:
                    continue
                self.slice_keys.add(_gkey(g))
                self.slice_dicts.append(g)
                out.append((g, mask))
        return out

    def _by_groups(self) -> list[tuple[dict[str, Any], np.ndarray]]:
        if not self.by or self.both.height == 0:
            return []
        for f in self.by:
            if base_column(f) not in self.both.columns:
                self.notes.append(f"--by {f}: no such column in the data; no group tests")
                return []
        keys = self.both.select(
            [field_expr(f).cast(pl.String).fill_null("(none)").alias(f) for f in self.by]
        )
        codes = keys.select(pl.struct(self.by).rank("dense").alias("g"))["g"].to_numpy() - 1
        first = keys.with_row_index("_i").group_by(self.by).agg(pl.col("_i").first())
        out = []
        for row in first.sort(self.by).iter_rows(named=True):
            g = codes[row["_i"]]
            mask = codes == g
            if (self.win[mask] == BASE).any() and (self.win[mask] == CUR).any():
                out.append(({f: row[f] for f in self.by}, mask))
        return out

    def _scopes(self) -> list[tuple[dict[str, Any] | None, np.ndarray | None]]:
        return [(None, None), *self.groups]

    # -- subsample for fitted text features --------------------------------------------
    def subsample(self) -> np.ndarray:
        """Row indices of a seeded simple random sample of ≤ language_sample rows per
        window (all rows when the window is smaller)."""
        if self._sub is None:
            rng = rng_for(self.cfg.seed, "subsample")
            idx = []
            for side in (BASE, CUR):
                rows = np.flatnonzero(self.win == side)
                if rows.size > self.cfg.language_sample:
                    rows = np.sort(rng.choice(rows, self.cfg.language_sample, replace=False))
                idx.append(rows)
            self._sub = np.concatenate(idx)
        return self._sub

    # -- rows --------------------------------------------------------------------------
    def feature_rows(self, spec: FeatureSpec, price_table: Any) -> list[dict[str, Any]]:
        missing = [c for c in spec.columns if c not in self.both.columns]
        if spec.name in FITTED:
            return self._fitted(spec)
        if spec.name == "cost_usd":
            values = self._cost(price_table)
        else:
            if missing and len(missing) == len(spec.columns):
                self.notes.append(f"{spec.name}: skipped, the data has no {missing[0]} field")
                return []
            assert spec.expr is not None
            values = self.both.select(spec.expr(self.patterns).alias("v"))["v"]
        kind = spec.kind
        if kind == "auto":
            num = values.cast(pl.Float64, strict=False)
            nn = values.drop_nulls().len()
            if nn and num.drop_nulls().len() >= 0.95 * nn:
                values, kind = num, "numeric"
            else:
                kind = "categorical"
            spec = FeatureSpec(spec.name, kind, spec.layer, spec.columns, spec.unit, spec.expr)
        if values.null_count() == values.len():
            what = "log-probs" if spec.columns == ("logprobs",) else "values"
            self.notes.append(f"{spec.name}: skipped, no {what} in either window")
            return []
        if kind == "numeric":
            return self._numeric(spec, values.cast(pl.Float64).to_numpy())
        if kind == "rate":
            v = values.cast(pl.Float64).to_numpy()
            codes = np.where(np.isnan(v), -1, (v > 0).astype(np.int64))
            return self._shares(spec, codes, ["no", "yes"], rate=True)
        codes, labels = self._categories(values.cast(pl.String))
        return self._shares(spec, codes, labels)

    def _cost(self, price_table: Any) -> pl.Series:
        have = "cost_usd" in self.both.columns
        cost = (
            self.both["cost_usd"]
            if have
            else pl.Series("v", [None] * self.both.height, dtype=pl.Float64)
        )
        missing = cost.null_count()
        if missing == 0:
            self.notes.append("cost_usd: the records' own cost_usd")
            return cost
        from llmobs_cli.core.report import pricing

        needed = {"model", "provider", "input_tokens", "output_tokens"}
        if not needed <= set(self.both.columns):
            self.notes.append("cost_usd: the records' own cost_usd only (no token counts)")
            return cost
        frame = self.both
        for c in ("cost_usd", "cached_tokens", "reasoning_tokens", "cache_write_tokens", "status"):
            if c not in frame.columns:
                dt = pl.Float64 if c == "cost_usd" else (pl.String if c == "status" else pl.Int64)
                frame = frame.with_columns(pl.lit(None, dtype=dt).alias(c))
        table = price_table if price_table is not None else pricing.build_price_table()
        # The price join may reorder rows: carry the row number through it.
        priced = (
            pricing.with_cost(frame.with_row_index("_row").lazy(), table)
            .select("_row", pricing.COST)
            .sort("_row")
            .collect()
        )
        out = priced[pricing.COST]
        unpriced = out.null_count()
        self.notes.append(
            f"cost_usd: the records' own cost_usd where present, else priced from the price "
            f"table ({missing} row(s) priced; {unpriced} row(s) unpriced and left out)"
        )
        return out.alias("v")

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
        lookup = pl.DataFrame(
            {"v": labels[:MAX_CATEGORIES], "c": np.arange(min(len(labels), MAX_CATEGORIES))}
        )
        codes = (
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
        return codes, labels

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
            rows.append(row)
        return rows

    # -- fitted text features ------------------------------------------------------------
    def _fitted(self, spec: FeatureSpec) -> list[dict[str, Any]]:
        source = "response" if spec.name.startswith("response_") else "user"
        if source == "response" and "response" not in self.both.columns:
            self.notes.append(f"{spec.name}: skipped, the data has no response field")
            return []
        if source == "user" and not ({"prompt", "messages"} & set(self.both.columns)):
            self.notes.append(f"{spec.name}: skipped, the data has no prompt or messages")
            return []
        sub = self.subsample()
        if self._part is None:  # one gather of the subsample for every text feature
            self._part = self.both[sub]
        part = self._part
        if source == "response":
            text = part["response"]
        else:
            text = (
                part.select(_user_text().alias("t"))["t"]
                if "messages" in part.columns and "prompt" in part.columns
                else part["prompt" if "prompt" in part.columns else "messages"]
            )
        if text.null_count() == text.len():
            self.notes.append(f"{spec.name}: skipped, no text in either window")
            return []
        full_codes = np.full(self.both.height, -1, dtype=np.int64)
        if spec.name == "language":
            self.say(f"language: detecting on {text.len()} rows")
            langs = lang_mod.detect(text)
            codes_s, labels = self._categories_sub(langs, sub)
            full_codes[sub] = codes_s
            return self._shares(spec, full_codes, labels)
        if spec.name == "response_vocabulary":
            return self._vocabulary(spec, text, sub)
        self.say(f"{spec.name}: fitting {self.cfg.topics} topics on {text.len()} rows")
        emb = self._embedding(part) if source == "user" else None
        if emb is not None:
            fit = topic_mod.fit_embeddings(emb, self.cfg.topics, self.cfg.seed)
            self.notes.append(f"{spec.name}: clusters of the precomputed embedding column")
        else:
            fit = topic_mod.fit_topics(text, self.cfg.topics, self.cfg.seed)
        full_codes[sub] = fit.labels
        return self._shares(spec, full_codes, fit.names)

    def _categories_sub(self, values: pl.Series, sub: np.ndarray) -> tuple[np.ndarray, list[str]]:
        saved = self.w
        self.w = saved[sub]
        try:
            return self._categories(values)
        finally:
            self.w = saved

    def _embedding(self, part: pl.DataFrame) -> np.ndarray | None:
        if "embedding" in part.columns and isinstance(part.schema["embedding"], pl.List):
            col = part["embedding"]
        elif (
            "metadata" in part.columns
            and part["metadata"].head(2000).str.contains('"embedding"', literal=True).any()
        ):
            col = (
                part["metadata"]
                .str.json_path_match("$.embedding")
                .str.json_decode(pl.List(pl.Float64))
            )
        else:
            return None
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

        toks = (
            pl.DataFrame({"t": text.str.slice(0, 4000)})
            .with_row_index("doc")
            .select(
                "doc", pl.col("t").str.to_lowercase().str.extract_all(r"[^\W\d_]+").alias("tok")
            )
            .explode("tok")
            .drop_nulls("tok")
        )
        if toks.height == 0:
            self.notes.append(f"{spec.name}: skipped, no words in the responses")
            return []
        wsub = self.w[sub]
        per_doc = toks.group_by("doc", "tok").agg(pl.len().alias("n"))
        weights = pl.DataFrame({"doc": np.arange(sub.size, dtype=np.uint32), "w": wsub})
        top = (
            per_doc.join(weights, on="doc")
            .group_by("tok")
            .agg((pl.col("n") * pl.col("w")).sum().alias("s"))
            .sort(["s", "tok"], descending=[True, False])
            .head(VOCAB_TOKENS)["tok"]
            .to_list()
        )
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
    def calibration_rows(self, evals: str | Path | pl.DataFrame) -> list[dict[str, Any]]:
        ev = _read_evals(evals)
        if "trace_id" not in self.both.columns or "retrieved" not in self.both.columns:
            self.notes.append("score calibration: skipped, traces lack trace_id or retrieved")
            return []
        top1 = (
            self.both.select(
                "trace_id",
                WIN,
                W,
                pl.col("retrieved")
                .list.eval(pl.element().struct.field("score"))
                .list.first()
                .cast(pl.Float64)
                .alias("top1"),
            )
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
