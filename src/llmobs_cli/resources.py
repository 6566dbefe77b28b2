"""Files shipped with llmobs: the default config, the price table, judge prompts.

In a wheel they live in ``llmobs_cli/_configs``; in a source checkout (editable install)
they are the repository's top-level ``configs/``.
"""

from __future__ import annotations

from pathlib import Path


def configs_dir() -> Path:
    packaged = Path(__file__).parent / "_configs"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "configs"


def config_file(name: str) -> Path:
    return configs_dir() / name
