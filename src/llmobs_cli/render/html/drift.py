"""The drift view of a ``drift`` document: the alerts table and, per drifted feature,
baseline vs current distributions."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from llmobs_cli.render.html.fmt import (
    _cell,
    _get,
    _num,
    _pvalue,
    _score,
    _table,
    _window_text,
    exemplar_table,
    key_label,
)
from llmobs_cli.render.tables import human_number

# --- drift view -----------------------------------------------------------------------------


def _group_text(group: Any) -> str:
    return "all" if not group else key_label(group)


def _distribution(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    """Normalise one feature's baseline/current distribution to labels and two share lists."""
    dist: Mapping[str, Any] = (
        entry["distribution"] if isinstance(entry.get("distribution"), Mapping) else entry
    )
    base, cur = dist.get("baseline"), dist.get("current")
    edges: Any = None
    if isinstance(base, Mapping) and isinstance(cur, Mapping) and not dist.get("labels"):
        # {"baseline": {label: share}, "current": {label: share}}
        labels: Any = list(dict.fromkeys([*base.keys(), *cur.keys()]))
        base = [base.get(k, 0.0) for k in labels]
        cur = [cur.get(k, 0.0) for k in labels]
    else:
        labels = dist.get("labels") or dist.get("categories")
        edges = dist.get("edges") or dist.get("bins")
        if labels is not None:
            edges = None
        if labels is None and isinstance(edges, list) and len(edges) >= 2:
            labels = [f"{_edge(a)}–{_edge(b)}" for a, b in itertools.pairwise(edges)]
    if not isinstance(labels, list) or not isinstance(base, list) or not isinstance(cur, list):
        return None
    if not (len(labels) == len(base) == len(cur)) or not labels:
        return None
    b = [_num(v) or 0.0 for v in base]
    c = [_num(v) or 0.0 for v in cur]
    sb, sc = sum(b), sum(c)
    if sb > 1.0001 or sc > 1.0001:  # counts or weights: turn into shares
        b = [v / sb if sb else 0.0 for v in b]
        c = [v / sc if sc else 0.0 for v in c]
    names = [str(x) for x in labels]
    if edges is not None:
        # Bins empty in both windows (a discrete feature on fine bins) carry nothing.
        keep = [i for i in range(len(names)) if b[i] > 0 or c[i] > 0] or list(range(len(names)))
        names, b, c = [names[i] for i in keep], [b[i] for i in keep], [c[i] for i in keep]
    return {"labels": names, "baseline": b, "current": c}


def _edge(x: Any) -> str:
    v = _num(x)
    if v is None:
        return str(x)
    return human_number(v, 3)


def drift_view(drift: Mapping[str, Any]) -> dict[str, Any]:
    feats = [f for f in drift.get("features") or [] if isinstance(f, Mapping)]
    feats.sort(
        key=lambda f: (not f.get("drifted"), f.get("group") is not None, str(f.get("feature")))
    )
    rows = []
    for f in feats:
        status = "DRIFT" if f.get("drifted") else (str(f.get("note") or f.get("status") or "ok"))
        rows.append(
            [
                str(f.get("feature")),
                _group_text(f.get("group")),
                str(f.get("test") or "-"),
                _score(f.get("statistic")),
                _pvalue(_get(f, ("p_adjusted",), ("p_value",))),
                _score(f.get("effect_size")),
                str(f.get("summary") or f.get("description") or ""),
                _cell(
                    status, "bad" if f.get("drifted") else ("warn" if status != "ok" else "good")
                ),
            ]
        )
    dists = []
    extra = drift.get("distributions")
    sources: list[Mapping[str, Any]] = []
    if isinstance(extra, list):
        sources = [d for d in extra if isinstance(d, Mapping)]
    else:
        sources = [f for f in feats if f.get("drifted")]
    for d in sources:
        if d.get("drifted") is False:
            continue
        norm = _distribution(d)
        if norm is None:
            continue
        name = str(d.get("feature"))
        grp = _group_text(d.get("group"))
        norm["title"] = name if grp == "all" else f"{name} ({grp})"
        norm["subtitle"] = str(d.get("summary") or "")
        norm["xlabel"] = str(d.get("unit") or ("bin" if d.get("edges") else ""))
        dists.append(norm)
    cur = drift.get("current") or {}
    base = drift.get("baseline") or {}
    drifted = [str(x) for x in drift.get("drifted") or []]

    def wtext(w: Mapping[str, Any]) -> str:
        return (
            f"{_window_text(w)} ({human_number(_num(w.get('sampled')))} rows, "
            f"{human_number(_num(w.get('calls')))} calls)"
        )

    note = f"Current {wtext(cur)} vs baseline {wtext(base)}. " if cur or base else ""
    note += (
        "A feature drifts when its Benjamini–Hochberg-corrected p-value is below alpha and its "
        "effect size passes its floor; tests are weighted by 1/sample_rate."
    )
    return {
        "note": note,
        "notes": [f"Drifted: {', '.join(drifted)}."] if drifted else ["Nothing drifted."],
        "table": _table(
            "Drift tests",
            ["feature", "group", "test", "statistic", "p (BH)", "effect", "change", "status"],
            rows,
            num=[False, False, False, True, True, True, False, False],
            wrap=[False, True, False, False, False, False, True, False],
            empty="no feature tested",
        ),
        "distributions": dists,
        "examples": exemplar_table(
            "Example calls from the grown side",
            [
                (
                    str(f.get("feature"))
                    + ("" if f.get("group") is None else f" ({_group_text(f.get('group'))})"),
                    ex,
                )
                for f in feats
                for ex in (f.get("exemplars") or [])
            ],
            "no example calls",
        ),
        "drifted": drifted,
        "empty": "No drifted feature: no distribution to compare.",
    }
