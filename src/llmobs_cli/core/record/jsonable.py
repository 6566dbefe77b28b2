"""Values made ready for strict JSON, in one place: non-finite floats become ``null``
(:func:`clean`, :func:`finite`) and times ISO 8601 text (:func:`iso`).

Every result document (``as_dict()`` of a report, an eval summary, a drift result) goes
through these, so ``json.dumps(..., allow_nan=False)`` never meets a NaN.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date
from typing import Any


def clean(obj: Any) -> Any:
    """A copy of ``obj`` with NaN/±inf floats as ``None``, recursively through mappings,
    lists and tuples; numpy scalars become Python numbers."""
    if isinstance(obj, float):
        return None if math.isnan(obj) or math.isinf(obj) else obj
    if isinstance(obj, Mapping):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(clean(v) for v in obj)
    if type(obj).__module__ == "numpy" and getattr(obj, "ndim", None) == 0:
        return clean(obj.item())  # a numpy scalar
    return obj


def finite(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` when it is missing, NaN or infinite."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def iso(value: Any) -> str | None:
    """ISO 8601 text of a ``datetime``/``date``; ``None`` for anything else."""
    return value.isoformat() if isinstance(value, date) else None
