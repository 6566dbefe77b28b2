"""The monitor's memory between runs: one small JSON file in ``STATE_DIR``.

It holds the frozen baseline (the monitored quantities and their reference intervals),
each night's estimates keyed by the night (the end of the run's current window, so a rerun
of the same night replaces that night instead of counting it twice), and the alarms that
fired with the night they fired. Written atomically; a file that is not a monitor state of
the expected kind is refused (exit 2) rather than overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from llmobs_cli.core import atomic
from llmobs_cli.errors import InputError

VERSION = 1


def state_path(state_dir: str | Path, kind: str) -> Path:
    return Path(state_dir) / f"llmobs-monitor-{kind}.json"


def load_state(state_dir: str | Path, kind: str) -> dict[str, Any] | None:
    """The stored state of ``kind`` (``eval`` or ``drift``), or None when there is none."""
    p = state_path(state_dir, kind)
    d = Path(state_dir)
    if d.exists() and not d.is_dir():
        raise InputError([f"{d}: monitor state directory is a file"])
    if not p.exists():
        return None
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError([f"{p}: not a readable llmobs monitor state ({exc})"]) from exc
    if not isinstance(doc, dict) or doc.get("kind") != kind or doc.get("version") != VERSION:
        raise InputError([f"{p}: not an llmobs {kind} monitor state (version {VERSION})"])
    return doc


def save_state(state_dir: str | Path, kind: str, doc: dict[str, Any]) -> Path:
    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    p = state_path(d, kind)
    atomic.write_text(p, json.dumps(doc, indent=1, sort_keys=True, default=str) + "\n")
    return p
