"""The --where language: precedence, quoting, escapes, unicode, kinds, and exact errors."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from llmobs_cli.core.explore.calls import record_kinds
from llmobs_cli.core.explore.where import compile_where, parse, tokenize
from llmobs_cli.errors import UsageError

KINDS = {**record_kinds(), "tokens": "num"}
ROWS = pl.DataFrame(
    {
        "trace_id": ["a", "b", "c", "d", "e"],
        "route": ["chat", "qa", "chat", None, "refunds"],
        "latency_ms": [6000.0, 120.0, 250.0, None, 5000.0],
        "input_tokens": [10, 2000, 30, None, 5],
        "prompt": ['say "hi"', "it's café time", "naïve 日本語 query", None, "Refund me\nnow"],
        "tags": [["vip", "beta"], [], ["beta"], None, ["vip"]],
        "timestamp": [datetime(2026, 11, d, tzinfo=UTC) for d in (1, 2, 3, 4, 5)],
        "metadata": ['{"tier":"gold","n":3}', '{"n":10}', '{"tier":"free"}', None, "{}"],
        "messages": [
            [{"role": "user", "content": "hello there"}],
            None,
            [{"role": "user", "content": "x"}, {"role": "assistant", "content": "WORLD"}],
            None,
            [],
        ],
    },
    schema_overrides={"timestamp": pl.Datetime("us", "UTC")},
)


def ids(text: str) -> list[str]:
    return ROWS.filter(compile_where(text, KINDS).expr)["trace_id"].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("route=chat", ["a", "c"]),
        ("route == chat", ["a", "c"]),
        ("route != chat", ["b", "d", "e"]),  # a missing route is "not chat"
        ("not route = chat", ["b", "d", "e"]),
        ("latency_ms > 5s", ["a"]),
        ("latency_ms >= 5s", ["a", "e"]),
        ("latency_ms < 0.25s", ["b"]),
        ("latency_ms <= 250ms", ["b", "c"]),
        ("latency_ms > 1m", []),
        ("input_tokens >= 1e3", ["b"]),
        ("latency_ms = null", ["d"]),
        ("route != null and latency_ms > 200", ["a", "c", "e"]),
        # and binds tighter than or; not tighter than and
        ("route=qa or route=chat and latency_ms>1000", ["a", "b"]),
        ("(route=qa or route=chat) and latency_ms>1000", ["a"]),
        ("not route=chat and latency_ms>100", ["b", "e"]),
        ("not (route=chat or route=qa)", ["d", "e"]),
        ("route in (chat, refunds)", ["a", "c", "e"]),
        ("route not in (chat, 'refunds')", ["b", "d"]),
        ("route in (qa, null)", ["b", "d"]),
        # quoting and escapes
        ('prompt = "say \\"hi\\""', ["a"]),
        ("prompt = 'it\\'s café time'", ["b"]),
        ('prompt = "it\'s caf\\u00e9 time"', ["b"]),
        ("prompt ~ '\\n'", ["e"]),
        ("prompt ~ café", ["b"]),
        ("prompt ~ 日本語", ["c"]),
        ("prompt ~ NAÏVE", ["c"]),  # case-insensitive
        ("prompt ~ '^refund'", ["e"]),
        ("prompt !~ refund", ["a", "b", "c", "d"]),
        ('prompt ~ "\\d"', []),
        # lists, messages, metadata, times
        ("tags = vip", ["a", "e"]),
        ("tags != vip", ["b", "c", "d"]),
        ("tags ~ '^bet'", ["a", "c"]),
        ("tags in (beta, nothing)", ["a", "c"]),
        ("messages ~ world", ["c"]),
        ("metadata.tier = gold", ["a"]),
        ("metadata.tier != gold", ["b", "c", "d", "e"]),
        ("metadata.n >= 3", ["a", "b"]),
        ("metadata.n = 10", ["b"]),
        ("metadata.tier in (gold, free)", ["a", "c"]),
        ("timestamp >= 2026-11-03", ["c", "d", "e"]),
        ("timestamp < '2026-11-02T00:00:00Z'", ["a"]),
        ("AND_ = 1 or route=qa", None),  # unknown field: checked below
    ],
)
def test_filters(text: str, expected: list[str] | None) -> None:
    if expected is None:
        with pytest.raises(UsageError):
            ids(text)
        return
    assert ids(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "position 1: empty expression"),
        ("route=", "position 7: expected a value after '=', got the end"),
        ("route = chat and", "position 17: expected a field name, got the end"),
        ("route chat", "position 7: expected an operator after 'route', got 'chat'"),
        (
            "latncy_ms > 5",
            "position 1: unknown field 'latncy_ms' (did you mean latency_ms?)",
        ),
        (
            "route=chat and rout=qa",
            "position 16: unknown field 'rout' (did you mean route or prompt?)",
        ),
        ("(route=chat", "position 12: expected ')' to close the '(' at position 1"),
        ("route=chat)", "position 11: unexpected ')' (expected 'and', 'or' or the end)"),
        ('route="chat', 'position 7: unterminated string (no closing ")'),
        ("route='a\\u12'", "position 9: \\u needs four hex digits"),
        ("latency_ms > abc", "position 14: latency_ms is a number; 'abc' is not"),
        (
            "input_tokens > 5s",
            "position 16: input_tokens is not a duration field; '5s' is a duration",
        ),
        ("route in chat", "position 10: expected '(' after 'in'"),
        ("route in (a b)", "position 13: expected ',' or ')' in the list opened at 10"),
        ("route = and", "position 9: expected a value after '=', got 'and'"),
        ("route & qa", "position 7: unexpected character '&' (quote text that holds it)"),
        (
            "route ! qa",
            "position 7: unexpected '!' (operators: ==, !=, <=, >=, !~, =, <, >, ~)",
        ),
        (
            "timestamp > yesterday",
            "position 13: timestamp is a time; 'yesterday' is not an RFC 3339 date or time",
        ),
        ("tags > a", "position 8: tags is a list: use =, !=, ~ or in"),
        ("messages = hi", "position 12: messages holds text: search it with ~"),
        ("route > null", "position 9: null compares only with = or != (got '>')"),
    ],
)
def test_errors_name_the_position(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        compile_where(text, KINDS)
    assert str(info.value) == "--where: " + message


def test_bad_regex_names_its_position() -> None:
    with pytest.raises(UsageError) as info:
        compile_where("prompt ~ '(unclosed'", KINDS)
    assert str(info.value) == (
        "--where: position 10: invalid regular expression '(unclosed' (unclosed group)"
    )


def test_tokens_keep_unicode_and_positions() -> None:
    toks = tokenize("prompt~'日本' and x>=1")
    assert [(t.kind, t.text, t.pos) for t in toks] == [
        ("word", "prompt", 1),
        ("op", "~", 7),
        ("string", "'日本'", 8),
        ("word", "and", 13),
        ("word", "x", 17),
        ("op", ">=", 18),
        ("word", "1", 20),
        ("end", "", 21),
    ]


def test_keywords_are_case_insensitive_and_tree_is_nested() -> None:
    tree = parse("NOT a=1 OR b=2 AND c=3")
    assert type(tree).__name__ == "BoolOp" and tree.op == "or"  # type: ignore[union-attr]
    assert type(tree.parts[0]).__name__ == "Not"  # type: ignore[union-attr]
    assert type(tree.parts[1]).__name__ == "BoolOp"  # type: ignore[union-attr]
    # fields stay case-sensitive
    with pytest.raises(UsageError, match="unknown field 'Route'"):
        compile_where("Route = chat", KINDS)


def test_never_evaluates_python() -> None:
    # Text that would run under eval() is just an unknown field or a bad character here.
    for text in ("__import__('os').system('true')", "route = chat; import os"):
        with pytest.raises(UsageError):
            compile_where(text, KINDS)
