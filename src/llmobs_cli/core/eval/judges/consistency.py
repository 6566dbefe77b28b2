"""Self-consistency: agreement among N answers re-sampled for the same logged input.

The logged input (system message + conversation, or the prompt) is sent N times at a
temperature above 0 (one call per sample index, each cached on its own), and the
agreement score is the mean pairwise similarity of the N answers — rapidfuzz
``token_set_ratio`` / 100, so paraphrases agree and contradictions (different numbers,
names, yes/no) do not. A score below ``1 - disagreement_threshold`` flags the row: the
model is unsure about this input, so its logged answer deserves a human look.
"""

from __future__ import annotations

from itertools import combinations


def agreement(answers: list[str]) -> float | None:
    """Mean pairwise similarity in [0, 1]; None with fewer than two answers."""
    from rapidfuzz import fuzz

    texts = [a for a in answers if a is not None]
    if len(texts) < 2:
        return None
    sims = [fuzz.token_set_ratio(a, b) / 100.0 for a, b in combinations(texts, 2)]
    return sum(sims) / len(sims)


def input_messages(
    system: str | None, messages: list[dict[str, str]] | None, prompt: str | None
) -> list[dict[str, str]] | None:
    """The logged input as chat messages (None when the record has no input text)."""
    out: list[dict[str, str]] = []
    if messages:
        out = [
            {"role": m.get("role") or "user", "content": m.get("content") or ""}
            for m in messages
            if m.get("role") != "assistant" or m is not messages[-1]
        ]
        if system and not any(m["role"] == "system" for m in out):
            out.insert(0, {"role": "system", "content": system})
        return out or None
    if prompt:
        if system:
            out.append({"role": "system", "content": system})
        out.append({"role": "user", "content": prompt})
        return out
    return None
