"""Shared pytest fixtures (keep generic: several test modules use them)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/ helpers (openai_stub) importable

from openai_stub import OpenAIStub


@pytest.fixture
def openai_stub() -> Iterator[OpenAIStub]:
    """A running OpenAI-compatible chat-completions stub on 127.0.0.1 (see openai_stub.py)."""
    with OpenAIStub() as stub:
        yield stub
