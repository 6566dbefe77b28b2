"""One comparison of JSON-like documents for the tests: every difference, by path."""

from __future__ import annotations

import math
from typing import Any


def json_diffs(
    a: Any, b: Any, *, rel: float = 1e-9, abs_tol: float = 0.0, path: str = ""
) -> list[str]:
    """Every difference between ``a`` and ``b`` (dicts by key, lists by position); a float
    equals a number within ``rel`` relative or ``abs_tol`` absolute (NaN equals NaN): sums
    taken in another order differ in the last bits, nothing else may."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [
            d
            for k in a
            for d in json_diffs(a[k], b[k], rel=rel, abs_tol=abs_tol, path=f"{path}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} != {len(b)} items"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in json_diffs(x, y, rel=rel, abs_tol=abs_tol, path=f"{path}[{i}]")
        ]
    if isinstance(a, float) and isinstance(b, int | float) and not isinstance(b, bool):
        same = (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=rel, abs_tol=abs_tol)
        return [] if same else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
