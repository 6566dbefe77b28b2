"""Language of the user's input, detected offline with ``py3langid`` (its model ships in
the wheel; nothing reaches the network).

Detection is the one per-row cost that Polars cannot vectorise, so it runs once per
*distinct* text (prompts repeat a lot: templates, retries, FAQs) on at most
``max_chars`` characters of each, and the caller passes a subsample on large windows.
Texts too short to judge (fewer than :data:`MIN_LETTERS` letters) are ``"und"``
(undetermined) rather than a guess.
"""

from __future__ import annotations

import re

import polars as pl

MIN_LETTERS = 12
UNDETERMINED = "und"
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def detect(texts: pl.Series, max_chars: int = 300) -> pl.Series:
    """ISO 639-1 code per text (null stays null), detected once per distinct text."""
    import py3langid  # imported lazily: loading its model takes ~0.3 s

    head = texts.cast(pl.String).str.slice(0, max_chars)
    uniq = head.drop_nulls().unique()
    codes: list[str] = []
    for text in uniq.to_list():  # one call per distinct text, not per row
        if len(_LETTER.findall(text)) < MIN_LETTERS:
            codes.append(UNDETERMINED)
        else:
            codes.append(str(py3langid.classify(text)[0]))
    lookup = pl.DataFrame({"_t": uniq, "_lang": pl.Series(codes, dtype=pl.String)})
    out = pl.DataFrame({"_t": head}).join(lookup, on="_t", how="left", maintain_order="left")
    return out["_lang"].alias(texts.name)
