"""Names a user types, checked in one place: an unknown one is exit 2 with a suggestion.

Every option or configuration key that names something goes through this module:

* a **field** (``--by``, ``--features``, gate scopes ``route=chat:``, ``report.by``): a
  record field or ``metadata.KEY`` — :func:`check_field`; and, once the data is read,
  a field the schema knows but the dump never fills (``--by session_id`` on a dump
  without session ids) — :func:`require_fields`;
* a **value in the data** (the ``chat`` of a gate scope ``route=chat``, the ``ROUTE`` of
  ``sample --rate ROUTE=R``) — :func:`require_values`;
* a **fixed vocabulary** (drift features, evaluators, criteria) — :func:`check_name`.

The message always has the same shape, so people and scripts learn it once::

    --fail-on: unknown route 'chatt' in t.jsonl (did you mean 'chat'? known: chat, refunds)

Suggestions come from :func:`difflib.get_close_matches` (ratio ≥ 0.6, as click's own
"did you mean" for command names). Everything here is pure and raises typed errors
(:class:`~llmobs_cli.errors.UsageError` by default, exit 2); the data checks run one
cheap aggregation and look at values only on the error path.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import polars as pl

from llmobs_cli.errors import LlmobsError, UsageError

#: Known values listed in a message at most (the rest are counted).
MAX_LISTED = 12
#: Rows whose metadata are looked at to list the keys a dump has (error path only).
METADATA_PROBE = 2000


def suggestions(name: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known names closest to ``name`` (case-insensitive), best first."""
    pool = list(dict.fromkeys(str(k) for k in known))
    lowered = {k.lower(): k for k in pool}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[c] for c in close]


def listing(known: Iterable[str], limit: int = MAX_LISTED) -> str:
    """``a, b, c`` — at most ``limit`` names, then how many more."""
    items = list(dict.fromkeys(str(k) for k in known))
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown}, … ({len(items) - limit} more)"


def unknown(
    option: str,
    kind: str,
    name: str,
    known: Iterable[str],
    *,
    where: str = "",
    extra: str = "",
    error: Callable[..., LlmobsError] = UsageError,
    limit: int = MAX_LISTED,
    pool: Iterable[str] | None = None,
) -> LlmobsError:
    """The error for an unknown name: ``OPTION: unknown KIND 'NAME'[ in WHERE] (did you
    mean 'X'? known: …[; EXTRA])``. Suggestions come from ``pool`` when given (all the
    valid names, of which ``known`` lists the useful few), else from ``known``."""
    known = list(known)
    close = suggestions(name, known if pool is None else pool)
    body = f"known: {listing(known, limit)}" + (f"; {extra}" if extra else "")
    place = f" in {where}" if where else ""
    return _make(
        error, f"{option}: unknown {kind} '{name}'{place} ({_did_you_mean(close)}{body})", option
    )


def _make(error: Any, message: str, option: str) -> LlmobsError:
    """``error(message, param=option)`` for an error class; a factory (a caller's own
    ``err(message)`` that already knows its parameter) gets the message only."""
    if isinstance(error, type):
        return error(message, param=option)
    return error(message)


def _did_you_mean(close: Sequence[str]) -> str:
    """``did you mean 'a' or 'b'? `` (with the trailing space), or nothing."""
    if not close:
        return ""
    return "did you mean " + " or ".join(f"'{c}'" for c in close) + "? "


def check_name(
    name: str,
    known: Sequence[str],
    option: str,
    kind: str,
    *,
    extra: str = "",
    error: type[LlmobsError] = UsageError,
) -> str:
    """``name`` if it is one of ``known``; else the unknown-name error."""
    if name in known:
        return name
    raise unknown(option, kind, name, known, extra=extra, error=error)


# --- fields ----------------------------------------------------------------------------


def check_field(name: str, option: str = "--by", *, error: type[LlmobsError] = UsageError) -> str:
    """``name`` if it is a record field or ``metadata.KEY``; else the unknown-name error."""
    from llmobs_cli.core.record.schema import FIELDS

    if name in FIELDS or (name.startswith("metadata.") and len(name) > len("metadata.")):
        return name
    raise unknown(
        option, "field", name, FIELDS, extra="or metadata.KEY", error=error, limit=len(FIELDS)
    )


def dump_name(sources: Sequence[str]) -> str:
    """How messages name the data: the file(s) it came from."""
    if not sources:
        return "the input"
    if len(sources) <= 3:
        return ", ".join(sources)
    return f"{', '.join(sources[:2])} and {len(sources) - 2} more file(s)"


