"""``llmobs drift --state DIR``: a nightly drift over a growing lake without redoing the month.

The state folder holds what earlier runs read, reduced to what drift needs:

* ``partials.parquet`` — the drift partials of every row read so far, keyed by UTC day
  (``k:day``) instead of by window, so any window of whole days is a group-by-sum away;
* ``sample.parquet`` / ``text.parquet`` — the rows of the sessions whose hash is at most
  a threshold (the cluster sample and the text sample), with their timestamps; the
  thresholds only go down, so what is kept is always "every cluster below the threshold"
  of all rows read;
* ``llmobs-drift-state.json`` — the manifest: llmobs' mark and format version, a key of
  the settings the partials depend on (features, groups, slices, refusal patterns, caps),
  every input file read with its size and modification time, the latest timestamp read
  (the watermark) and the two thresholds.

A run reads only files it has not read (whole) and, from a file that changed since (grew),
only the rows after the watermark; it merges their partials and samples into the stored
ones, drops days older than the baseline window, and finalizes the windows from the
state. Windows are whole UTC days ending at the midnight after the latest call (or after
``--now``). A state built with other settings is rebuilt from every row; a folder that
holds anything else is refused. Files are replaced atomically, the manifest last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from llmobs_cli.core import atomic
from llmobs_cli.core.drift.partials import CL, DAY, DriftPlan
from llmobs_cli.core.drift.result import BASE, CUR, WIN
from llmobs_cli.core.drift.sample import ClusterSample
from llmobs_cli.core.partials import merge
from llmobs_cli.errors import UsageError

MANIFEST = "llmobs-drift-state.json"
VERSION = 1
_FILES = ("partials.parquet", "sample.parquet", "text.parquet")
_MAX = (1 << 64) - 1
#: The text sample kept across runs: enough for both windows' caps.
TEXT_FACTOR = 5


def plan_key(plan: DriftPlan) -> str:
    """A digest of the settings the stored partials and samples depend on."""
    doc = {
        "features": [(f.name, f.kind) for f in plan.features],
        "by": plan.by,
        "slices": plan.slices,
        "patterns": plan.patterns,
        "text": plan.text,
        "embedding": plan.embedding,
        "alpha": plan.alpha,
        "prices": repr(type(plan.price_table)) if plan.price_table is not None else None,
    }
    return hashlib.sha256(json.dumps(doc, default=str).encode()).hexdigest()[:16]


def _stat(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


@dataclass
class DriftState:
    """The state folder's content (see the module docstring)."""

    root: Path
    key: str
    files: dict[str, dict[str, int]] = field(default_factory=dict)
    latest: datetime | None = None
    tau: int = _MAX
    tau_text: int = _MAX
    partials: pl.DataFrame | None = None
    sample: pl.DataFrame | None = None
    text: pl.DataFrame | None = None
    rebuilt: str | None = None

    @classmethod
    def open(cls, root: Path, key: str) -> DriftState:
        """The state in ``root`` (a new one when the folder is new or empty, or when it
        was built with other settings); UsageError when the folder holds other things."""
        if root.exists() and not root.is_dir():
            raise UsageError(f"--state {root}: not a folder", param="state")
        mark = root / MANIFEST
        if root.exists() and not mark.exists() and any(root.iterdir()):
            raise UsageError(
                f"--state {root}: holds files llmobs did not write (give a new or empty "
                "folder for the drift state)",
                param="state",
            )
        state = cls(root, key)
        if not mark.exists():
            return state
        try:
            doc = json.loads(mark.read_text())
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"--state {root}: {MANIFEST} is unreadable ({exc})", param="state"
            ) from exc
        if doc.get("tool") != "llmobs" or doc.get("kind") != "drift":
            raise UsageError(f"--state {root}: {MANIFEST} is not an llmobs drift state")
        if doc.get("version") != VERSION or doc.get("key") != key:
            state.rebuilt = "it was built with other settings"
            return state
        state.files = dict(doc.get("files", {}))
        state.latest = datetime.fromisoformat(doc["latest"]) if doc.get("latest") else None
        state.tau = int(doc.get("tau", _MAX))
        state.tau_text = int(doc.get("tau_text", _MAX))
        for name in _FILES:
            p = root / name
            try:
                frame = pl.read_parquet(p) if p.exists() else None
            except Exception as exc:  # polars raises several kinds for a damaged file
                raise UsageError(
                    f"--state {root}: {name} is unreadable ({exc}); give a new folder",
                    param="state",
                ) from exc
            setattr(state, name.split(".")[0], frame)
        return state

    def inputs(self, files: Sequence[Path]) -> tuple[list[tuple[Path, datetime | None]], int]:
        """The files to read — new ones whole, grown ones after the watermark — and the
        number left as they were."""
        todo: list[tuple[Path, datetime | None]] = []
        same = 0
        for f in files:
            known = self.files.get(str(f.resolve()))
            if known is None:
                todo.append((f, None))
            elif known != _stat(f):
                todo.append((f, self.latest + timedelta(microseconds=1) if self.latest else None))
            else:
                same += 1
        return todo, same

    def add(
        self,
        files: Sequence[Path],
        partials: pl.DataFrame | None,
        sample: list[pl.DataFrame],
        text: list[pl.DataFrame],
    ) -> None:
        """Fold what a run read into the state."""
        for f in files:
            self.files[str(f.resolve())] = _stat(f)
        if partials is not None and partials.height:
            both = [p for p in (self.partials, partials) if p is not None and p.height]
            self.partials = merge(both)
            rows = self.partials.filter(pl.col("k:part") == "rows")
            hi = rows["max:x"].max()
            if hi is not None:
                self.latest = datetime.fromtimestamp(0, tz=UTC) + timedelta(
                    microseconds=int(hi)  # type: ignore[arg-type]
                )
        self.sample = _concat(self.sample, sample)
        self.text = _concat(self.text, text)

    def thin(self, cap: int, text_cap: int) -> None:
        """Lower the thresholds so the samples stay within their caps."""
        self.sample, self.tau = _thin(self.sample, cap, self.tau)
        self.text, self.tau_text = _thin(self.text, text_cap * TEXT_FACTOR, self.tau_text)

    def retain(self, first_day: date) -> None:
        """Forget the days before ``first_day`` (outside every window from now on)."""
        if self.partials is not None:
            keep = pl.col(DAY).is_null() | (pl.col(DAY) >= first_day)
            self.partials = self.partials.filter(keep)
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
        for name in ("sample", "text"):
            frame = getattr(self, name)
            if frame is not None:
                setattr(self, name, frame.filter(pl.col("timestamp") >= start))

    def save(self) -> None:
        """Write the state: data files first, each atomically, then the manifest."""
        self.root.mkdir(parents=True, exist_ok=True)
        for name in _FILES:
            frame = getattr(self, name.split(".")[0])
            if frame is not None:
                atomic.write_parquet(self.root / name, frame)
        atomic.write_json(
            self.root / MANIFEST,
            {
                "tool": "llmobs",
                "kind": "drift",
                "version": VERSION,
                "key": self.key,
                "latest": self.latest.isoformat() if self.latest else None,
                "tau": self.tau,
                "tau_text": self.tau_text,
                "files": self.files,
            },
        )

    def windows(
        self,
        plan: DriftPlan,
        current: tuple[datetime, datetime],
        baseline: tuple[datetime, datetime],
    ) -> tuple[pl.DataFrame | None, ClusterSample, ClusterSample]:
        """Merged partials, cluster sample and text sample of the two windows."""
        merged = None
        if self.partials is not None and self.partials.height:
            day = pl.col(DAY)
            win = (
                pl.when(day.is_between(current[0].date(), current[1].date(), closed="left"))
                .then(pl.lit(CUR, pl.Int8))
                .when(day.is_between(baseline[0].date(), baseline[1].date(), closed="left"))
                .then(pl.lit(BASE, pl.Int8))
                .otherwise(None)
            )
            tagged = self.partials.with_columns(win.alias("k:win")).filter(
                pl.col("k:win").is_not_null()
            )
            if tagged.height:
                merged = merge([tagged.drop(DAY)])
        sample = ClusterSample(plan.sample_rows)
        texts = ClusterSample(plan.text_rows, per_window=True)
        if self.sample is not None:
            sample.add(
                _tag(self.sample, current, baseline), {-1: self.tau} if self.tau < _MAX else None
            )
        if self.text is not None:
            cut = {BASE: self.tau_text, CUR: self.tau_text} if self.tau_text < _MAX else None
            texts.add(_tag(self.text, current, baseline), cut)
        return merged, sample, texts


