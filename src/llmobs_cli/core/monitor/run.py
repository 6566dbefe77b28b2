"""One night of a monitor: freeze the baseline on the first run, fold the night in, alarm.

:func:`start` builds a new state from the baseline's quantities; :func:`fold` adds (or
replaces) one night's estimates and recomputes every quantity's evidence from all nights
kept, so the result does not depend on how often a night was rerun. An alarm is reported
once, on the night it fires (``fired_now``); later nights list it as standing. The α
budget: half for the baseline's reference intervals, half for the sequential tests, each
split evenly over the quantities (and their directions) frozen at the start.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from llmobs_cli.core.monitor.eprocess import changepoint_evalue, threshold
from llmobs_cli.core.monitor.quantities import MIN_NIGHT_N_EFF, Estimate, Quantity
from llmobs_cli.core.monitor.state import VERSION


@dataclass
class QuantityStatus:
    qid: str
    label: str
    nights: int
    last: float | None
    baseline: float
    lo: float
    hi: float
    evalue: float
    threshold: float
    side: str | None  # the direction of the strongest evidence
    alarmed: bool
    fired_now: bool
    alarm_night: str | None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class MonitorResult:
    kind: str
    night: str
    nights: int
    alpha: float
    baseline_window: dict[str, Any]
    quantities: list[QuantityStatus] = field(default_factory=list)
    started: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def new_alarms(self) -> list[QuantityStatus]:
        return [q for q in self.quantities if q.fired_now]

    @property
    def standing(self) -> list[QuantityStatus]:
        return [q for q in self.quantities if q.alarmed and not q.fired_now]

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "night": self.night,
            "nights": self.nights,
            "alpha": self.alpha,
            "baseline_window": self.baseline_window,
            "started": self.started,
            "new_alarms": [q.qid for q in self.new_alarms],
            "standing_alarms": [q.qid for q in self.standing],
            "quantities": [q.as_dict() for q in self.quantities],
            "notes": self.notes,
        }


def start(
    kind: str, alpha: float, baseline_window: dict[str, Any], quantities: list[Quantity]
) -> dict[str, Any]:
    """A new state: the frozen baseline and no night yet."""
    return {
        "version": VERSION,
        "kind": kind,
        "alpha": alpha,
        "created": datetime.now(UTC).isoformat(),
        "baseline_window": baseline_window,
        "quantities": [q.as_dict() for q in quantities],
        "nights": {},
        "alarms": {},
    }


def _tests(quantities: list[Quantity]) -> int:
    return sum(len(q.sides) for q in quantities)


def fold(state: dict[str, Any], night: str, estimates: dict[str, Estimate]) -> MonitorResult:
    """Add the night's estimates (replacing an earlier run of the same night) and say
    where the evidence stands. ``state`` is updated in place."""
    quantities = [Quantity.from_dict(d) for d in state["quantities"]]
    alpha = float(state["alpha"])
    bar = threshold(alpha / 2, _tests(quantities))
    state["nights"][night] = {
        qid: {"x": e.x, "se": e.se, "n_eff": e.n_eff} for qid, e in estimates.items()
    }
    nights = sorted(state["nights"])
    result = MonitorResult(
        kind=state["kind"],
        night=night,
        nights=len(nights),
        alpha=alpha,
        baseline_window=state.get("baseline_window") or {},
    )
    alarms: dict[str, Any] = state.setdefault("alarms", {})
    for q in quantities:
        zs: dict[str, list[float]] = {s: [] for s in q.sides}
        last = None
        for key in nights:
            e = state["nights"][key].get(q.qid)
            if not e or e["se"] is None or e["se"] <= 0 or e["n_eff"] < MIN_NIGHT_N_EFF:
                continue
            last = e["x"]
            if "down" in zs:
                zs["down"].append((q.lo - e["x"]) / e["se"])
            if "up" in zs:
                zs["up"].append((e["x"] - q.hi) / e["se"])
        n = len(next(iter(zs.values()))) if zs else 0
        evidence = {s: changepoint_evalue(np.array(v)) for s, v in zs.items()}
        side = max(evidence, key=lambda s: evidence[s]) if evidence else None
        ev = evidence[side] if side else 1.0
        if q.qid not in alarms and ev >= bar:
            alarms[q.qid] = {"night": night, "side": side, "evalue": ev}
        # Reported on the night it fired, also when that night is rerun.
        fired_now = (alarms.get(q.qid) or {}).get("night") == night
        result.quantities.append(
            QuantityStatus(
                qid=q.qid,
                label=q.label,
                nights=n,
                last=last,
                baseline=q.baseline,
                lo=q.lo,
                hi=q.hi,
                evalue=ev,
                threshold=bar,
                side=side,
                alarmed=q.qid in alarms,
                fired_now=fired_now,
                alarm_night=(alarms.get(q.qid) or {}).get("night"),
            )
        )
    result.quantities.sort(key=lambda s: -s.evalue)
    return result
