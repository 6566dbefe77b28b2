"""On-disk judgment cache: append-only JSONL, one record per successful judgment.

Every successful judgment is written to the OS (one ``write`` of a whole line with
``O_APPEND``) the moment it arrives, so a killed process loses nothing it paid for. The
``fsync`` that protects against a machine crash is grouped: at most one every
:data:`FSYNC_INTERVAL_S` and one at close (an fsync per record cost ~1.5 ms of CPU per
judgment, as much as the HTTP call itself; a power loss can now cost at most the last
quarter second of judgments, which a rerun redoes). A run
resumes by reading the file back: a half-written last line (the process died mid-write)
is ignored. Errors are never cached, so a rerun retries exactly the failures.

The key (:func:`cache_key`) is a SHA-256 over everything that can change the answer: judge
model, endpoint (scheme/host/path, never credentials), the rendered messages, the response
schema, the request parameters, the prompt version/hash and the sample index. The API key
is never part of a record.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

FILE_NAME = "judgments-v1.jsonl"
FSYNC_INTERVAL_S = 0.25


def endpoint_id(base_url: str | None) -> str:
    """The endpoint without user info, query or fragment (credentials never reach the key)."""
    if not base_url:
        return ""
    parts = urlsplit(str(base_url))
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def cache_key(
    *,
    model: str,
    endpoint: str,
    messages: list[dict[str, str]],
    schema: dict[str, Any] | None,
    params: dict[str, Any],
    prompt: str,
    sample_index: int = 0,
) -> str:
    blob = json.dumps(
        {
            "v": 1,
            "model": model,
            "endpoint": endpoint,
            "messages": messages,
            "schema": schema,
            "params": params,
            "prompt": prompt,
            "sample": sample_index,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class JudgmentCache:
    """Append-only JSONL cache in ``directory`` (created on first write)."""

    def __init__(self, directory: str | Path | None, *, fsync: bool = True) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.fsync = fsync
        self._entries: dict[str, dict[str, Any]] = {}
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._synced = 0.0
        if self.directory is not None:
            self._read()

    @property
    def path(self) -> Path | None:
        return None if self.directory is None else self.directory / FILE_NAME

    def _read(self) -> None:
        path = self.path
        if path is None or not path.exists():
            return
        with path.open("rb") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue  # a line cut short by a kill
                if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                    self._entries[rec["key"]] = rec.get("value") or {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    def put(self, key: str, value: dict[str, Any]) -> None:
        """Store one successful judgment durably (write + flush; fsync when enabled)."""
        self._entries[key] = value
        path = self.path
        if path is None:
            return
        line = (json.dumps({"key": key, "value": value}, ensure_ascii=False) + "\n").encode()
        with self._lock:
            if self._fd is None:
                path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            # One write() of a whole line with O_APPEND: concurrent runs never interleave.
            os.write(self._fd, line)
            now = time.monotonic()
            if self.fsync and now - self._synced >= FSYNC_INTERVAL_S:
                os.fsync(self._fd)
                self._synced = now

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                if self.fsync:
                    os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None
