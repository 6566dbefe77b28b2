"""Drift layer: two-window tests on inputs, outputs and retrieval (``llmobs drift``).

Public surface:

* :func:`run_drift` → :class:`DriftResult` (``.as_dict()`` is the contract's JSON; its
  ``distributions`` give, per feature, the baseline and current histogram or category
  shares for charts);
* :data:`COLUMNS`, the canonical columns the default features read (one projection for a
  caller that loads once, like the dashboard);
* :data:`DEFAULT_FEATURES`, :data:`DEFAULT_EFFECT`.

Modules: ``features`` (what each feature reads and how it is compared), ``language``
(offline detection), ``topics`` (hashing + TF-IDF + SVD + k-means), ``stats/`` (one file
per test, registered), ``engine`` (windows, subsampling, BH and verdicts).
"""

from llmobs_cli.core.drift.engine import (
    COLUMNS,
    DEFAULT_EFFECT,
    DriftResult,
    WindowSummary,
    run_drift,
)
from llmobs_cli.core.drift.features import DEFAULT_FEATURES, STANDARD

DRIFT_COLUMNS = COLUMNS

__all__ = [
    "COLUMNS",
    "DEFAULT_EFFECT",
    "DEFAULT_FEATURES",
    "DRIFT_COLUMNS",
    "STANDARD",
    "DriftResult",
    "WindowSummary",
    "run_drift",
]
