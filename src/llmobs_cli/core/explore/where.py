"""``--where``: a small filter language over record fields, compiled to a Polars expression.

The text is tokenised and parsed by hand (recursive descent) into a tree that becomes one
``pl.Expr``; nothing is ever handed to ``eval``. Grammar, loosest binding first::

    expr    := and ("or" and)*
    and     := unary ("and" unary)*
    unary   := "not" unary | "(" expr ")" | test
    test    := FIELD OP value | FIELD ["not"] "in" "(" value ("," value)* ")"
    OP      := "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "~" | "!~"
    value   := 'text' | "text" | NUMBER | DURATION | WORD | true | false | null

* ``FIELD`` is a record field (``route``, ``latency_ms``, ``tags`` …), ``metadata.KEY``, or
  one of the derived fields the caller declares (``tokens``, ``score`` …).
* Strings take ``\\"``, ``\\'``, ``\\\\``, ``\\n``, ``\\t`` and ``\\uXXXX`` escapes; a bare
  word (``chat``, ``gpt-4o``, ``v1.2.0``, ``2026-11-01``) is a string too.
* ``5s``, ``200ms``, ``2m``, ``1h``, ``1d`` are durations in milliseconds; they compare with
  ``*_ms`` fields only.
* ``~`` is a case-insensitive regular-expression search (a plain word is a substring
  match); ``!~`` its negation. On a list field (``tags``) it matches any element; on
  ``messages`` and ``retrieved`` it searches their contents.
* ``=`` on a list field means "contains"; ``!=`` "does not contain".
* A comparison with a missing value is false (``!=`` is true), so ``not`` stays classical.

Every mistake is a :class:`~llmobs_cli.errors.UsageError` naming the 1-based character
position; an unknown field suggests the closest known ones.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import polars as pl

from llmobs_cli.errors import UsageError

#: How a field compares: text, number, duration-in-ms number, time, boolean, list of
#: strings, list of messages or documents (searchable text only), or a metadata value.
Kind = Literal["str", "num", "ms", "time", "bool", "list", "text_list", "meta"]

OPS = ("==", "!=", "<=", ">=", "!~", "=", "<", ">", "~")
KEYWORDS = ("and", "or", "not", "in")
_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|min|m|h|d)$")
_NUMBER = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_MS = {"ms": 1.0, "s": 1e3, "m": 6e4, "min": 6e4, "h": 3.6e6, "d": 8.64e7}
_BARE_EXTRA = set("_.-:/@+")


@dataclass(frozen=True)
class Token:
    kind: Literal["op", "lparen", "rparen", "comma", "string", "word", "end"]
    text: str
    pos: int  # 1-based character position of the token's first character
    value: object = None  # decoded string, or the number for words that are numbers


@dataclass(frozen=True)
class Compiled:
    """A compiled filter: the expression, and the fields it reads."""

    expr: pl.Expr
    fields: frozenset[str] = field(default_factory=frozenset)


def _fail(pos: int, message: str) -> UsageError:
    return UsageError(f"--where: position {pos}: {message}")


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; strings are decoded, positions are 1-based."""
    out: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        pos = i + 1
        if ch == "(":
            out.append(Token("lparen", ch, pos))
            i += 1
        elif ch == ")":
            out.append(Token("rparen", ch, pos))
            i += 1
        elif ch == ",":
            out.append(Token("comma", ch, pos))
            i += 1
        elif ch in "\"'":
            value, i = _read_string(text, i)
            out.append(Token("string", text[pos - 1 : i], pos, value))
        elif ch in "=!<>~":
            op = next((o for o in OPS if text.startswith(o, i)), None)
            if op is None:
                raise _fail(pos, f"unexpected '{ch}' (operators: {', '.join(OPS)})")
            out.append(Token("op", op, pos))
            i += len(op)
        elif ch.isalnum() or ch in _BARE_EXTRA:
            j = i
            while j < n and (text[j].isalnum() or text[j] in _BARE_EXTRA):
                j += 1
            out.append(Token("word", text[i:j], pos))
            i = j
        else:
            raise _fail(pos, f"unexpected character '{ch}' (quote text that holds it)")
    out.append(Token("end", "", n + 1))
    return out


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Decode the quoted string at ``text[start]``; returns it and the index after it."""
    quote = text[start]
    buf: list[str] = []
    i = start + 1
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
    while i < len(text):
        ch = text[i]
        if ch == quote:
            return "".join(buf), i + 1
        if ch == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt in escapes:
                buf.append(escapes[nxt])
                i += 2
                continue
            if nxt == "u":
                hexdigits = text[i + 2 : i + 6]
                if len(hexdigits) == 4 and all(c in "0123456789abcdefABCDEF" for c in hexdigits):
                    buf.append(chr(int(hexdigits, 16)))
                    i += 6
                    continue
                raise _fail(i + 1, "\\u needs four hex digits")
            # Unknown escapes keep the backslash: regexes like '\d' stay as typed.
            buf.append(ch)
            buf.append(nxt)
            i += 2
            continue
        buf.append(ch)
        i += 1
    raise _fail(start + 1, f"unterminated string (no closing {quote})")


# --- the tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Test:
    field: str
    op: str  # one of OPS, or "in" / "not in"
    values: tuple[Token, ...]
    pos: int


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    parts: tuple[Node, ...]


Node = Test | Not | BoolOp


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def is_kw(self, tok: Token, word: str) -> bool:
        return tok.kind == "word" and tok.text.lower() == word

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise _fail(1, "empty expression")
        node = self.expr()
        tok = self.peek()
        if tok.kind != "end":
            raise _fail(tok.pos, f"unexpected '{tok.text}' (expected 'and', 'or' or the end)")
        return node

    def expr(self) -> Node:
        parts = [self.conj()]
        while self.is_kw(self.peek(), "or"):
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else BoolOp("or", tuple(parts))

    def conj(self) -> Node:
        parts = [self.unary()]
        while self.is_kw(self.peek(), "and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else BoolOp("and", tuple(parts))

    def unary(self) -> Node:
        tok = self.peek()
        if self.is_kw(tok, "not"):
            self.take()
            return Not(self.unary())
        if tok.kind == "lparen":
            self.take()
            node = self.expr()
            close = self.peek()
            if close.kind != "rparen":
                raise _fail(close.pos, f"expected ')' to close the '(' at position {tok.pos}")
            self.take()
            return node
        return self.test()

    def test(self) -> Node:
        tok = self.take()
        if tok.kind != "word" or tok.text.lower() in KEYWORDS:
            what = "the end" if tok.kind == "end" else f"'{tok.text}'"
            raise _fail(tok.pos, f"expected a field name, got {what}")
        op_tok = self.take()
        if self.is_kw(op_tok, "in"):
            return Test(tok.text, "in", self.value_list(), tok.pos)
        if self.is_kw(op_tok, "not") and self.is_kw(self.peek(), "in"):
            self.take()
            return Test(tok.text, "not in", self.value_list(), tok.pos)
        if op_tok.kind != "op":
            what = "the end" if op_tok.kind == "end" else f"'{op_tok.text}'"
            raise _fail(op_tok.pos, f"expected an operator after '{tok.text}', got {what}")
        return Test(tok.text, op_tok.text, (self.value(op_tok),), tok.pos)

    def value(self, after: Token) -> Token:
        tok = self.take()
        if tok.kind in ("string", "word") and not (
            tok.kind == "word" and tok.text.lower() in KEYWORDS
        ):
            return tok
        what = "the end" if tok.kind == "end" else f"'{tok.text}'"
        raise _fail(tok.pos, f"expected a value after '{after.text}', got {what}")

    def value_list(self) -> tuple[Token, ...]:
        open_tok = self.take()
        if open_tok.kind != "lparen":
            raise _fail(open_tok.pos, "expected '(' after 'in'")
        values = [self.value(open_tok)]
        while self.peek().kind == "comma":
            comma = self.take()
            values.append(self.value(comma))
        close = self.peek()
        if close.kind != "rparen":
            raise _fail(close.pos, f"expected ',' or ')' in the list opened at {open_tok.pos}")
        self.take()
        return tuple(values)


def parse(text: str) -> Node:
    """The syntax tree of ``text`` (a :class:`UsageError` with a position when malformed)."""
    return _Parser(tokenize(text)).parse()


# --- compiling -------------------------------------------------------------------------

ExprFor = Callable[[str], pl.Expr]


def fields_of(node: Node) -> set[str]:
    if isinstance(node, Test):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.inner)
    return set().union(*(fields_of(p) for p in node.parts))


def compile_where(
    text: str,
    kinds: Mapping[str, Kind],
    expr_for: ExprFor | None = None,
) -> Compiled:
    """Compile ``text`` against the fields in ``kinds`` (plus any ``metadata.KEY``).

    ``expr_for(name)`` gives the column expression of a field (default ``pl.col(name)``;
    ``metadata.KEY`` defaults to a JSON-path read of the metadata column).
    """
    node = parse(text)
    for name, pos in _field_positions(node):
        if name not in kinds and not _is_metadata(name):
            raise _unknown(name, pos, kinds)
    col = expr_for or _default_expr
    return Compiled(_compile(node, kinds, col), frozenset(fields_of(node)))


def _field_positions(node: Node) -> list[tuple[str, int]]:
    if isinstance(node, Test):
        return [(node.field, node.pos)]
    if isinstance(node, Not):
        return _field_positions(node.inner)
    return [fp for p in node.parts for fp in _field_positions(p)]


def _is_metadata(name: str) -> bool:
    return name.startswith("metadata.") and len(name) > len("metadata.")


def _unknown(name: str, pos: int, kinds: Mapping[str, Kind]) -> UsageError:
    close = difflib.get_close_matches(name, list(kinds), n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(close)}?)" if close else " (or metadata.KEY)"
    return _fail(pos, f"unknown field '{name}'{hint}")


def _default_expr(name: str) -> pl.Expr:
    from llmobs_cli.core.record.fields import field_expr

    return field_expr(name)


def _compile(node: Node, kinds: Mapping[str, Kind], col: ExprFor) -> pl.Expr:
    if isinstance(node, Not):
        return ~_compile(node.inner, kinds, col)
    if isinstance(node, BoolOp):
        exprs = [_compile(p, kinds, col) for p in node.parts]
        return pl.all_horizontal(exprs) if node.op == "and" else pl.any_horizontal(exprs)
    kind: Kind = kinds.get(node.field, "meta")
    return _test(node, kind, col(node.field))


def _test(t: Test, kind: Kind, c: pl.Expr) -> pl.Expr:
    op = t.op
    if op in ("in", "not in"):
        values = [_scalar(v, kind, t.field) for v in t.values]
        if kind == "list":
            hit = pl.any_horizontal([c.list.contains(pl.lit(v)) for v in values])
        elif kind == "meta":
            hit = pl.any_horizontal([_meta_eq(c, v) for v in values])
        elif any(v is None for v in values):
            hit = c.is_in([v for v in values if v is not None]) | c.is_null()
        else:
            hit = c.is_in(values)
        hit = hit.fill_null(False)
        return ~hit if op == "not in" else hit
    tok = t.values[0]
    if op in ("~", "!~"):
        hit = _search(c, kind, _pattern(tok), t.field).fill_null(False)
        return ~hit if op == "!~" else hit
    value = _scalar(tok, kind, t.field)
    if value is None:
        if op in ("=", "=="):
            return c.is_null()
        if op == "!=":
            return c.is_not_null()
        raise _fail(tok.pos, f"null compares only with = or != (got '{op}')")
    if kind == "list":
        if op not in ("=", "==", "!="):
            raise _fail(tok.pos, f"{t.field} is a list: use =, !=, ~ or in")
        hit = c.list.contains(pl.lit(value)).fill_null(False)
        return ~hit if op == "!=" else hit
    if kind == "text_list":
        raise _fail(tok.pos, f"{t.field} holds text: search it with ~")
    if kind == "meta":
        if op in ("=", "==", "!="):
            hit = _meta_eq(c, value)
            return ~hit if op == "!=" else hit
        if isinstance(value, float):
            c = c.cast(pl.Float64, strict=False)
    if kind == "bool" and op not in ("=", "==", "!="):
        raise _fail(tok.pos, f"{t.field} is true or false: use = or !=")
    lit = pl.lit(value)
    if op in ("=", "=="):
        return c.eq(lit).fill_null(False)
    if op == "!=":
        return c.ne_missing(lit)
    cmp = {"<": c.lt, "<=": c.le, ">": c.gt, ">=": c.ge}[op]
    return cmp(lit).fill_null(False)


def _meta_eq(c: pl.Expr, value: object) -> pl.Expr:
    """A metadata value equals ``value``: numerically when it is a number, else as text."""
    if isinstance(value, float):
        return c.cast(pl.Float64, strict=False).eq(value).fill_null(False)
    if isinstance(value, bool):
        return c.str.to_lowercase().eq("true" if value else "false").fill_null(False)
    return c.eq(pl.lit(str(value))).fill_null(False)


def _pattern(tok: Token) -> str:
    text = str(tok.value) if tok.kind == "string" else tok.text
    pattern = "(?i)" + text
    try:  # Polars' (Rust) regex syntax: let it judge, and say where the pattern is.
        pl.select(pl.lit("").str.contains(pattern)).item()
    except Exception as exc:  # polars raises ComputeError; keep only its first line
        lines = [ln.strip() for ln in str(exc).splitlines()]
        why = next((ln[len("error: ") :] for ln in lines if ln.startswith("error: ")), "")
        raise _fail(
            tok.pos, f"invalid regular expression {tok.text} ({why or 'not valid'})"
        ) from exc
    return pattern


def _search(c: pl.Expr, kind: Kind, pattern: str, name: str) -> pl.Expr:
    if kind in ("str", "meta"):
        return c.str.contains(pattern)
    if kind == "list":
        return c.list.eval(pl.element().str.contains(pattern)).list.any()
    if kind == "text_list":
        return c.list.eval(pl.element().struct.field("content").str.contains(pattern)).list.any()
    return c.cast(pl.String).str.contains(pattern)


def _scalar(tok: Token, kind: Kind, name: str) -> object:
    """The Python value of a value token for a field of ``kind``."""
    text = tok.text
    quoted = tok.kind == "string"
    raw = str(tok.value) if quoted else text
    low = raw.lower()
    if not quoted and low == "null":
        return None
    if kind in ("num", "ms"):
        dur = _DURATION.match(raw)
        if dur and not _NUMBER.match(raw):
            if kind != "ms":
                raise _fail(tok.pos, f"{name} is not a duration field; '{text}' is a duration")
            return float(dur.group(1)) * _MS[dur.group(2)]
        if _NUMBER.match(raw):
            return float(raw)
        raise _fail(tok.pos, f"{name} is a number; '{raw}' is not")
    if kind == "time":
        return _time(raw, tok.pos, name)
    if kind == "bool":
        if low in ("true", "false"):
            return low == "true"
        raise _fail(tok.pos, f"{name} is true or false; got '{raw}'")
    if kind == "meta" and not quoted:
        if _NUMBER.match(raw):
            return float(raw)
        if low in ("true", "false"):
            return low == "true"
    return raw


def _time(raw: str, pos: int, name: str) -> datetime:
    from llmobs_cli.core.record.windows import parse_time

    try:
        return parse_time(raw, "--where")
    except UsageError:
        raise _fail(pos, f"{name} is a time; '{raw}' is not an RFC 3339 date or time") from None
