"""The environment variables llmobs reads, in one place outside the pure core.

The core takes every setting as an argument; the CLI and the Python API resolve the
defaults that come from the environment here:

* ``LLMOBS_CACHE_DIR`` — the judgment cache directory (else the user cache directory);
* ``OPENAI_BASE_URL`` — the judge endpoint when neither an argument nor ``judge.base_url``
  names one (resolved before a client exists so the cache key names the endpoint).

``OPENAI_API_KEY`` is left to the ``openai`` client, which reads it itself. The CLI's
``LLMOBS_DEBUG`` is read by its error boundary (:func:`llmobs_cli.cli.app.main`).
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
