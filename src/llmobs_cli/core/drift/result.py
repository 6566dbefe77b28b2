"""What a drift run returns (:class:`DriftResult`, one :class:`WindowSummary` per window) and
the constants its parts share: effect floors, category caps, the columns every run reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from llmobs_cli.core.drift.features import (
    DEFAULT_FEATURES,
    STANDARD,
    columns_for,
)

#: Effect-size floor per kind (see module docstring and docs/drift.md).
DEFAULT_EFFECT: dict[str, float] = {
    "numeric": 0.10,
    "rate": 2.0,
    "categorical": 0.10,
    "topic": 0.10,
    "vocabulary": 0.05,
    "calibration": 0.20,
}
#: Categories beyond this many (by pooled weight) are folded into "(other)".
MAX_CATEGORIES = 20
#: Tokens whose shares make up ``response_vocabulary``.
VOCAB_TOKENS = 30
OTHER = "(other)"
BASE_COLUMNS = ("timestamp", "sample_rate", "route", "status", "session_id", "trace_id")
#: Every canonical column some default feature may read (the dashboard's projection).
COLUMNS: tuple[str, ...] = tuple(
    dict.fromkeys([*BASE_COLUMNS, *columns_for([STANDARD[f] for f in DEFAULT_FEATURES])])
)

WIN = "_win"
BASE, CUR = 0, 1


@dataclass
class WindowSummary:
    """One window: its span, rows seen, estimated calls and Kish n_eff."""

    start: datetime | None
    end: datetime | None
    sampled: int
    calls: float
    n_eff: float
    name: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "sampled": self.sampled,
            "calls": round(self.calls, 3),
            "n_eff": round(self.n_eff, 1),
            "name": self.name,
            "source": self.source,
        }


@dataclass
class DriftResult:
    """Everything ``llmobs drift`` found; :meth:`as_dict` is the contract's JSON."""

    current: WindowSummary
    baseline: WindowSummary
    features: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    distributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    alpha: float = 0.01
    min_n_eff: float = 100.0
    skipped_rows: int = 0
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    #: slice dimensions tested (each value of each, beside the overall population)
    slices: list[str] = field(default_factory=list)
    #: the slices that explain each drifted numeric feature (see :func:`where_ranking`)
    where: list[dict[str, Any]] = field(default_factory=list)

    @property
    def drifted(self) -> list[str]:
        """Names of the features that drifted in any test (overall or a group)."""
        return list(dict.fromkeys(r["feature"] for r in self.features if r["drifted"]))

    @property
    def fired(self) -> bool:
        return bool(self.drifted)

    def as_dict(self) -> dict[str, Any]:
        feats = []
        for r in self.features:
            row = dict(r)
            if r["group"] is None and r["feature"] in self.distributions:
                row["distribution"] = self.distributions[r["feature"]]
            feats.append(row)
        return {
            "current": self.current.as_dict(),
            "baseline": self.baseline.as_dict(),
            "features": feats,
            "drifted": self.drifted,
            "alpha": self.alpha,
            "min_n_eff": self.min_n_eff,
            "slices": list(self.slices),
            "where": list(self.where),
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------
# Windows and loading
# --------------------------------------------------------------------------------------
