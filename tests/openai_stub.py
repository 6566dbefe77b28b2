"""An OpenAI-compatible chat-completions stub server for tests (real HTTP on 127.0.0.1).

The tests drive the real ``openai`` client (and anything wrapping it, e.g. OpenTelemetry or
OpenInference instrumentations) against this server, so the whole HTTP path is exercised:
headers, status codes, ``Retry-After``, timeouts, JSON bodies.

Usage::

    with OpenAIStub() as stub:                      # or the ``openai_stub`` pytest fixture
        stub.responder = lambda req: Reply(content='{"score": 4}')
        client = openai.OpenAI(base_url=stub.base_url, api_key="sk-test")
        ...
        stub.requests            # every request: parsed JSON body + path + headers

A responder is a callable ``(request_json) -> Reply | dict | str``:

- ``str``: the assistant message content of a normal completion;
- ``dict``: the full response body, sent as is (status 200);
- :class:`Reply`: full control — ``content``, ``status``, ``headers``, ``body`` (raw dict or
  bytes), ``delay`` (seconds to sleep before answering: forces a client timeout), usage
  token counts. Helpers: :func:`rate_limited`, :func:`server_error`, :func:`auth_error`,
  :func:`quota_error`, :func:`schema_rejected`, :func:`slow`; gateway-style refusals
  (LiteLLM's wording and status codes): :func:`gateway_invalid_model`,
  :func:`gateway_bad_key`, :func:`gateway_format_refused`,
  :func:`gateway_schema_validation_failed`, :func:`gateway_rate_limited`,
  :func:`temperature_rejected`. :func:`closed_port` gives a loopback URL nothing listens on.

The default responder echoes ``{"reasoning": "stub", "score": 1}`` as content. Requests are
recorded before the responder runs (so a request that then times out is still counted).
Served paths: ``POST /v1/chat/completions`` and ``POST /chat/completions``; anything else
is 404 in OpenAI's error shape.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the stub sends back for one request."""

    content: str | None = '{"reasoning": "stub", "score": 1}'
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | bytes | None = None  # overrides the generated completion body
    delay: float = 0.0
    prompt_tokens: int = 100
    completion_tokens: int = 20
    finish_reason: str = "stop"


Responder = Callable[[dict[str, Any]], "Reply | dict[str, Any] | str"]