def filled_fields(frame: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """Canonical columns with at least one value, and ``metadata.KEY`` keys seen in the
    first :data:`METADATA_PROBE` metadata objects (for messages: the error path only)."""
    lf = frame.lazy()
    cols = lf.collect_schema().names()
    if not cols:
        return []
    has = lf.select(pl.col(c).is_not_null().any() for c in cols).collect().row(0)
    out = [c for c, h in zip(cols, has, strict=True) if h and not c.startswith("_")]
    if "metadata" in out:
        out.remove("metadata")
        out += [f"metadata.{k}" for k in _metadata_keys(lf)]
    return out


def _metadata_keys(lf: pl.LazyFrame) -> list[str]:
    texts = (
        lf.select(pl.col("metadata").drop_nulls().head(METADATA_PROBE)).collect().to_series()
        if lf.collect_schema().get("metadata") == pl.String()
        else pl.Series([], dtype=pl.String())
    )
    keys: dict[str, None] = {}
    for text in texts.to_list():
        try:
            obj = json.loads(text)
        except ValueError:
            continue
        if isinstance(obj, dict):
            keys.update(dict.fromkeys(str(k) for k in obj))
    return sorted(keys)


def require_fields(
    frame: pl.DataFrame | pl.LazyFrame,
    fields: Sequence[str],
    sources: Sequence[str],
    option: str = "--by",
    sample: Callable[[], pl.DataFrame] | None = None,
) -> None:
    """Every field of ``fields`` has a value in some row of ``frame``; else exit 2.

    ``sample`` (called only on that error) gives rows to list the fields the dump does
    fill, when ``frame`` holds only group keys (the streaming report).

    A field the schema knows but this dump never fills (``--by session_id`` on a dump
    without session ids, ``--by metadata.typo``) would make one group of nulls, or one
    feature without data: the user named something the data does not have.
    """
    from llmobs_cli.core.record.fields import field_expr

    wanted = list(dict.fromkeys(f for f in fields if f))
    if not wanted:
        return
    lf = frame.lazy()
    schema = lf.collect_schema()
    exprs = []
    for f in wanted:
        base = "metadata" if f.startswith("metadata.") else f
        if f in schema:  # already extracted (a frame of group keys)
            exprs.append(pl.col(f).is_not_null().any().alias(f))
        elif base not in schema or (f.startswith("metadata.") and schema[base] != pl.String()):
            exprs.append(pl.lit(False).alias(f))
        else:
            exprs.append(field_expr(f).is_not_null().any().alias(f))
    if lf.select(pl.len()).collect().item() == 0:
        return  # nothing read: the empty-input / empty-window checks say so
    # Fast path for metadata keys: parsing every row's JSON costs more than the report;
    # the first rows whose text names the key almost always show it has a value.
    seen = {f for f in wanted if f.startswith("metadata.") and _metadata_key_seen(lf, f)}
    rest = [e for f, e in zip(wanted, exprs, strict=True) if f not in seen]
    present = lf.select(rest).collect().row(0, named=True) if rest else {}
    missing = [f for f in wanted if f not in seen and not present[f]]
    if not missing:
        return
    name = missing[0]
    raise UsageError(
        f"{option}: {dump_name(sources)} has no value for '{name}' in any row "
        + _paren(name, filled_fields(sample() if sample else lf), "fields with values there"),
        param=option,
    )


def _metadata_key_seen(lf: pl.LazyFrame, name: str) -> bool:
    """Whether ``metadata.KEY`` has a value in one of the first rows whose metadata text
    contains ``"KEY"`` (a cheap literal scan; False means "look at every row")."""
    from llmobs_cli.core.record.fields import field_expr

    key = name[len("metadata.") :]
    if lf.collect_schema().get("metadata") != pl.String():
        return False
    probe = lf.filter(pl.col("metadata").str.contains(json.dumps(key), literal=True))
    hit = probe.head(METADATA_PROBE).select(field_expr(name).is_not_null().any()).collect()
    return bool(hit.item())


def _paren(name: str, known: Sequence[str], label: str) -> str:
    return f"({_did_you_mean(suggestions(name, known))}{label}: {listing(known)})"


# --- values ----------------------------------------------------------------------------


def require_values(
    frame: pl.DataFrame | pl.LazyFrame,
    wanted: Sequence[tuple[str, str]],
    sources: Sequence[str],
    option: str,
    *,
    error: type[LlmobsError] = UsageError,
) -> None:
    """Each ``(field, value)`` of ``wanted`` occurs in ``frame``; else exit 2 naming the
    dump, the values it has and the closest ones.

    ``*`` matches anything; ``null``/``None``/empty match a missing value (the spellings
    gate scopes accept).
    """
    from llmobs_cli.core.record.fields import field_expr

    lf = frame.lazy()
    if lf.select(pl.len()).collect().item() == 0:
        return
    by_field: dict[str, list[str]] = {}
    for f, v in wanted:
        if v == "*":
            continue
        by_field.setdefault(f, []).append(v)
    names = lf.collect_schema().names()
    for f, values in by_field.items():
        expr = pl.col(f) if f in names else field_expr(f)  # a frame of group keys has f
        seen = lf.select(expr.cast(pl.String).unique().alias("v")).collect().to_series().to_list()
        has_null = None in seen
        known = sorted(str(s) for s in seen if s is not None)
        for v in values:
            if v in known or (has_null and v in ("null", "None", "")):
                continue
            raise _make(
                error,
                f"{option}: no call in {dump_name(sources)} has {f} '{v}' "
                + _paren(v, known, f"{f} values there"),
                option,
            )
