"""Topics of texts without a model download: hashing + TF-IDF + randomized SVD + k-means.

Contract (``docs/drift.md``, "Features"): the projection and the clusters are fitted on *both*
windows pooled — fitted on the baseline alone, any new vocabulary in the current window
lands in a residual cluster and manufactures drift. The caller then compares the
weighted cluster shares of the two windows with the Wald test on shares.

* Tokens: lower-cased runs of ≥ 2 letters (any script), minus a small stop-word list of
  the commonest English/Spanish/German/French function words.
* Feature hashing into :data:`HASH_DIM` buckets (no vocabulary to keep), sub-linear TF,
  IDF over the distinct texts, rows L2-normalised.
* Randomized SVD (Halko et al.: a Gaussian range finder with 2 power iterations) to
  ``dims`` dimensions, rows re-normalised (cosine geometry), then seeded k-means
  (``scipy.cluster.vq.kmeans2``, k-means++ start).
* A precomputed embedding (an ``embedding`` list column, or ``metadata.embedding``) skips
  the text steps: its rows are normalised and clustered the same way.
* Each topic is named by its three most distinctive terms (share in the topic × log lift
  over all texts).

Everything runs once per distinct text; rows map back through an inverse index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy import sparse
from scipy.cluster.vq import kmeans2

from llmobs_cli.core.drift.stats import single_thread_blas

HASH_DIM = 1 << 18
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "if",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "i",
        "you",
        "he",
        "she",
        "we",
        "they",
        "me",
        "my",
        "your",
        "our",
        "their",
        "his",
        "her",
        "them",
        "us",
        "do",
        "does",
        "did",
        "have",
        "has",
        "had",
        "not",
        "no",
        "so",
        "than",
        "then",
        "there",
        "here",
        "what",
        "which",
        "who",
        "whom",
        "how",
        "can",
        "could",
        "would",
        "should",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "about",
        "into",
        "over",
        "also",
        "just",
        "very",
        "more",
        "most",
        "some",
        "any",
        "all",
        "each",
        "other",
        "such",
        "only",
        "own",
        "same",
        "too",
        "s",
        "t",
        "don",
        "get",
        "got",
        "please",
        "need",
        "want",
        "like",
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "y",
        "o",
        "que",
        "en",
        "un",
        "una",
        "por",
        "con",
        "para",
        "es",
        "se",
        "no",
        "lo",
        "al",
        "su",
        "sus",
        "como",
        "más",
        "pero",
        "le",
        "les",
        "des",
        "et",
        "ou",
        "est",
        "une",
        "pour",
        "dans",
        "pas",
        "sur",
        "qui",
        "avec",
        "ce",
        "il",
        "je",
        "vous",
        "der",
        "die",
        "das",
        "und",
        "oder",
        "ist",
        "ein",
        "eine",
        "nicht",
        "zu",
        "mit",
        "von",
        "den",
        "dem",
        "im",
        "auf",
        "für",
        "es",
        "ich",
        "sie",
        "wie",
    ]
)
_TOKEN = r"[^\W\d_]{2,}"


@dataclass
class TopicModel:
    """A fit that labels new texts (picklable plain arrays): the kept hash buckets with
    their IDF, the projection onto the fitted dimensions and the clusters' centroids in the
    projected, normalised space (in the fit's label order). ``embedding`` models cluster a
    precomputed embedding instead (``buckets``/``idf``/``projection`` empty)."""

    buckets: np.ndarray  # sorted kept bucket ids
    idf: np.ndarray  # per kept bucket
    projection: np.ndarray  # (kept buckets, dims)
    centroids: np.ndarray  # (topics, dims)
    embedding: bool = False
    dim: int = 0  # the embedding's length (embedding models)


@dataclass
class Topics:
    """Cluster label per input row, a readable name per cluster and the fitted model."""

    labels: np.ndarray  # int per row (-1 for null/empty text)
    names: list[str]
    model: TopicModel | None = None


def _tokens(texts: pl.Series) -> pl.DataFrame:
    """Long frame ``(doc, token)`` of the kept tokens."""
    toks = (
        pl.DataFrame({"t": texts})
        .with_row_index("doc")
        .select(
            "doc",
            pl.col("t").str.to_lowercase().str.extract_all(_TOKEN).alias("token"),
        )
        .explode("token")
        .drop_nulls("token")
        .filter(~pl.col("token").is_in(list(STOPWORDS)))
    )
    return toks


def _counts(toks: pl.DataFrame) -> pl.DataFrame:
    """Tokens per (doc, hash bucket)."""
    return (
        toks.with_columns((pl.col("token").hash(7) % HASH_DIM).cast(pl.Int64).alias("h"))
        .group_by("doc", "h")
        .agg(pl.len().alias("c"))
    )


def _embed(
    toks: pl.DataFrame, n_docs: int, dims: int, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The documents' projection and the ``(buckets, idf, projection)`` that maps a new
    document's kept buckets into the same space (``x @ Vᵀ``, the out-of-sample extension
    of the randomized SVD)."""
    counts = _counts(toks)
    if counts.height == 0:
        return np.zeros((n_docs, 1)), (np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 1)))
    doc = counts["doc"].to_numpy().astype(np.int64)
    col = counts["h"].to_numpy()
    tf = 1.0 + np.log(counts["c"].to_numpy().astype(np.float64))
    # Keep only buckets seen in ≥ 2 texts: singletons carry no shared topic.
    _ucol, inv, df = np.unique(col, return_inverse=True, return_counts=True)
    keep_cols = df >= 2
    if keep_cols.sum() < 2:
        keep_cols[:] = True
    remap = np.cumsum(keep_cols) - 1
    sel = keep_cols[inv]
    idf = np.log((1 + n_docs) / (1 + df)) + 1.0
    vals = tf[sel] * idf[inv[sel]]
    x = sparse.csr_matrix((vals, (doc[sel], remap[inv[sel]])), shape=(n_docs, int(keep_cols.sum())))
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    x = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ x
    k = min(dims, min(x.shape) - 1) if min(x.shape) > 1 else 1
    omega = rng.standard_normal((x.shape[1], k + 8))
    y = x @ omega
    for _ in range(2):  # power iterations sharpen the spectrum of sparse text
        y, _r = np.linalg.qr(y)
        y = x @ (x.T @ y)
    q, _r = np.linalg.qr(y)
    b = (x.T @ q).T
    ub, s, vt = np.linalg.svd(b, full_matrices=False)
    emb = (q @ ub[:, :k]) * s[:k]
    return emb, (_ucol[keep_cols], idf[keep_cols], vt[:k].T.copy())