def _error_body(message: str, kind: str, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def rate_limited(retry_after: float | None = 0.01) -> Reply:
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return Reply(
        status=429,
        headers=headers,
        body=_error_body("Rate limit reached", "requests", "rate_limit_exceeded"),
    )


def server_error(status: int = 500) -> Reply:
    return Reply(status=status, body=_error_body("The server had an error", "server_error"))


def auth_error() -> Reply:
    return Reply(
        status=401,
        body=_error_body("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    )


def quota_error() -> Reply:
    return Reply(
        status=429,
        body=_error_body(
            "You exceeded your current quota", "insufficient_quota", "insufficient_quota"
        ),
    )


def schema_rejected() -> Reply:
    """A 400 like endpoints that do not support ``response_format: json_schema`` send."""
    return Reply(
        status=400,
        body=_error_body(
            "response_format json_schema is not supported by this model",
            "invalid_request_error",
            "unsupported_response_format",
        ),
    )


# --- gateways (LiteLLM proxy) and local servers: how they say "no" -------------------------
# Bodies as LiteLLM's proxy 1.110 sends them (observed against the real proxy: see
# tests/test_gateway_litellm.py, which runs the same cases against it).


def _litellm_error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": str(code)}}


def gateway_invalid_model(model: str = "nope") -> Reply:
    """LiteLLM: a model name it does not route is a 400, not a 404."""
    msg = (
        f"/chat/completions: Invalid model name passed in model={model}. Call `/v1/models` "
        "to view available models for your key."
    )
    return Reply(status=400, body=_litellm_error(msg, "invalid_request_error", 400))


def gateway_bad_key() -> Reply:
    """LiteLLM with a master key and no key database: any other key is a 400."""
    return Reply(status=400, body=_litellm_error("No connected db.", "no_db_connection", 400))


def gateway_format_refused() -> Reply:
    """A provider adapter behind the gateway that refuses ``response_format`` (any type)."""
    msg = (
        "litellm.BadRequestError: OpenAIException - response_format is not supported by "
        "this provider"
    )
    return Reply(status=400, body=_litellm_error(msg, "invalid_request_error", 400))


def gateway_schema_validation_failed() -> Reply:
    """LiteLLM checked the answer against the requested JSON schema and failed it: a 500."""
    msg = (
        "litellm.JSONSchemaValidationError: model=, returned an invalid response=```json\n"
        '{"reasoning": "fine", "score": 4}\n```, for schema={"type": "object"}.\n'
        "LiteLLM: model group 'judge' failed with the error above. No fallback was attempted."
    )
    return Reply(status=500, body=_litellm_error(msg, "internal_server_error", 500))


def gateway_rate_limited(upstream_wait: float, own_wait: float = 0.0) -> Reply:
    """An upstream rate limit relayed by LiteLLM: the provider's wait under
    ``llm_provider-retry-after``, the proxy's own (shorter) cooldown as ``retry-after``."""
    return Reply(
        status=429,
        headers={
            "llm_provider-retry-after": f"{upstream_wait:g}",
            "retry-after": f"{own_wait:g}",
        },
        body=_litellm_error("litellm.RateLimitError: Rate limit reached", "throttling", 429),
    )


def temperature_rejected(model: str = "o3-mini", value: float = 0.7) -> Reply:
    """A reasoning model refusing a sampling temperature (LiteLLM's wording)."""
    msg = (
        f"litellm.UnsupportedParamsError: O-series models don't support temperature={value:g}. "
        "Only temperature=1 is supported. To drop unsupported openai params from the call, "
        "set `litellm.drop_params = True`"
    )
    return Reply(status=400, body=_litellm_error(msg, "invalid_request_error", 400))


def slow(seconds: float, content: str = '{"reasoning": "late", "score": 1}') -> Reply:
    return Reply(content=content, delay=seconds)


def completion_body(request: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A chat.completion body as OpenAI sends it (one choice, usage included)."""
    n = int(request.get("n") or 1)
    return {
        "id": f"chatcmpl-stub-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", "stub-model"),
        "system_fingerprint": "fp_stub",
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": reply.content, "refusal": None},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
            for i in range(n)
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]  # names in lower case
    json: dict[str, Any]
    time: float


def _default_responder(request: dict[str, Any]) -> Reply:
    return Reply()


class OpenAIStub:
    """A threaded HTTP server on an ephemeral loopback port; use as a context manager."""

    PATHS = ("/v1/chat/completions", "/chat/completions")

    def __init__(self, responder: Responder | None = None) -> None:
        self.responder: Responder = responder or _default_responder
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet tests
                return None

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                if path not in stub.PATHS:
                    body = json.dumps(_error_body(f"no route {path}", "not_found")).encode()
                    self._send(404, body, {})
                    return
                try:
                    payload = json.loads(raw or b"{}")
                except json.JSONDecodeError:
                    self._send(400, json.dumps(_error_body("bad JSON", "invalid")).encode(), {})
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}  # lower-case names
                rec = RecordedRequest(path, headers, payload, time.time())
                with stub._lock:
                    stub.requests.append(rec)
                try:
                    out = stub.responder(payload)
                except Exception as exc:  # a broken responder is a 500, visible in the test
                    out = Reply(status=500, body=_error_body(f"responder failed: {exc}", "stub"))
                reply = out if isinstance(out, Reply) else None
                if isinstance(out, str):
                    reply = Reply(content=out)
                elif isinstance(out, dict):
                    reply = Reply(body=out)
                assert reply is not None
                if reply.delay:
                    time.sleep(reply.delay)
                if isinstance(reply.body, bytes):
                    data = reply.body
                elif reply.body is not None:
                    data = json.dumps(reply.body).encode()
                else:
                    data = json.dumps(completion_body(payload, reply)).encode()
                self._send(reply.status, data, reply.headers)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The URL to give the client (``.../v1``, as OpenAI's own)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.json for r in self.requests]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    def start(self) -> OpenAIStub:
        # A short poll interval makes shutdown() (fixture teardown) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def closed_port() -> str:
    """A loopback base URL that refuses connections (a port bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


_WORD = __import__("re").compile(r"[a-z]{4,}")


def overlap_judge(request: dict[str, Any], delay: float = 0.0) -> Reply:
    """A stand-in judge for demos: scores 1..5 by how much of the conversation's vocabulary
    the graded response reuses (off-topic or empty answers score low). Not a real judge."""
    import re

    user = next((m["content"] for m in request.get("messages", []) if m["role"] == "user"), "")
    m = re.search(r"<conversation>(.*?)</conversation>.*?<response>(.*?)</response>", user, re.S)
    if m is None:  # not a judge request (self-consistency generation): echo something
        return Reply(content="stub answer", delay=delay)
    conv = set(_WORD.findall(m.group(1).lower()))
    resp = set(_WORD.findall(m.group(2).lower()))
    share = len(conv & resp) / max(1, min(len(conv), 12))
    score = 1 + min(4, round(8 * share))
    return Reply(
        content=json.dumps({"reasoning": f"overlap {share:.2f}", "score": score}), delay=delay
    )


def main() -> None:  # pragma: no cover - manual use
    """Run the stub in the foreground: ``python tests/openai_stub.py [DELAY_S] [overlap]``.

    Prints the base URL. ``overlap`` answers with :func:`overlap_judge` (for demos);
    otherwise every reply is the default judgment, after ``DELAY_S`` seconds.
    """
    import sys

    delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    mode = sys.argv[2] if len(sys.argv) > 2 else "fixed"
    if mode == "overlap":
        stub = OpenAIStub(lambda req: overlap_judge(req, delay))
    else:
        stub = OpenAIStub(lambda req: Reply(delay=delay))
    stub.start()
    print(stub.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stub.stop()


if __name__ == "__main__":
    main()
