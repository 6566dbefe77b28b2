"""What a failed judge call means, read from the exception, its status and its body.

Gateways and local servers say "no" in their own ways: LiteLLM's proxy answers a wrong
model name or a wrong key with a 400, refuses ``response_format`` through some provider
adapters, and returns a 500 when the answer fails its own check against the requested JSON
schema. The status code alone therefore cannot tell a typo in the configuration from a
passing outage, so :func:`classify` reads the server's own message as well.

The kinds and what the runner does with each:

* ``fatal`` — a configuration error no retry can fix (wrong model, wrong or missing key,
  a parameter the server does not know, quota exhausted): stop the run at once (exit 3);
* ``format`` — the server rejects ``response_format`` or fails its own schema validation:
  step down the format ladder (:mod:`.formats`) and ask again;
* ``sampling`` — the model rejects ``temperature``/``top_p`` (reasoning models): ask again
  without that parameter;
* ``rate_limited`` — wait as long as the server says (:mod:`.ratelimit`), within a budget;
* ``transient`` — 5xx, 408, 409: retry with backoff;
* ``unreachable`` — connection refused, reset or timed out: retry, and count towards the
  run's circuit breaker;
* ``rejected`` — any other 4xx: this judgment is an error row, the run goes on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from llmobs_cli.core.eval.judges.ratelimit import wait_seconds

Kind = Literal[
    "fatal", "format", "sampling", "rate_limited", "transient", "unreachable", "rejected"
]

#: Sampling parameters a reasoning model may refuse; dropping one keeps the request valid.
SAMPLING_PARAMS = ("temperature", "top_p")

_KEYLIKE = re.compile(r"(sk-|key-|Bearer\s+)[A-Za-z0-9_\-\.\*]{4,}")

_MODEL = re.compile(
    r"invalid model name|model[_ ]not[_ ]found|unknown model|no such model|"
    r"model\b[^.]{0,80}\b(does not exist|not found|is not (available|supported|valid))|"
    r"not a valid model|invalid model|no deployments? (available|found) for",
    re.IGNORECASE,
)
_KEY = re.compile(
    r"invalid[_ ]api[_ ]key|incorrect api key|api key (is )?(not valid|invalid|missing)|"
    r"missing (the )?api key|no api key|invalid (proxy server )?token|"
    r"authentication ?error|unauthori[sz]ed|invalid authentication|"
    r"invalid x-api-key|api[_ ]key[^.]{0,40}\b(required|not provided)|"
    # LiteLLM's proxy with a master key but no key database answers any other key so
    r"no connected db|no_db_connection",
    re.IGNORECASE,
)
_FORMAT = re.compile(
    r"response_format|json_schema|jsonschemavalidation|schema validation|"
    r"structured output|json mode|guided_json|does not match (the )?(json )?schema",
    re.IGNORECASE,
)
_UNSUPPORTED = re.compile(
    r"unsupported[_ ]param|unsupportedparams|unsupported value|not supported|"
    r"does not support|unrecognized request argument|extra inputs are not permitted|"
    r"unknown (parameter|field|argument)|only the default",
    re.IGNORECASE,
)
_QUOTA = re.compile(r"insufficient_quota|exceeded your current quota|billing", re.IGNORECASE)


@dataclass
class Failure:
    """One failed call, classified. ``message`` is the server's own words (scrubbed)."""

    kind: Kind
    message: str
    status: int | None = None
    param: str | None = None  # the sampling parameter the server rejected
    wait_s: float | None = None  # how long the server asked us to wait
    reason: str = ""  # for fatal ones: what is wrong, in our words

    def text(self) -> str:
        """``HTTP 400: <the server's message>`` (the status once, never repeated)."""
        if self.status is None:
            return self.message
        return f"HTTP {self.status}: {self.message}" if self.message else f"HTTP {self.status}"


def scrub(text: str, secret: str | None = None) -> str:
    """Remove the API key (and anything key-shaped) from a message."""
    if secret:
        text = text.replace(secret, "***")
    return _KEYLIKE.sub(lambda m: m.group(1) + "***", text)


def server_message(exc: Any) -> str:
    """The server's own message: ``error.message`` of the body when there is one, else the
    client's text without its ``Error code: N -`` prefix; one line, at most 400 chars."""
    msg = ""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            msg = str(inner.get("message") or inner.get("detail") or "")
        elif isinstance(inner, str):
            msg = inner
        if not msg and isinstance(body.get("detail"), str):
            msg = body["detail"]
    elif isinstance(body, str):
        msg = body
    if not msg:
        msg = str(getattr(exc, "message", "") or exc)
        msg = re.sub(r"^Error code: \d+ - ", "", msg)
    msg = " ".join(msg.split())
    return msg[:400] + ("…" if len(msg) > 400 else "")


def _blob(exc: Any) -> str:
    body = getattr(exc, "body", None)
    try:
        text = json.dumps(body) if body is not None else ""
    except (TypeError, ValueError):
        text = str(body)
    return f"{text} {getattr(exc, 'message', '')}"


def _rejected_param(exc: Any, blob: str) -> str | None:
    """The sampling parameter a 4xx names as unsupported, if any."""
    body = getattr(exc, "body", None)
    inner = body.get("error", body) if isinstance(body, dict) else None
    param = inner.get("param") if isinstance(inner, dict) else None
    if isinstance(param, str) and param in SAMPLING_PARAMS:
        return param
    if not _UNSUPPORTED.search(blob):
        return None
    for name in SAMPLING_PARAMS:
        if re.search(rf"\b{name}\b", blob, re.IGNORECASE):
            return name
    return None


def classify(exc: BaseException, *, secret: str | None = None, timeout_s: float = 0.0) -> Failure:
    """Classify an exception raised by the ``openai`` client (see the module docstring)."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return Failure("unreachable", f"timed out after {timeout_s:g} s")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = str(cause) if cause is not None else str(exc)
        return Failure("unreachable", scrub(f"cannot connect ({detail})", secret))
    if not isinstance(exc, openai.APIStatusError):
        return Failure("rejected", scrub(str(exc), secret))
    status = exc.status_code
    msg = scrub(server_message(exc), secret)
    blob = _blob(exc)
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if status in (401, 403) or (status < 500 and _KEY.search(blob) and not _MODEL.search(blob)):
        return Failure(
            "fatal", msg, status, reason="authentication failed (invalid or missing API key)"
        )
    if status == 429:
        if _QUOTA.search(blob):
            return Failure("fatal", msg, status, reason="quota exhausted")
        return Failure("rate_limited", msg, status, wait_s=wait_seconds(headers))
    if _FORMAT.search(blob):
        return Failure("format", msg, status)
    if 400 <= status < 500:
        param = _rejected_param(exc, blob)
        if param is not None:
            return Failure("sampling", msg, status, param=param)
    if _MODEL.search(blob) or status == 404:
        return Failure("fatal", msg, status, reason="model or endpoint not found")
    if 400 <= status < 500 and _UNSUPPORTED.search(blob):
        return Failure("fatal", msg, status, reason="unsupported parameter")
    if status >= 500 or status in (408, 409):
        return Failure("transient", msg, status, wait_s=wait_seconds(headers))
    return Failure("rejected", msg, status)


__all__ = ["SAMPLING_PARAMS", "Failure", "Kind", "classify", "scrub", "server_message"]
