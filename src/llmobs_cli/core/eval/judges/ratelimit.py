"""How long a server asks us to wait, from the headers gateways and providers send.

Read, in this order of trust:

* ``retry-after-ms`` and ``retry-after`` (seconds or an HTTP date), and the same names
  prefixed ``llm_provider-`` — LiteLLM's proxy forwards the upstream provider's headers
  under that prefix, and its own plain ``retry-after`` is only its cooldown: the longest
  of the explicit waits is the one that will succeed;
* failing those, ``x-ratelimit-reset-requests`` / ``x-ratelimit-reset-tokens`` (OpenAI's
  durations such as ``1s``, ``6m0s``, ``20ms``, or plain seconds), again with or without
  the prefix: the reset of an exhausted limit (``x-ratelimit-remaining-* = 0``) when the
  remaining counts are sent, else the longest reset.

Everything else (no header, garbage) is ``None``: the caller falls back to its backoff.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from typing import Any

_PREFIXES = ("", "llm_provider-")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def _get(headers: Any, name: str) -> str | None:
    try:
        value = headers.get(name)
    except Exception:
        return None
    return None if value is None else str(value).strip()


def parse_duration(text: str, now: float | None = None) -> float | None:
    """``1s``/``6m0s``/``20ms``/``1h2m3.5s`` or plain seconds → seconds (None if not one).

    A plain number larger than a day is read as a Unix time to wait until."""
    text = text.strip().lower()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        if value > 86400:  # an epoch timestamp, as some gateways send
            return max(0.0, value - (time.time() if now is None else now))
        return max(0.0, value)
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            return None
        n = float(m.group(1))
        total += {"ms": n / 1000.0, "h": n * 3600.0, "m": n * 60.0, "s": n}[m.group(2)]
        pos = m.end()
    return total if pos == len(text) and pos > 0 else None


def _retry_after(value: str, now: float | None) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def wait_seconds(headers: Any, now: float | None = None) -> float | None:
    """The wait the server asks for, in seconds (see the module docstring)."""
    if headers is None:
        return None
    explicit: list[float] = []
    for prefix in _PREFIXES:
        ms = _get(headers, prefix + "retry-after-ms")
        if ms is not None:
            with contextlib.suppress(ValueError):
                explicit.append(max(0.0, float(ms) / 1000.0))
        plain = _get(headers, prefix + "retry-after")
        if plain is not None:
            secs = _retry_after(plain, now)
            if secs is not None:
                explicit.append(secs)
    if explicit:
        return max(explicit)
    resets: list[tuple[float, bool]] = []  # (seconds, that limit is exhausted)
    for prefix in _PREFIXES:
        for kind in ("requests", "tokens"):
            raw = _get(headers, f"{prefix}x-ratelimit-reset-{kind}")
            secs = parse_duration(raw, now) if raw is not None else None
            if secs is None:
                continue
            left = _get(headers, f"{prefix}x-ratelimit-remaining-{kind}")
            try:
                exhausted = left is not None and float(left) <= 0
            except ValueError:
                exhausted = False
            resets.append((secs, exhausted))
    if not resets:
        return None
    hit = [s for s, exhausted in resets if exhausted]
    return max(hit) if hit else max(s for s, _ in resets)


__all__ = ["parse_duration", "wait_seconds"]
