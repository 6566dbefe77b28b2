"""A recording HTTP receiver on 127.0.0.1 for exporter and webhook tests.

It stores every request (path, headers, body gunzipped) and answers from a script:
``fail_next(status, n, headers)`` makes the next ``n`` requests fail with ``status``
(without storing their payload as accepted), then ``handler`` (if set) or 200 answers.
``accepted`` holds only the bodies the receiver answered with success.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    raw: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.accepted: list[Request] = []
        self.handler: Callable[[Request], Answer] | None = None
        self._script: list[Answer] = []
        self._lock = threading.Lock()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                body = raw
                if (self.headers.get("Content-Encoding") or "").lower() == "gzip":
                    body = gzip.decompress(raw)
                req = Request(self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw)
                with outer._lock:
                    outer.requests.append(req)
                    ans = outer._script.pop(0) if outer._script else None
                if ans is None:
                    ans = outer.handler(req) if outer.handler else Answer()
                    if 200 <= ans.status < 300:
                        with outer._lock:
                            outer.accepted.append(req)
                self.send_response(ans.status)
                for k, v in ans.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(ans.body)))
                self.end_headers()
                self.wfile.write(ans.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail_next(self, status: int, n: int = 1, headers: dict[str, str] | None = None) -> None:
        with self._lock:
            self._script.extend(
                Answer(status, b"injected failure", headers or {}) for _ in range(n)
            )

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
