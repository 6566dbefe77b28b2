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


#: Distinct texts a :class:`Cache` remembers before it starts afresh (bounded memory).
CACHE_TEXTS = 200_000


class Cache:
    """Codes of texts already detected, across the batches of one run (bounded: cleared
    when it passes :data:`CACHE_TEXTS` entries). Counts the detector calls it made."""

    def __init__(self, limit: int = CACHE_TEXTS) -> None:
        self.limit = limit
        self.codes: dict[str, str] = {}
        self.calls = 0


def detect(texts: pl.Series, max_chars: int = 300, cache: Cache | None = None) -> pl.Series:
    """ISO 639-1 code per text (null stays null), detected once per distinct text (and, with
    ``cache``, once per run for texts seen in earlier batches)."""
    import py3langid  # imported lazily: loading its model takes ~0.3 s

    head = texts.cast(pl.String).str.slice(0, max_chars)
    uniq = head.drop_nulls().unique()
    known = cache.codes if cache is not None else {}
    codes: list[str] = []
    for text in uniq.to_list():  # one call per distinct text, not per row
        code = known.get(text)
        if code is None:
            if len(_LETTER.findall(text)) < MIN_LETTERS:
                code = UNDETERMINED
            else:
                code = str(py3langid.classify(text)[0])
            if cache is not None:
                cache.calls += 1
                if len(known) >= cache.limit:
                    known.clear()
                known[text] = code
        codes.append(code)
    lookup = pl.DataFrame({"_t": uniq, "_lang": pl.Series(codes, dtype=pl.String)})
    out = pl.DataFrame({"_t": head}).join(lookup, on="_t", how="left", maintain_order="left")
    return out["_lang"].alias(texts.name)
