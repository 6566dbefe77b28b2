"""What the synthetic product looks like: its routes (rates, session shapes, answer
lengths, failure rates), models (providers, prices, speed), languages, releases and the
public knobs of the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from llmobs_cli.core.synth.corpus import (
    CHAT_TOPICS,
    KB_TOPICS,
    REFUND_TOPICS,
    SUMMARIZE_TOPICS,
    Topic,
)

# --------------------------------------------------------------------------------------
# Public knobs
# --------------------------------------------------------------------------------------

#: Routes in Zipf rank order (population volume), with their storage sample rates.
ROUTES: tuple[str, ...] = ("chat", "search_qa", "summarize", "support_agent", "refunds")
ROUTE_RATES: dict[str, float] = {
    "chat": 0.01,
    "search_qa": 0.10,
    "summarize": 0.25,
    "support_agent": 0.50,
    "refunds": 1.00,
}
#: Zipf exponent of the population volume by route rank (rank 1 = chat).
ZIPF_EXPONENT = 2.0
#: Default start of the generated period (so that the default 42 days end on 2026-11-22).
DEFAULT_START = datetime(2026, 10, 12, tzinfo=UTC)
LANGUAGES: tuple[str, ...] = ("en", "es", "de", "fr")
BASE_LANGUAGE: dict[str, float] = {"en": 0.85, "es": 0.06, "de": 0.05, "fr": 0.04}
#: The language mix the CLI injects with ``--drift-after`` (``DriftSpec.language=None``
#: keeps the base mix).
DEFAULT_DRIFT_LANGUAGE: dict[str, float] = {"en": 0.60, "es": 0.25, "de": 0.10, "fr": 0.05}
DRIFT_KINDS: tuple[str, ...] = ("length", "refusals", "language", "retrieval", "topic")
QUALITY_LABELS: tuple[str, ...] = (
    "good",
    "wrong",
    "offtopic",
    "truncated",
    "refusal",
    "filtered",
    "error",
)

# --------------------------------------------------------------------------------------
# Models, providers, prices (list prices, USD per million tokens) and performance.
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    name: str
    provider: str
    ttft_ms: float  # median time to first token at ~1k input tokens
    tpot_ms: float  # median time per output token
    price_in: float
    price_cached: float
    price_out: float
    price_cache_write: float = 0.0
    reasoning: bool = False


MODELS: tuple[Model, ...] = (
    Model("gpt-4o", "openai", 450, 12, 2.50, 1.25, 10.00),
    Model("gpt-4o-mini", "openai", 330, 8, 0.15, 0.075, 0.60),
    Model("o3-mini", "openai", 380, 7, 1.10, 0.55, 4.40, reasoning=True),
    Model("claude-3-5-sonnet-20241022", "anthropic", 700, 15, 3.00, 0.30, 15.00, 3.75),
    Model("claude-3-5-haiku-20241022", "anthropic", 520, 9, 0.80, 0.08, 4.00, 1.00),
    Model("gemini-1.5-flash", "google", 300, 5, 0.075, 0.01875, 0.30),
    Model("mistral-large-latest", "mistral", 600, 16, 2.00, 2.00, 6.00),
    Model("deepseek-chat", "deepseek", 900, 22, 0.27, 0.07, 1.10),
)
MODEL_INDEX = {m.name: i for i, m in enumerate(MODELS)}

#: Model mix per route (shares of sessions).
ROUTE_MODELS: dict[str, dict[str, float]] = {
    "chat": {"gpt-4o-mini": 0.50, "gemini-1.5-flash": 0.20, "deepseek-chat": 0.15, "gpt-4o": 0.15},
    "search_qa": {"gpt-4o": 0.50, "claude-3-5-sonnet-20241022": 0.35, "mistral-large-latest": 0.15},
    "summarize": {"gpt-4o-mini": 0.40, "claude-3-5-haiku-20241022": 0.30, "gemini-1.5-flash": 0.30},
    "support_agent": {"claude-3-5-sonnet-20241022": 0.60, "gpt-4o": 0.40},
    "refunds": {"o3-mini": 0.60, "gpt-4o": 0.40},
}


@dataclass(frozen=True)
class Route:
    name: str
    topics: tuple[Topic, ...]
    opener: str  # key of OPENERS
    session_mean: float  # mean calls per session
    gap_s: float  # mean seconds between calls of a session
    answer_chars: float  # median target answer length (characters)
    max_tokens: int
    temperature: float
    overhead_tokens: float  # median input tokens not in the logged text (tools, few-shot)
    rag: bool
    reference_share: float
    refusal_rate: float
    error_rate: float
    timeout_ms: float
    context_max: int  # up to this many context sentences in the prompt
    features: tuple[str, ...]
    tags: tuple[str, ...]
    cite_share: float = 0.0


ROUTE_SPECS: dict[str, Route] = {
    "chat": Route(
        name="chat",
        topics=CHAT_TOPICS,
        opener="chat",
        session_mean=4.0,
        gap_s=50,
        answer_chars=300,
        max_tokens=1024,
        temperature=0.7,
        overhead_tokens=250,
        rag=False,
        reference_share=0.0,
        refusal_rate=0.02,
        error_rate=0.010,
        timeout_ms=60_000,
        context_max=3,
        features=("assistant", "onboarding", "mobile_app"),
        tags=("web",),
    ),
    "search_qa": Route(
        name="search_qa",
        topics=KB_TOPICS,
        opener="kb",
        session_mean=1.6,
        gap_s=35,
        answer_chars=190,
        max_tokens=512,
        temperature=0.2,
        overhead_tokens=900,
        rag=True,
        reference_share=0.4,
        refusal_rate=0.01,
        error_rate=0.008,
        timeout_ms=30_000,
        context_max=0,
        features=("help_center", "docs_search"),
        tags=("rag", "help-center"),
        cite_share=0.8,
    ),
    "summarize": Route(
        name="summarize",
        topics=SUMMARIZE_TOPICS,
        opener="summarize",
        session_mean=1.2,
        gap_s=20,
        answer_chars=110,
        max_tokens=256,
        temperature=0.3,
        overhead_tokens=2200,
        rag=False,
        reference_share=0.0,
        refusal_rate=0.005,
        error_rate=0.006,
        timeout_ms=30_000,
        context_max=0,
        features=("meeting_notes", "inbox"),
        tags=("batch",),
    ),
    "support_agent": Route(
        name="support_agent",
        topics=KB_TOPICS,
        opener="kb",
        session_mean=3.0,
        gap_s=70,
        answer_chars=250,
        max_tokens=768,
        temperature=0.4,
        overhead_tokens=1800,
        rag=True,
        reference_share=0.0,
        refusal_rate=0.015,
        error_rate=0.012,
        timeout_ms=45_000,
        context_max=2,
        features=("support_widget", "email"),
        tags=("rag", "agent"),
        cite_share=0.6,
    ),
    "refunds": Route(
        name="refunds",
        topics=REFUND_TOPICS,
        opener="kb",
        session_mean=1.5,
        gap_s=60,
        answer_chars=190,
        max_tokens=2048,
        temperature=0.0,
        overhead_tokens=1200,
        rag=False,
        reference_share=0.6,
        refusal_rate=0.01,
        error_rate=0.005,
        timeout_ms=60_000,
        context_max=1,
        features=("billing_portal", "support_widget"),
        tags=("high-stakes", "billing"),
    ),
}

#: The topic each route's questions surge to under a ``topic`` drift.
HOT_TOPIC: dict[str, str] = {
    "chat": "python_index",
    "search_qa": "password_reset",
    "summarize": "outage",
    "support_agent": "password_reset",
    "refunds": "duplicate_charge",
}

TIERS = ("free", "pro", "enterprise")
REGIONS = ("us-east", "eu-west", "ap-south")
N_CUSTOMERS = 400
RELEASES = ("v1.0.0", "v1.1.0", "v1.2.0")
MAX_FILLERS = 12
FILLER_VARIANTS = 24
CHARS_PER_TOKEN = 4.0

#: Error messages in the shapes real SDKs log, with their shares.
ERRORS: tuple[str, ...] = (
    "429 Too Many Requests: rate limit exceeded, retry after 2s",
    "500 Internal Server Error: the server had an error while processing your request",
    "503 Service Unavailable: the model is overloaded, please try again later",
    "400 Bad Request: context_length_exceeded",
    "502 Bad Gateway: upstream connect error",
)
ERROR_P = np.array([0.45, 0.2, 0.2, 0.05, 0.1])
