"""The response-format ladder, and what each endpoint + model was found to accept.

A judgment asks for its answer with the strongest format the server supports:

1. ``json_schema`` (strict) — the server enforces the answer's shape;
2. ``json_object`` — the server guarantees JSON; the shape is spelled out in the prompt;
3. ``none`` — no ``response_format`` at all; the shape is spelled out in the prompt.

llmobs validates every answer itself on every step (:meth:`Criterion.parse`), so a lower
step costs nothing in correctness. The runner steps down when the server rejects the
parameter or fails its own validation of the answer (see :mod:`.classify`), once per run
and model. :class:`EndpointMemory` keeps the step that worked — and the sampling
parameters a model refused — per endpoint + model in the cache directory, so a rerun
starts where the last run ended instead of paying for the same rejections again.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Literal

Mode = Literal["json_schema", "json_object", "none"]
LADDER: tuple[Mode, ...] = ("json_schema", "json_object", "none")
FILE_NAME = "endpoints-v1.json"


def next_mode(mode: str) -> Mode | None:
    """The step below ``mode`` (None at the bottom)."""
    i = LADDER.index(mode) if mode in LADDER else len(LADDER) - 1
    return LADDER[i + 1] if i + 1 < len(LADDER) else None


class EndpointMemory:
    """Per endpoint + model: the format step that works and the sampling parameters refused.

    Stored as one small JSON file in the cache directory (written atomically on change);
    without a directory it lives for the run only. A damaged file is ignored (the ladder
    is simply climbed down again)."""

    def __init__(self, directory: str | Path | None, endpoint: str) -> None:
        self.path = None if directory is None else Path(directory) / FILE_NAME
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._data: dict[str, dict[str, Any]] = {}
        if self.path is not None and self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if isinstance(data, dict):
                self._data = {k: v for k, v in data.items() if isinstance(v, dict)}

    def _key(self, model: str) -> str:
        return f"{self.endpoint} {model}"

    def mode(self, model: str) -> Mode:
        value = self._data.get(self._key(model), {}).get("response_format")
        return value if value in LADDER else "json_schema"

    def dropped(self, model: str) -> set[str]:
        value = self._data.get(self._key(model), {}).get("drop_params") or []
        return {str(v) for v in value if isinstance(v, str)}

    def set_mode(self, model: str, mode: Mode) -> None:
        self._update(model, "response_format", mode)

    def drop(self, model: str, param: str) -> None:
        self._update(model, "drop_params", sorted(self.dropped(model) | {param}))

    def _update(self, model: str, field: str, value: Any) -> None:
        with self._lock:
            entry = self._data.setdefault(self._key(model), {})
            if entry.get(field) == value:
                return
            entry[field] = value
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        from llmobs_cli.core import atomic

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_json(self.path, self._data)
        except OSError:
            pass  # a read-only cache only costs a rerun the same step-downs


__all__ = ["FILE_NAME", "LADDER", "EndpointMemory", "Mode", "next_mode"]