def _normalise(emb: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(n, 1e-12)


def _kmeans(emb: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels (renumbered by size, largest first) and the centroids in that order."""
    k = max(1, min(k, emb.shape[0]))
    if k == 1:
        return np.zeros(emb.shape[0], dtype=np.int64), emb.mean(axis=0, keepdims=True)
    cen, lab = kmeans2(emb, k, minit="++", seed=seed, iter=15)
    # Renumber by size (largest first) so names are stable across runs.
    sizes = np.bincount(lab, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(k)
    return rank[lab], cen[order]


def _names(toks: pl.DataFrame, doc_label: np.ndarray, k: int) -> list[str]:
    if toks.height == 0:
        return [f"topic {i + 1}" for i in range(k)]
    labels = pl.DataFrame({"doc": np.arange(doc_label.size), "lab": doc_label})
    t = (
        toks.unique(["doc", "token"])
        .with_columns(pl.col("doc").cast(pl.Int64))
        .join(labels, on="doc")
        .filter(pl.col("lab") >= 0)
    )
    n_docs = max(int(doc_label.size), 1)
    sizes = np.bincount(doc_label[doc_label >= 0], minlength=k).astype(float)
    overall = t.group_by("token").agg(pl.len().alias("n_all"))
    per = (
        t.group_by("lab", "token")
        .agg(pl.len().alias("n"))
        .join(overall, on="token")
        .with_columns(
            (
                pl.col("n")
                / pl.col("lab").replace_strict(
                    list(range(k)), sizes.tolist(), return_dtype=pl.Float64
                )
            ).alias("share")
        )
        .with_columns(
            (pl.col("share") * (pl.col("share") / (pl.col("n_all") / n_docs)).log()).alias("score")
        )
        .sort(["lab", "score", "token"], descending=[False, True, False])
        .group_by("lab", maintain_order=True)
        .agg(pl.col("token").head(3))
    )
    names = [f"topic {i + 1}" for i in range(k)]
    for lab_i, terms in per.iter_rows():
        if 0 <= lab_i < k and terms:
            names[lab_i] = ", ".join(terms)
    return names


def fit_topics(texts: pl.Series, k: int, seed: int = 0, dims: int = 24) -> Topics:
    """Cluster ``texts`` (both windows pooled) into ``k`` topics."""
    # Small dense algebra: BLAS threads only add contention (1 s per QR on a busy machine).
    with single_thread_blas():
        return _fit_topics(texts, k, seed, dims)


def _distinct(texts: pl.Series) -> tuple[pl.Series, np.ndarray]:
    """The distinct texts (first 2,000 characters, null as empty) in order of first
    appearance, and each input text's index among them: the work is done once per
    distinct text."""
    text = texts.cast(pl.String).str.slice(0, 2000)
    frame = pl.DataFrame({"t": text}).with_columns(pl.col("t").fill_null(""))
    uniq = frame["t"].unique(maintain_order=True)
    inv = frame.join(
        pl.DataFrame({"t": uniq}).with_row_index("u"), on="t", how="left", maintain_order="left"
    )["u"].to_numpy()
    return uniq, inv


def _fit_topics(texts: pl.Series, k: int, seed: int, dims: int) -> Topics:
    uniq, inv = _distinct(texts)
    toks = _tokens(uniq)
    rng = np.random.default_rng(seed)
    raw, (buckets, idf, proj) = _embed(toks, uniq.len(), dims, rng)
    emb = _normalise(raw)
    has_tokens = np.zeros(uniq.len(), dtype=bool)
    has_tokens[toks["doc"].unique().to_numpy()] = True
    lab_u = np.full(uniq.len(), -1, dtype=np.int64)
    centroids = np.zeros((0, emb.shape[1]))
    if has_tokens.sum() >= 2:
        lab_u[has_tokens], centroids = _kmeans(emb[has_tokens], k, seed)
    k_eff = int(lab_u.max()) + 1 if (lab_u >= 0).any() else 0
    names = _names(toks, lab_u, k_eff)
    labels = lab_u[inv]
    labels[texts.is_null().to_numpy()] = -1
    model = TopicModel(buckets, idf, proj, centroids[:k_eff])
    return Topics(labels=labels, names=names, model=model)


def fit_embeddings(emb: np.ndarray, k: int, seed: int = 0) -> Topics:
    """Cluster precomputed embedding rows (NaN rows get -1)."""
    with single_thread_blas():
        return _fit_embeddings(np.asarray(emb, dtype=np.float64), k, seed)


def _fit_embeddings(emb: np.ndarray, k: int, seed: int) -> Topics:
    ok = np.isfinite(emb).all(axis=1) & (np.abs(emb).sum(axis=1) > 0)
    labels = np.full(emb.shape[0], -1, dtype=np.int64)
    centroids = np.zeros((0, emb.shape[1]))
    if ok.sum() >= 2:
        labels[ok], centroids = _kmeans(_normalise(emb[ok]), k, seed)
    k_eff = int(labels.max()) + 1 if (labels >= 0).any() else 0
    model = TopicModel(
        np.zeros(0, np.int64),
        np.zeros(0),
        np.zeros((0, emb.shape[1])),
        centroids[:k_eff],
        embedding=True,
        dim=emb.shape[1],
    )
    return Topics(labels=labels, names=[f"cluster {i + 1}" for i in range(k_eff)], model=model)


def _nearest(emb: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid per row (squared Euclidean distance)."""
    d = (emb * emb).sum(axis=1, keepdims=True) - 2 * emb @ centroids.T
    d += (centroids * centroids).sum(axis=1)
    return np.argmin(d, axis=1).astype(np.int64)


def apply_topics(model: TopicModel, texts: pl.Series) -> np.ndarray:
    """The fitted topic of each text (-1 for null, empty or wordless text), computed once
    per distinct text: tokens hashed into the fitted buckets, weighted by the fitted IDF,
    projected and assigned to the nearest centroid."""
    with single_thread_blas():
        return _apply_topics(model, texts)


def _apply_topics(model: TopicModel, texts: pl.Series) -> np.ndarray:
    out = np.full(texts.len(), -1, dtype=np.int64)
    if not model.centroids.shape[0] or not texts.len():
        return out
    uniq, inv = _distinct(texts)
    toks = _tokens(uniq)
    lab_u = np.full(uniq.len(), -1, dtype=np.int64)
    has_tokens = np.zeros(uniq.len(), dtype=bool)
    has_tokens[toks["doc"].unique().to_numpy()] = True
    counts = _counts(toks)
    dims = model.projection.shape[1]
    emb = np.zeros((uniq.len(), dims))
    if counts.height and model.buckets.size:
        h = counts["h"].to_numpy()
        pos = np.clip(np.searchsorted(model.buckets, h), 0, model.buckets.size - 1)
        kept = model.buckets[pos] == h
        doc = counts["doc"].to_numpy().astype(np.int64)[kept]
        vals = (1.0 + np.log(counts["c"].to_numpy()[kept].astype(np.float64))) * model.idf[
            pos[kept]
        ]
        x = sparse.csr_matrix((vals, (doc, pos[kept])), shape=(uniq.len(), model.buckets.size))
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
        x = sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ x
        emb = np.asarray(x @ model.projection)
    emb = _normalise(emb)
    lab_u[has_tokens] = _nearest(emb[has_tokens], model.centroids)
    out = lab_u[inv]
    out[texts.is_null().to_numpy()] = -1
    return out


def apply_embeddings(model: TopicModel, emb: np.ndarray) -> np.ndarray:
    """The nearest fitted cluster of each embedding row (-1 for NaN or zero rows)."""
    emb = np.asarray(emb, dtype=np.float64)
    labels = np.full(emb.shape[0], -1, dtype=np.int64)
    if not model.centroids.shape[0] or not emb.shape[0]:
        return labels
    ok = np.isfinite(emb).all(axis=1) & (np.abs(emb).sum(axis=1) > 0)
    if ok.any():
        with single_thread_blas():
            labels[ok] = _nearest(_normalise(emb[ok]), model.centroids)
    return labels
