"""Which tracing system a record came from, told by the marks its reader leaves.

The Langfuse reader keeps Langfuse's own ids (``trace_id`` is the Langfuse trace id,
``span_id`` the observation id) and records the observation's facts under ``langfuse.*``
keys of ``metadata`` (at least ``langfuse.type``); the LangSmith reader keeps the run id as
``span_id`` and records ``langsmith.run_name``. Those keys survive ``llmobs convert`` (the
canonical files keep ``metadata``), so a record converted from a Langfuse export earlier
still says where it came from. Spans the Langfuse SDK itself emitted (read from an OTLP
dump: instrumentation scope ``langfuse-sdk``, kept as ``otel.scope.name``) count as
Langfuse's too: Langfuse files them under their OpenTelemetry trace and span ids.

:func:`origin_expr` turns the marks into a column: ``"langfuse"``, ``"langsmith"`` or null
(anything else: OTLP, vendor logs, canonical files written by hand). ``llmobs eval`` writes
it as the ``origin`` column of its judgments, and ``llmobs export --to langfuse`` /
``--to langsmith`` send only the judgments of records from that system, since only their
ids name a trace or run there.
"""

from __future__ import annotations

import polars as pl

#: Origins a judgment can be sent back to, with the ``metadata`` key prefix that marks them.
MARKS: dict[str, str] = {"langfuse": "langfuse.", "langsmith": "langsmith."}
#: The instrumentation scope of the Langfuse SDK's own spans (a ``metadata`` value).
_LANGFUSE_SCOPE = r'"otel\.scope\.name"\s*:\s*"langfuse'


def _key_pattern(prefix: str) -> str:
    # a JSON object key (quoted, followed by a colon), not a value that mentions the word
    return '"' + prefix.replace(".", r"\.") + r'[^"]*"\s*:'


def _pattern(name: str) -> str:
    key = _key_pattern(MARKS[name])
    return f"{key}|{_LANGFUSE_SCOPE}" if name == "langfuse" else key


def origin_expr(metadata: str = "metadata") -> pl.Expr:
    """``"langfuse"``/``"langsmith"`` when the record's ``metadata`` (a JSON object string)
    has a key its reader sets, else null. Vectorised: one regex test per origin."""
    col = pl.col(metadata).cast(pl.String)
    expr = pl.lit(None, pl.String)
    for name in reversed(MARKS):  # the first listed wins when both match
        expr = pl.when(col.str.contains(_pattern(name))).then(pl.lit(name)).otherwise(expr)
    return expr.alias("origin")
