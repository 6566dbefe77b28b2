"""Signals the trace already holds: token confidence (``logprobs``), the rank of the cited
retrieved document, and session-level heuristics. Pure Polars expressions over canonical
frames; the drift registry, eval and review read them from here."""
