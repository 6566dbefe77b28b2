"""One retrying HTTP sender for every exporter: backoff, ``Retry-After``, a time budget.

Secrets travel only in headers and never appear in what this module returns or raises:
error texts name the endpoint with any ``user:password@`` part removed and quote at most
the first 200 characters of the server's reply.
"""

from __future__ import annotations

import gzip
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

#: Statuses worth another attempt: throttling and server-side failures.
RETRYABLE = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``attempts`` at most, waits doubling from ``base`` up to ``cap``
    seconds (with jitter), and never more than ``budget`` seconds of waiting in all."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 20.0
    budget: float = 60.0
    timeout: float = 10.0


@dataclass
class ScoresSent:
    """What a score exporter (Langfuse, LangSmith) did: records accepted, not sent after
    retries, skipped (no score), requests made, and the first errors."""

    sent: int = 0
    failed: int = 0
    skipped: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class Sent:
    """The outcome of one request after retries."""

    ok: bool
    status: int | None
    attempts: int
    body: bytes = b""
    error: str | None = None


def redact_url(url: str) -> str:
    """The URL without credentials or query string (which may carry a token)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait, from ``Retry-After`` (seconds or an HTTP date)
    or ``retry-after-ms``; ``None`` when it said nothing usable."""
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def post(
    url: str,
    payload: bytes,
    *,
    headers: Mapping[str, str],
    policy: RetryPolicy = RetryPolicy(),
    compress: bool = False,
    ok_statuses: frozenset[int] = frozenset(),
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_wait: Callable[[str], None] | None = None,
) -> Sent:
    """POST ``payload`` with retries on 408/429/5xx and connection errors.

    A 2xx (or a status in ``ok_statuses``, e.g. 409 for "already stored") is success; any
    other 4xx is final. Never raises for HTTP or network failures: the result says.
    """
    hdrs = dict(headers)
    body = payload
    if compress:
        body = gzip.compress(payload)
        hdrs["Content-Encoding"] = "gzip"
    own = client is None
    http = client or httpx.Client(timeout=policy.timeout)
    where = redact_url(url)
    waited = 0.0
    attempt = 0
    last = Sent(ok=False, status=None, attempts=0, error=f"{where}: not sent")
    try:
        while attempt < policy.attempts:
            attempt += 1
            try:
                resp = http.post(url, content=body, headers=hdrs)
            except httpx.HTTPError as exc:
                last = Sent(False, None, attempt, error=f"{where}: {_network(exc)}")
                hint = None
            else:
                if resp.is_success or resp.status_code in ok_statuses:
                    return Sent(True, resp.status_code, attempt, body=resp.content)
                text = resp.text[:200].strip().replace("\n", " ")
                last = Sent(
                    False,
                    resp.status_code,
                    attempt,
                    body=resp.content,
                    error=f"{where}: HTTP {resp.status_code}" + (f": {text}" if text else ""),
                )
                if resp.status_code not in RETRYABLE:
                    return last
                hint = retry_after(resp.headers)
            if attempt >= policy.attempts:
                break
            delay = hint if hint is not None else _backoff(policy, attempt)
            if waited + delay > policy.budget:
                break
            if on_wait is not None and delay >= 1:
                on_wait(f"waiting {delay:.0f} s before retrying {where}")
            sleep(delay)
            waited += delay
        return last
    finally:
        if own:
            http.close()


def _backoff(policy: RetryPolicy, attempt: int) -> float:
    # Full jitter: spreads retries of concurrent exporters instead of synchronising them.
    return random.uniform(0, min(policy.cap, policy.base * 2 ** (attempt - 1)))


def _network(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused or host unreachable"
    return type(exc).__name__
