# ruff: noqa: E501  (regular expressions read better unbroken)
"""Refusal detection: a maintained list of refusal phrasings (``docs/report.md``).

A refusal is a successful call (``status`` ok) whose response declines the request:
"I'm sorry, but I can't help with that", "As an AI language model, I cannot ...",
"I must decline", "This request violates our usage policies", and the like. Detection is
by pattern, not by a judge: it is free, deterministic, offline and fast enough for every
row of a dump.

Contract:

* :data:`PATTERNS` is the shipped list: case-insensitive regular expressions in the
  syntax of Rust's ``regex`` crate (what Polars uses; no look-around, no back-references).
  English first, with the commonest Spanish, French and German phrasings.
* Patterns look only at the head of the response (:data:`HEAD_CHARS` characters):
  models refuse up front, while a long answer that *quotes* a refusal further down
  ("the bot replied 'I cannot help with that'") is not one.
* The patterns are written to miss the usual near-misses: "I can't help but notice",
  "I cannot stress enough", "Sorry for the delay", "I can't wait", "you cannot do that in
  Python 2, but ...".
* ``refusals.patterns`` in ``llmobs.yaml`` replaces the list, ``refusals.extra_patterns``
  extends it (:func:`patterns_from_config`); an invalid expression is a ConfigError
  naming the key and the position.
* :func:`refusal_expr` is the one place the rule lives, shared by ``report`` and
  ``drift`` so both count the same refusals. A null response is not a refusal;
  ``finish_reason == "content_filter"`` counts as one when the caller passes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import polars as pl

from llmobs_cli.errors import ConfigError

#: Characters of the response that are searched (refusals come first).
HEAD_CHARS = 400

_CANT = r"(?:can(?:not|['’]t|\s+not)|won['’]t(?: be able to)?|will not(?: be able to)?|am unable to|['’]m unable to|am not able to|['’]m not able to)"
_HELP_VERBS = (
    r"(?:help(?: (?:you|with|out|here|there)|[.!,]|$)|assist|provide|comply|fulfil|fulfill|"
    r"support (?:this|that|requests?)|share|give|create|generate|write|produce|do (?:that|this)|"
    r"engage|participate|answer (?:that|this)|discuss (?:that|this)|complete (?:that|this)|"
    r"continue (?:with )?(?:that|this)|offer|recommend|advise on|make (?:that|this))"
)
_IM = r"(?:i['’]m|i am)"

#: The shipped refusal patterns (case-insensitive, Rust regex syntax).
PATTERNS: tuple[str, ...] = (
    # "I can't help with that", "I cannot provide ...", "I won't be able to assist"
    rf"\bi {_CANT} {_HELP_VERBS}",
    # "I'm sorry, but I can't ...", "Sorry, I cannot ..." (whatever follows)
    rf"\b(?:{_IM} )?sorry,? (?:but )?i {_CANT}",
    # "I'm afraid I can't do that", "I'm afraid that's not something I can help with"
    rf"\b{_IM} afraid (?:i {_CANT}|that['’]?s not something|that is not something|this is not something)",
    # "As an AI (language model), I cannot / don't ..."
    r"\bas an ai(?: language model| assistant| model| developed by [a-z]+)?,? i (?:can(?:not|['’]t)|don['’]t|do not|won['’]t|am not able|['’]m not able|am unable|['’]m unable|must)",
    # "I must decline", "I have to respectfully decline", "I'll have to decline"
    r"\bi (?:must|have to|need to|will have to|['’]ll have to|['’]d have to|would have to) (?:respectfully |politely )?(?:decline|refuse)",
    r"\bi (?:respectfully |politely )?(?:decline|refuse) to\b",
    # "I'm not able/allowed/permitted to ...", "I am not comfortable providing ..."
    rf"\b{_IM} (?:unable|not (?:able|allowed|permitted|authorized|authorised|going)) to {_HELP_VERBS}",
    rf"\b{_IM} not comfortable (?:with|providing|helping|sharing|discussing|writing|creating|generating|answering)",
    r"\bi (?:don['’]t|do not) feel comfortable (?:providing|helping|sharing|discussing|writing|creating|generating|answering|with)",
    # "That's not something I can help with"
    r"\b(?:that|this)(?:['’]s| is) (?:not something|something) i (?:can(?:not|['’]t)?|am (?:not )?able to|['’]m (?:not )?able to|won['’]t) (?:help|assist|do|provide|discuss)(?: with)?",
    r"\bnot something i can (?:help|assist|do|provide|discuss)",
    # "This request violates / goes against ... policy"
    r"\b(?:this|that|your|the) (?:request|content|query|question) (?:violates|goes against|is against|is in violation of|breaches)",
    r"\b(?:against|violates?|violation of) (?:my|our|the|openai['’]s|anthropic['’]s|google['’]s) (?:\w+ )?(?:guidelines|polic(?:y|ies)|terms of (?:use|service)|principles)",
    # "It wouldn't be appropriate for me to ..."
    r"\bit (?:would not|wouldn['’]t|is not|isn['’]t|would be in)(?: be)? (?:appropriate|inappropriate|ethical|responsible) for me to",
    # "I can't and won't ...", "I cannot and will not ..."
    r"\bi can(?:not|['’]t) and (?:will not|won['’]t)\b",
    # Spanish, French, German
    r"\blo siento,? (?:pero )?no (?:puedo|me es posible)",
    r"\bno puedo (?:ayudar|ayudarte|ayudarle|proporcionar|asistir|cumplir|responder a eso)",
    r"\b(?:je suis )?d[ée]sol[ée]e?,? (?:mais )?je ne (?:peux|suis pas en mesure)",
    r"\bje ne (?:peux pas|suis pas en mesure de) (?:vous |t['’])?(?:aider|fournir|r[ée]pondre)",
    r"\b(?:es )?tut mir leid,? (?:aber )?(?:ich kann|das kann ich) (?:ihnen |dir )?(?:dabei |damit |hierbei )?nicht",
    r"\bich kann (?:ihnen |dir )?(?:dabei |damit |hierbei |bei dieser anfrage )?nicht (?:helfen|behilflich sein|weiterhelfen)",
)


class _RefusalsSection(Protocol):
    patterns: list[str] | None
    extra_patterns: list[str]


def combined_pattern(patterns: Sequence[str] | None = None) -> str:
    """One case-insensitive alternation of ``patterns`` (default: the shipped list), with
    ASCII word boundaries."""
    pats = list(PATTERNS if patterns is None else patterns)
    if not pats:
        return ""
    # ASCII word boundaries: Unicode-aware \b keeps Rust's regex engine off its fast DFA
    # (measured 12x slower on a million responses) and the phrasings are ASCII-bounded.
    return "(?i)" + "|".join(f"(?:{p})" for p in pats).replace(r"\b", r"(?-u:\b)")


def refusal_expr(
    text: pl.Expr,
    patterns: Sequence[str] | None = None,
    finish_reason: pl.Expr | None = None,
) -> pl.Expr:
    """Boolean expression: does the response ``text`` refuse?

    Null text gives False (no response, no refusal) unless ``finish_reason`` is given and
    says ``content_filter``. An empty pattern list detects nothing.
    """
    pat = combined_pattern(patterns)
    hit = text.str.slice(0, HEAD_CHARS).str.contains(pat).fill_null(False) if pat else pl.lit(False)
    if finish_reason is not None:
        hit = hit | (finish_reason == "content_filter").fill_null(False)
    return hit


def is_refusal(text: str | None, patterns: Sequence[str] | None = None) -> bool:
    """Convenience for one string (tests, the judge's pre-filter)."""
    frame = pl.DataFrame({"t": [text]}, schema={"t": pl.String})
    return bool(frame.select(refusal_expr(pl.col("t"), patterns)).item())


def check_pattern(pattern: str, where: str) -> None:
    """Raise :class:`ConfigError` naming ``where`` when ``pattern`` is not a valid regex."""
    try:
        pl.Series("t", ["x"], dtype=pl.String).str.contains("(?i)" + pattern)
    except Exception as exc:  # polars raises ComputeError for bad regexes
        first = str(exc).strip().splitlines()
        detail = next((ln.strip() for ln in first if ln.strip().startswith("error:")), "")
        raise ConfigError(
            f"{where}: invalid regular expression {pattern!r}"
            + (f" ({detail.removeprefix('error: ')})" if detail else "")
        ) from exc


def patterns_from_config(
    section: _RefusalsSection | None, source: str = "llmobs.yaml"
) -> list[str]:
    """The pattern list a configuration asks for: ``patterns`` (or the shipped list)
    followed by ``extra_patterns``; each checked."""
    if section is None:
        return list(PATTERNS)
    base = list(PATTERNS) if section.patterns is None else list(section.patterns)
    if section.patterns is not None:
        for i, p in enumerate(section.patterns):
            check_pattern(p, f"{source}: refusals.patterns[{i}]")
    for i, p in enumerate(section.extra_patterns):
        check_pattern(p, f"{source}: refusals.extra_patterns[{i}]")
    return base + list(section.extra_patterns)
