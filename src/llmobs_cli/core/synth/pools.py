"""Precomputed string pools (small; rows pick from them by index) and the vectorised
helpers the generator draws with: named random streams, hex ids, gathers.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from llmobs_cli.core.synth.catalog import (
    FILLER_VARIANTS,
    LANGUAGES,
    MAX_FILLERS,
    ROUTE_SPECS,
    ROUTES,
)
from llmobs_cli.core.synth.corpus import (
    ACKS,
    CONTEXT,
    FILLERS,
    KB_TOPICS,
    OPENERS,
    REFUSALS,
    REGRESSION_SYSTEM,
    SYSTEM_PROMPTS,
)


class Streams:
    """Independent random streams named by purpose, so that adding a draw to one aspect
    does not reshuffle the others."""

    def __init__(self, seed: int, block: int = 0) -> None:
        self.seed = int(seed)
        self.block = int(block)

    def __call__(self, name: str) -> np.random.Generator:
        key = [self.seed & 0xFFFFFFFF, self.seed >> 32, zlib.crc32(name.encode())]
        # Block 0 keeps the original key, so files of up to one block are unchanged.
        return np.random.default_rng([*key, self.block] if self.block else key)


_HEX_PAIRS = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def hex_ids(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """``n`` random lowercase hex strings of ``width`` (even) characters, vectorised:
    random bytes mapped through a 256-entry table of hex pairs."""
    raw = rng.integers(0, 256, size=(n, width // 2), dtype=np.uint8)
    return _HEX_PAIRS[raw].view(f"S{width}").ravel()


def gather(pool: Sequence[str], idx: np.ndarray) -> pl.Series:
    return pl.Series(list(pool), dtype=pl.String).gather(pl.Series(idx.astype(np.int64)))


@dataclass(frozen=True)
class Pools:
    topic_offset: np.ndarray  # per route: first global topic id
    topic_count: np.ndarray  # per route
    topic_names: list[str]  # per global topic
    topic_kb: np.ndarray  # per global topic: KB index (-1 for non-KB topics)
    questions: list[str]  # [gtopic * 4 + lang]
    answers: list[str]  # [(gtopic * 4 + lang) * 2 + wrong]
    answer_len: np.ndarray
    openers: list[str]  # [(route * 4 + opener) * 4 + lang]
    opener_count: np.ndarray  # per route
    contexts: list[str]  # [(lang * 4 + k) * 6 + start]
    fillers: list[str]  # [(lang * (MAX+1) + m) * VARIANTS + variant]
    filler_mean: np.ndarray  # per language: mean characters per filler sentence (with space)
    refusals: list[str]  # [refusal * 4 + lang]
    acks: list[str]  # [(route * 2 + ack) * 4 + lang]
    ack_len: np.ndarray
    docs: list[str]  # KB documents (English), [kb]
    doc_ids: list[str]
    systems: list[str]  # [route * 2 + regression]
    system_len: np.ndarray


_POOLS: Pools | None = None


def pools() -> Pools:
    global _POOLS
    if _POOLS is not None:
        return _POOLS
    nl = len(LANGUAGES)
    offsets: list[int] = []
    counts: list[int] = []
    names: list[str] = []
    kb_index: list[int] = []
    questions: list[str] = []
    answers: list[str] = []
    for r in ROUTES:
        topics = ROUTE_SPECS[r].topics
        offsets.append(len(names))
        counts.append(len(topics))
        for t in topics:
            names.append(t.name)
            kb_index.append(KB_TOPICS.index(t) if t in KB_TOPICS else -1)
            for lang in range(nl):
                questions.append(t.question[lang])
                answers.append(t.answer[lang].format(v=t.value))
                answers.append(t.answer[lang].format(v=t.wrong))
    openers: list[str] = []
    opener_count = []
    for r in ROUTES:
        fam = OPENERS[ROUTE_SPECS[r].opener]
        opener_count.append(len(fam))
        for k in range(4):
            for lang in range(nl):
                openers.append(fam[k % len(fam)][lang])
    contexts = [
        "".join(" " + CONTEXT[(s + j) % len(CONTEXT)][lang] for j in range(k))
        for lang in range(nl)
        for k in range(4)
        for s in range(len(CONTEXT))
    ]
    # A fixed (seed-independent) arrangement of filler sentences per variant, so that the
    # pool is the same in every run and every language uses the same sentence order.
    # Each variant walks a permutation of the sentences, so an answer repeats none.
    perm = np.random.default_rng(20261122)
    order = np.stack([perm.permutation(len(FILLERS)) for _ in range(FILLER_VARIANTS)])
    fillers = [
        "".join(" " + FILLERS[order[v, j % len(FILLERS)]][lang] for j in range(m))
        for lang in range(nl)
        for m in range(MAX_FILLERS + 1)
        for v in range(FILLER_VARIANTS)
    ]
    filler_mean = np.array([np.mean([len(f[lang]) + 1 for f in FILLERS]) for lang in range(nl)])
    refusals = [r[lang] for r in REFUSALS for lang in range(nl)]
    acks = []
    for r in ROUTES:
        fam = ACKS.get(r, (("", "", "", ""),))
        for k in range(2):
            for lang in range(nl):
                acks.append(fam[k % len(fam)][lang])
    docs = [
        f"{t.name.replace('_', ' ').capitalize()}: {t.answer[0].format(v=t.value)}"
        for t in KB_TOPICS
    ]
    doc_ids = [f"doc-{101 + i}" for i in range(len(KB_TOPICS))]
    systems = [s for r in ROUTES for s in (SYSTEM_PROMPTS[r], REGRESSION_SYSTEM)]
    _POOLS = Pools(
        topic_offset=np.array(offsets),
        topic_count=np.array(counts),
        topic_names=names,
        topic_kb=np.array(kb_index),
        questions=questions,
        answers=answers,
        answer_len=np.array([len(a) for a in answers]),
        openers=openers,
        opener_count=np.array(opener_count),
        contexts=contexts,
        fillers=fillers,
        filler_mean=filler_mean,
        refusals=refusals,
        acks=acks,
        ack_len=np.array([len(a) for a in acks]),
        docs=docs,
        doc_ids=doc_ids,
        systems=systems,
        system_len=np.array([len(s) for s in systems]),
    )
    return _POOLS
