"""``llmobs eval --state DIR``: the folder an incremental (cron) eval keeps between runs.

The folder belongs to llmobs: its manifest :data:`MANIFEST` names the tool, the kind of
state and :data:`FORMAT`; a folder that is neither empty nor llmobs' own is refused
(exit 2), and llmobs only ever writes and deletes the files its manifest names. It holds

* the **watermark**: the latest timestamp of the rows processed so far;
* the **input files** seen, each with its size and modification time (a Parquet folder
  contributes each of its files);
* the **judgments** of every earlier run, in ``judgments-NNNNNN.parquet`` (one generation
  per run: the new file is written first, then the manifest is switched to it atomically,
  then the previous generation is removed — a crash leaves the previous state whole);
* the options that make judgments comparable (``--by``, evaluators, judge model, unit):
  a run with other ones is refused rather than mixing incomparable scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core.eval.judgments import JUDGMENT_SCHEMA
from llmobs_cli.errors import UsageError

MANIFEST = "llmobs-eval-state.json"
KIND = "llmobs eval state"
FORMAT = 1


@dataclass
class FileMark:
    size: int
    mtime_ns: int


@dataclass
class EvalState:
    folder: Path
    watermark: datetime | None = None
    files: dict[str, FileMark] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    judgments_file: str | None = None
    generation: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def fresh(self) -> bool:
        """No run has been stored yet."""
        return self.watermark is None and not self.files


def open_state(folder: str | Path) -> EvalState:
    """The state in ``folder`` (an empty state when the folder is new or empty); exit 2
    for a folder that is not llmobs' own or a state of another format."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--state: {path} is a file, not a folder", param="state")
    manifest = path / MANIFEST
    if not path.exists() or (not manifest.exists() and not any(path.iterdir())):
        return EvalState(folder=path)
    if not manifest.exists():
        raise UsageError(
            f"--state: {path} is not empty and is not an llmobs eval state (no {MANIFEST}); "
            "give a new or empty folder",
            param="state",
        )
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"--state: {manifest}: unreadable ({exc})", param="state") from exc
    if not isinstance(doc, dict) or doc.get("tool") != "llmobs" or doc.get("kind") != KIND:
        raise UsageError(f"--state: {manifest} was not written by llmobs eval", param="state")
    if doc.get("format") != FORMAT:
        raise UsageError(
            f"--state: {manifest} has state format {doc.get('format')}; this llmobs reads "
            f"format {FORMAT} (start a new --state folder)",
            param="state",
        )
    wm = doc.get("watermark")
    return EvalState(
        folder=path,
        watermark=datetime.fromisoformat(wm) if wm else None,
        files={
            p: FileMark(int(m["size"]), int(m["mtime_ns"]))
            for p, m in (doc.get("files") or {}).items()
        },
        options=dict(doc.get("options") or {}),
        judgments_file=doc.get("judgments"),
        generation=int(doc.get("generation") or 0),
        runs=list(doc.get("runs") or []),
    )


def read_judgments(state: EvalState) -> pl.DataFrame:
    """Every judgment stored so far (an empty frame for a fresh state)."""
    if state.judgments_file is None:
        return pl.DataFrame(schema=JUDGMENT_SCHEMA)
    target = state.folder / state.judgments_file
    if not target.exists():
        raise UsageError(
            f"--state: {target} is missing (named by {state.folder / MANIFEST})", param="state"
        )
    return pl.read_parquet(target)


def check_options(state: EvalState, options: dict[str, Any]) -> None:
    """Exit 2 when this run's comparability options differ from the stored ones."""
    if state.fresh or not state.options:
        return
    diff = sorted(
        k for k in options.keys() | state.options.keys() if options.get(k) != state.options.get(k)
    )
    if diff:
        said = "; ".join(f"{k}: {state.options.get(k)} then, {options.get(k)} now" for k in diff)
        raise UsageError(
            f"--state: {state.folder} holds judgments made with other options ({said}); "
            "use a new --state folder for these options",
            param="state",
        )


def file_marks(files: list[Path]) -> dict[str, FileMark]:
    """Size and modification time of every file (a folder: each Parquet file in it)."""
    out: dict[str, FileMark] = {}
    for f in files:
        items = sorted(f.rglob("*.parquet")) if f.is_dir() else [f]
        for item in items:
            st = item.stat()
            out[str(item.resolve())] = FileMark(st.st_size, st.st_mtime_ns)
    return out


def save_state(
    state: EvalState,
    *,
    watermark: datetime | None,
    files: dict[str, FileMark],
    options: dict[str, Any],
    judgments: pl.DataFrame,
    run: dict[str, Any],
) -> None:
    """Store a run: new judgments generation, then the manifest, then drop the old one."""
    from llmobs_cli.core import atomic

    state.folder.mkdir(parents=True, exist_ok=True)
    generation = state.generation + 1
    name = f"judgments-{generation:06d}.parquet"
    atomic.write_parquet(state.folder / name, judgments)
    doc = {
        "tool": "llmobs",
        "kind": KIND,
        "format": FORMAT,
        "watermark": watermark.isoformat() if watermark is not None else None,
        "files": {p: {"size": m.size, "mtime_ns": m.mtime_ns} for p, m in sorted(files.items())},
        "options": options,
        "judgments": name,
        "generation": generation,
        "runs": [*state.runs, run][-100:],
    }
    atomic.write_json(state.folder / MANIFEST, doc)
    old = state.judgments_file
    if old and old != name and (state.folder / old).exists():
        (state.folder / old).unlink()  # a generation this state's manifest named: ours


__all__ = [
    "FORMAT",
    "MANIFEST",
    "EvalState",
    "FileMark",
    "check_options",
    "file_marks",
    "open_state",
    "read_judgments",
    "save_state",
]
