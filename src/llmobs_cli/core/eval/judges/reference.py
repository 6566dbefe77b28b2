"""Reference comparison: score a response against a known answer, without a judge.

Methods (``eval.reference.method``), all returning a score in [0, 1]:

* ``exact`` — 1 when the normalised texts are equal (lower case, punctuation and articles
  removed, whitespace collapsed: the SQuAD normalisation);
* ``token_f1`` — harmonic mean of token precision and recall of the normalised texts;
* ``fuzzy`` — rapidfuzz ``token_set_ratio`` / 100 (robust to word order and extra words);
* ``numeric`` — 1 when the first number of the response is within ``numeric_tolerance``
  (relative, or absolute below 1) of the first number of the reference, else 0;
* ``json`` — 1 when both parse as JSON and are equal (key order and whitespace ignored).

Row work is vectorised in Polars where the method allows it (exact, numeric, json use
expressions; token F1 and fuzzy go through rapidfuzz's C ``cdist``-style loop over pairs).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter

import polars as pl

METHODS = ("exact", "token_f1", "fuzzy", "numeric", "json")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = re.compile(f"[{re.escape(string.punctuation)}]")
_NUMBER = r"[-+]?\d[\d,]*(?:\.\d+)?(?:[eE][-+]?\d+)?"


def normalise_expr(col: pl.Expr) -> pl.Expr:
    return (
        col.str.to_lowercase()
        .str.replace_all(f"[{re.escape(string.punctuation)}]", " ")
        .str.replace_all(r"\b(a|an|the)\b", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


def normalise(text: str) -> str:
    t = _PUNCT.sub(" ", text.lower())
    t = _ARTICLES.sub(" ", t)
    return " ".join(t.split())


def token_f1(pred: str, ref: str) -> float:
    p, r = normalise(pred).split(), normalise(ref).split()
    if not p and not r:
        return 1.0
    if not p or not r:
        return 0.0
    common = sum((Counter(p) & Counter(r)).values())
    if common == 0:
        return 0.0
    prec, rec = common / len(p), common / len(r)
    return 2 * prec * rec / (prec + rec)


def _json_equal(a: str | None, b: str | None) -> float | None:
    if a is None or b is None:
        return None
    try:
        return 1.0 if json.loads(a) == json.loads(b) else 0.0
    except (json.JSONDecodeError, TypeError):
        return 0.0


def score_frame(
    frame: pl.DataFrame,
    method: str,
    tolerance: float = 0.01,
    response: str = "response",
    reference: str = "reference",
) -> pl.Series:
    """Scores (Float64, null where response or reference is missing) for every row."""
    if method not in METHODS:
        raise ValueError(f"unknown reference method {method!r}")
    resp, ref = pl.col(response), pl.col(reference)
    missing = resp.is_null() | ref.is_null()
    if method == "exact":
        expr = (normalise_expr(resp) == normalise_expr(ref)).cast(pl.Float64)
    elif method == "numeric":
        a = (
            resp.str.extract(f"({_NUMBER})", 1)
            .str.replace_all(",", "")
            .cast(pl.Float64, strict=False)
        )
        b = (
            ref.str.extract(f"({_NUMBER})", 1)
            .str.replace_all(",", "")
            .cast(pl.Float64, strict=False)
        )
        scale = pl.max_horizontal(b.abs(), pl.lit(1.0))
        expr = ((a - b).abs() <= tolerance * scale).fill_null(False).cast(pl.Float64)
    else:
        pairs = frame.select(resp.alias("a"), ref.alias("b"))
        a_list, b_list = pairs["a"].to_list(), pairs["b"].to_list()
        if method == "json":
            vals = [_json_equal(a, b) for a, b in zip(a_list, b_list, strict=True)]
        elif method == "token_f1":
            vals = [
                None if a is None or b is None else token_f1(a, b)
                for a, b in zip(a_list, b_list, strict=True)
            ]
        else:
            from rapidfuzz import fuzz

            vals = [
                None if a is None or b is None else fuzz.token_set_ratio(a, b) / 100.0
                for a, b in zip(a_list, b_list, strict=True)
            ]
        return pl.Series("score", vals, dtype=pl.Float64)
    return frame.select(pl.when(missing).then(None).otherwise(expr).alias("score"))["score"]
