"""Field names users may give (``--by``, ``--features``): record fields or ``metadata.KEY``."""

from __future__ import annotations

import re

import polars as pl

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_field(name: str, option: str = "by") -> str:
    """Return ``name`` if it is a record field or ``metadata.KEY``; else a UsageError with
    the known fields and the closest ones (:func:`llmobs_cli.core.record.names.check_field`)."""
    from llmobs_cli.core.record.names import check_field as check

    return check(name, option)


def parse_fields(text: str | None, option: str = "by") -> list[str]:
    """``"route,model"`` → ``["route", "model"]``, each checked."""
    if not text:
        return []
    return [check_field(p.strip(), option) for p in text.split(",") if p.strip()]


def field_expr(name: str) -> pl.Expr:
    """An expression for a field; ``metadata.KEY`` reads the key from the JSON metadata."""
    if name.startswith("metadata."):
        key = name[len("metadata.") :]
        path = f"$.{key}" if _SIMPLE_KEY.match(key) else "$['" + key.replace("'", "\\'") + "']"
        return pl.col("metadata").str.json_path_match(path).alias(name)
    return pl.col(name)


def base_column(name: str) -> str:
    """The canonical column a field lives in (``metadata.x`` → ``metadata``)."""
    return "metadata" if name.startswith("metadata.") else name
