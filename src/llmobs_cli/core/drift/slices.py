"""Slices (each value of a field tested on its own) and the ranking of where a change comes
from (a shift-share decomposition of each drifted numeric feature's change of mean)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmobs_cli.core.record.config import DriftConfig
from llmobs_cli.core.record.fields import parse_fields


def _gkey(group: dict[str, Any]) -> str:
    return json.dumps(group, sort_keys=True, default=str)


#: Dimensions sliced by default. Route only: on the generated steady, sample-rate-change and
#: language-shift scenarios route slices stay quiet where they should, while model slices
#: (whose route mix moves with traffic) flagged prompt length in the language-shift
#: scenario; ``--slices route,model`` opts in.
DEFAULT_SLICES: tuple[str, ...] = ("route",)
#: A slice needs this share of either window's calls to be tested on its own.
MIN_SLICE_SHARE = 0.02
#: At most this many slices per dimension (the largest by calls).
MAX_SLICES = 12


def _slice_dims(slices: Sequence[str] | str | None, cfg: DriftConfig) -> list[str]:
    """``auto`` (the default): ``drift.slices`` of the config, else route;
    ``none``: no slices; else the comma-separated field names given."""
    if slices is None or slices == "auto":
        dims = list(cfg.slices) if cfg.slices is not None else list(DEFAULT_SLICES)
        return [d for d in dims if d != "none"]
    if isinstance(slices, str):
        if slices.strip() == "none":
            return []
        slices = [s.strip() for s in slices.split(",") if s.strip()]
    return parse_fields(",".join(slices), "--slices")


def where_ranking(rows: list[dict[str, Any]], top: int = 10) -> list[dict[str, Any]]:
    """Which slices explain each numeric feature's change of mean: a symmetric shift-share
    (Kitagawa) decomposition per slice dimension. With weight shares ``s`` and weighted
    means ``m`` per slice in the baseline (b) and current (c) windows, the overall change
    ``Σ s_c·m_c − Σ s_b·m_b`` splits exactly into ``within = (s_b+s_c)/2·(m_c−m_b)`` (the
    slice itself changed) and ``mix = (s_c−s_b)·(m_b+m_c)/2`` (traffic moved between
    slices). Slices are listed by ``|within|``, with their own test's verdict and effect."""
    out: list[dict[str, Any]] = []
    overall = {
        r["feature"]: r
        for r in rows
        if r["group"] is None and r["kind"] == "numeric" and r.get("baseline")
    }
    by_dim: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if not r.get("slice") or r["feature"] not in overall or not r.get("baseline"):
            continue
        (dim,) = r["group"].keys()
        by_dim.setdefault((r["feature"], dim), []).append(r)
    for (feature, dim), part in by_dim.items():
        o = overall[feature]
        total = o["current"]["mean"] - o["baseline"]["mean"]
        sb_all = sum(r["calls_baseline"] for r in part) or 1.0
        sc_all = sum(r["calls_current"] for r in part) or 1.0
        for r in part:
            mb, mc = r["baseline"]["mean"], r["current"]["mean"]
            if mb is None or mc is None:
                continue
            sb, sc = r["calls_baseline"] / sb_all, r["calls_current"] / sc_all
            within = (sb + sc) / 2 * (mc - mb)
            mix = (sc - sb) * (mb + mc) / 2
            out.append(
                {
                    "feature": feature,
                    "dimension": dim,
                    "slice": r["group"],
                    "within": within,
                    "mix": mix,
                    "share_of_change": within / total if total else None,
                    "mean_baseline": mb,
                    "mean_current": mc,
                    "effect_size": r["effect_size"],
                    "p_adjusted": r.get("p_adjusted"),
                    "drifted": r["drifted"],
                    "status": r.get("status"),
                    "summary": r.get("summary"),
                }
            )
    flagged = {r["feature"] for r in rows if r["drifted"]}
    out = [w for w in out if w["feature"] in flagged]
    out.sort(key=lambda w: (not w["drifted"], -abs(w["within"])))
    return out[:top]
