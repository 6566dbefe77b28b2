"""Field names users may give (``--by``, ``--features``): record fields or ``metadata.KEY``."""

from __future__ import annotations

import re

import polars as pl

from llmobs_cli.core.record.schema import FIELDS
from llmobs_cli.errors import UsageError

_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_field(name: str, option: str = "by") -> str:
    """Return ``name`` if it is a record field or ``metadata.KEY``; else a UsageError."""
    if name in FIELDS or (name.startswith("metadata.") and len(name) > len("metadata.")):
        return name
    raise UsageError(
        f"{option}: unknown field '{name}' (use a record field such as route, model, "
        "customer_id, feature, release, or metadata.KEY)",
        param=option,
    )


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