def _tag(
    frame: pl.DataFrame, current: tuple[datetime, datetime], baseline: tuple[datetime, datetime]
) -> pl.DataFrame:
    ts = pl.col("timestamp")
    win = (
        pl.when((ts >= current[0]) & (ts < current[1]))
        .then(pl.lit(CUR, pl.Int8))
        .when((ts >= baseline[0]) & (ts < baseline[1]))
        .then(pl.lit(BASE, pl.Int8))
        .otherwise(None)
    )
    return frame.with_columns(win.alias(WIN)).filter(pl.col(WIN).is_not_null())


def _concat(old: pl.DataFrame | None, new: list[pl.DataFrame]) -> pl.DataFrame | None:
    frames = [f for f in [old, *new] if f is not None and f.height]
    return pl.concat(frames, how="diagonal_relaxed") if frames else old


def _thin(frame: pl.DataFrame | None, cap: int, tau: int) -> tuple[pl.DataFrame | None, int]:
    if frame is None:
        return frame, tau
    frame = frame.filter(pl.col(CL) <= tau)
    if frame.height <= cap:
        return frame, tau
    sizes = frame.group_by(CL).agg(pl.len().alias("n")).sort(CL)
    fits = sizes.filter(pl.col("n").cum_sum() <= cap)
    limit = int(fits[CL].max()) if fits.height else int(sizes[CL][0])  # type: ignore[arg-type]
    return frame.filter(pl.col(CL) <= limit), min(tau, limit)


def whole_days(*bounds: datetime | None) -> bool:
    """True when every bound is a UTC midnight."""
    for b in bounds:
        if b is None:
            continue
        u = b.astimezone(UTC)
        if (u.hour, u.minute, u.second, u.microsecond) != (0, 0, 0, 0):
            return False
    return True


def next_midnight(ts: datetime) -> datetime:
    """The first UTC midnight strictly after ``ts``."""
    u = ts.astimezone(UTC)
    return datetime(u.year, u.month, u.day, tzinfo=UTC) + timedelta(days=1)


def info(state: DriftState) -> dict[str, Any]:
    """What the state holds (for messages)."""
    return {
        "files": len(state.files),
        "latest": state.latest.isoformat() if state.latest else None,
        "sample_rows": 0 if state.sample is None else state.sample.height,
    }
