"""Refusal patterns: real-looking refusals are caught, near-misses are not."""

from __future__ import annotations

import polars as pl
import pytest

from llmobs_cli.core.record.config import RefusalsConfig
from llmobs_cli.core.report.refusals import (
    HEAD_CHARS,
    PATTERNS,
    is_refusal,
    patterns_from_config,
    refusal_expr,
)
from llmobs_cli.errors import ConfigError

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I’m sorry, but I can’t assist with that request.",
    "Sorry, I cannot provide instructions for making weapons.",
    "I can't help with that.",
    "I cannot help you with this request.",
    "I won't be able to help with that, but I can suggest some resources.",
    "I'm unable to assist with that request.",
    "I am not able to provide medical diagnoses. Please consult a doctor.",
    "As an AI language model, I cannot browse the internet.",
    "As an AI, I don't have personal opinions, and I can't take sides.",
    "I must respectfully decline this request.",
    "I'm afraid I can't do that.",
    "That's not something I can help with.",
    "This request violates our usage policies, so I can't continue.",
    "Creating that content would go against my guidelines.",
    "It wouldn't be appropriate for me to share someone's home address.",
    "I'm not comfortable providing that information.",
    "I cannot and will not generate that content.",
    "I'm not allowed to share internal account details.",
    "Lo siento, pero no puedo ayudarte con eso.",
    "Désolé, mais je ne peux pas vous aider avec cette demande.",
    "Es tut mir leid, aber ich kann Ihnen dabei nicht helfen.",
    "I CAN'T ASSIST WITH THAT.",
]

NEAR_MISSES = [
    "I can't help but notice that your function never returns.",
    "I cannot stress enough how important backups are.",
    "Sorry for the delay! Here is the summary you asked for.",
    "I can't wait to see what you build with it.",
    "You can't do that in Python 2, but here is how it works in Python 3.",
    "The refund has been issued; you cannot cancel it after 30 days.",
    "Unfortunately the flight is delayed by two hours. Here are your options.",
    "The error 'unable to provide credentials' means your token expired.",
    "I decided to refactor the parser first.",
    "Policies: refunds are processed within 5 business days.",
    "Happy to help! The capital of France is Paris.",
    "We couldn't find that order number; please double-check it and try again.",
    "",
]


@pytest.mark.parametrize("text", REFUSALS)
def test_refusals_are_caught(text: str) -> None:
    assert is_refusal(text)


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_are_not_refusals(text: str) -> None:
    assert not is_refusal(text)


def test_null_is_not_a_refusal_and_content_filter_is() -> None:
    df = pl.DataFrame(
        {
            "response": [None, None, "Sure, here it is.", "I can't help with that."],
            "finish_reason": [None, "content_filter", "stop", "stop"],
        }
    )
    plain = df.select(refusal_expr(pl.col("response"))).to_series().to_list()
    assert plain == [False, False, False, True]
    with_fr = (
        df.select(refusal_expr(pl.col("response"), finish_reason=pl.col("finish_reason")))
        .to_series()
        .to_list()
    )
    assert with_fr == [False, True, False, True]


def test_quoted_refusal_far_into_a_long_answer_is_not_a_refusal() -> None:
    text = (
        "Here is the transcript analysis. "
        + "x " * HEAD_CHARS
        + "The bot said 'I can't help with that'."
    )
    assert not is_refusal(text)
    assert is_refusal("I can't help with that. " + "x " * HEAD_CHARS)


def test_vectorised_matches_scalar() -> None:
    texts = REFUSALS + NEAR_MISSES
    got = pl.DataFrame({"t": texts}).select(refusal_expr(pl.col("t"))).to_series().to_list()
    assert got == [is_refusal(t) for t in texts]
    assert sum(got) == len(REFUSALS)


def test_config_replaces_and_extends() -> None:
    assert patterns_from_config(None) == list(PATTERNS)
    extended = patterns_from_config(RefusalsConfig(extra_patterns=[r"\bnope\b"]))
    assert extended[-1] == r"\bnope\b" and len(extended) == len(PATTERNS) + 1
    assert is_refusal("Nope, not doing that.", extended)
    assert not is_refusal("Nope, not doing that.")
    replaced = patterns_from_config(RefusalsConfig(patterns=[r"^computer says no"]))
    assert replaced == [r"^computer says no"]
    assert is_refusal("Computer says no.", replaced)
    assert not is_refusal("I can't help with that.", replaced)
    assert not is_refusal("I can't help with that.", [])


def test_bad_pattern_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError) as err:
        patterns_from_config(RefusalsConfig(extra_patterns=["ok", "(unclosed"]), "my.yaml")
    assert str(err.value).startswith(
        "my.yaml: refusals.extra_patterns[1]: invalid regular expression '(unclosed'"
    )
