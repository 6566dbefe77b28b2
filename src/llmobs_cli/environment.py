"""The environment variables llmobs reads, in one place outside the pure core.

The core takes every setting as an argument; the CLI and the Python API resolve the
defaults that come from the environment here:

* ``LLMOBS_CACHE_DIR`` — the judgment cache directory (else the user cache directory);
* ``OPENAI_BASE_URL`` — the judge endpoint when neither an argument nor ``judge.base_url``
  names one (resolved before a client exists so the cache key names the endpoint).

``OPENAI_API_KEY`` is left to the ``openai`` client, which reads it itself (llmobs only
asks whether it is set, to refuse a run that could not authenticate). The CLI's
``LLMOBS_DEBUG`` is read by its error boundary (:func:`llmobs_cli.cli.app.main`).

Exporters read the variables each destination's own SDK reads, through :func:`variable`:
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``,
``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_LOGS_HEADERS``,
``OTEL_EXPORTER_OTLP_PROTOCOL``, their ``_METRICS_`` forms (summary gauges),
``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` (the OTLP resource);
``LANGFUSE_HOST`` (or ``LANGFUSE_BASE_URL``), ``LANGFUSE_PUBLIC_KEY``,
``LANGFUSE_SECRET_KEY``; ``LANGSMITH_ENDPOINT``, ``LANGSMITH_API_KEY`` (or their
``LANGCHAIN_*`` spellings); and ``notify.url_env`` names the variable holding a webhook
URL. The distributed engines read ``SPARK_REMOTE`` (Spark Connect) and ``RAY_ADDRESS``
when no flag or ``engine:`` setting names a cluster.
"""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$LLMOBS_CACHE_DIR``, else ``<user cache dir>/llmobs/judgments``."""
    env = os.environ.get("LLMOBS_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("llmobs")) / "judgments"


def openai_base_url() -> str | None:
    """``$OPENAI_BASE_URL`` as the ``openai`` client defines it (``None`` when unset)."""
    return os.environ.get("OPENAI_BASE_URL") or None


def openai_api_key_set() -> bool:
    """Whether ``$OPENAI_API_KEY`` holds a key (its value is never read here)."""
    return bool(os.environ.get("OPENAI_API_KEY"))


def variable(*names: str) -> str | None:
    """The first of ``names`` that is set to a non-empty value, else ``None``."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value
    return None


def spark_workers_use_this_python() -> None:
    """Local Spark workers run this interpreter (the one with llmobs and Polars) unless
    ``PYSPARK_PYTHON`` says otherwise: PySpark's default is whichever ``python3`` comes
    first on PATH."""
    import sys

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


#: jemalloc settings for Polars' allocator in the ``llmobs`` process: freed pages are kept
#: for 5 s before they go back to the system, so the next batch reuses them instead of
#: faulting fresh ones in (measured on a 2M-row report: half the minor page faults, 18 %
#: less CPU time, +85 MB peak).
ALLOCATOR_CONF = "dirty_decay_ms:5000,muzzy_decay_ms:5000"


def tune_allocator() -> None:
    """Set Polars' jemalloc options (``_RJEM_MALLOC_CONF``) for this process unless the
    user set them; effective only before Polars is first imported (the CLI calls it
    first thing). The library API leaves the host process's allocator alone."""
    os.environ.setdefault("_RJEM_MALLOC_CONF", ALLOCATOR_CONF)
