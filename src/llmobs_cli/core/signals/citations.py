"""Cited rank: which retrieved document (1 = top) the answer uses.

For a call with retrieved documents and a response, :func:`cited_rank` is, in order:

1. the best (lowest) rank among the documents whose ``id`` the response contains
   (``[doc-12]``, ``(source: doc-12)``; case-insensitive, literal — the id rule of
   ``citation_rate`` in ``core/report``);
2. else the number of the first ``[n]`` marker in the response when ``1 <= n <=`` the
   number of documents (numbered citations, ``[1]`` = top document);
3. else the document with the highest lexical overlap with the answer: the share of the
   document's distinct words (4+ letters, lower-cased) that the answer also uses; ties go
   to the better rank; below ``MIN_OVERLAP`` = 0.15 for every document → null (the answer
   is not grounded in any of them).

Refusals (the ``refusal_rate`` rule of ``core/report/refusals``: patterns, or a
``content_filter`` finish) use no document: null, so a change in the refusal rate does not
read as a change of the cited rank.

Bounded cost: ids are matched in the first ``MAX_DOCS`` = 10 documents; the overlap (the
costly step: a set intersection per document) compares only the first ``OVERLAP_DOCS`` = 5
documents, reading the first ``DOC_CHARS`` = 1000 characters of each and ``ANSWER_CHARS`` =
2000 of the answer (measured: 2.5 s for 40 000 rows on a shared 2-core machine at load 12).
Everything is one Polars expression (no Python loop over rows).

Calls without retrieved documents or without a response give null.
"""

from __future__ import annotations

import polars as pl

from llmobs_cli.core.report.refusals import refusal_expr

MAX_DOCS = 10
DOC_CHARS = 1000
ANSWER_CHARS = 2000
OVERLAP_DOCS = 5
MIN_OVERLAP = 0.15
_WORD = r"\w{4,}"

FEATURES: tuple[str, ...] = ("cited_rank", "cited_top1")


def _doc(k: int) -> pl.Expr:
    return pl.col("retrieved").list.get(k, null_on_oob=True)


def _by_id(resp: pl.Expr) -> pl.Expr:
    """Lowest rank whose id the response contains, else null."""
    ranks = []
    for k in range(MAX_DOCS):
        doc_id = _doc(k).struct.field("id").str.to_lowercase()
        hit = (doc_id.str.len_chars() > 0) & resp.str.contains(doc_id, literal=True)
        ranks.append(pl.when(hit.fill_null(False)).then(pl.lit(k + 1)).otherwise(None))
    return pl.min_horizontal(ranks)


def _by_marker(resp: pl.Expr) -> pl.Expr:
    n = resp.str.extract(r"\[(\d{1,3})\]", 1).cast(pl.Int64, strict=False)
    count = pl.col("retrieved").list.len().cast(pl.Int64)
    return pl.when((n >= 1) & (n <= count) & (n <= MAX_DOCS)).then(n).otherwise(None)


def _by_overlap(resp: pl.Expr) -> pl.Expr:
    words = resp.str.slice(0, ANSWER_CHARS).str.extract_all(_WORD).list.unique()
    shares = []
    for k in range(OVERLAP_DOCS):
        doc_words = (
            _doc(k)
            .struct.field("content")
            .str.slice(0, DOC_CHARS)
            .str.to_lowercase()
            .str.extract_all(_WORD)
            .list.unique()
        )
        n = doc_words.list.len()
        share = words.list.set_intersection(doc_words).list.len() / n
        shares.append(pl.when(n > 0).then(share).otherwise(-1.0).fill_null(-1.0))
    best = pl.concat_list(shares)
    # arg_max returns the first maximum: ties go to the better rank.
    return pl.when(best.list.max() >= MIN_OVERLAP).then(best.list.arg_max().cast(pl.Int64) + 1)


def cited_rank(patterns: list[str] | None = None) -> pl.Expr:
    """Rank (1 = top) of the retrieved document the answer cites or is grounded in.

    ``patterns``: the refusal patterns (None = the built-in ones); refusals give null."""
    resp = pl.col("response").str.to_lowercase()
    refused = refusal_expr(pl.col("response"), patterns, finish_reason=pl.col("finish_reason"))
    has = (
        (pl.col("retrieved").list.len() > 0)
        & pl.col("response").is_not_null()
        & ~refused.fill_null(False)
    )
    rank = pl.coalesce(_by_id(resp), _by_marker(resp), _by_overlap(resp))
    return pl.when(has.fill_null(False)).then(rank).otherwise(None).cast(pl.Int64)


def cited_top1(patterns: list[str] | None = None) -> pl.Expr:
    """1 when the answer uses the top retrieved document, 0 when another, null without."""
    return (cited_rank(patterns) == 1).cast(pl.Int8)


def cited_rank_label(patterns: list[str] | None = None) -> pl.Expr:
    """The cited rank as a category: ``1``, ``2``, ``3``, ``4+`` (null without)."""
    # one evaluation of the rank (a when/then on it would compute it twice)
    return cited_rank(patterns).clip(upper_bound=4).cast(pl.String).replace("4", "4+")


COLUMNS: tuple[str, ...] = ("retrieved", "response", "finish_reason")
