"""What the judge needs to know about a model: its price and the parameters it refuses.

Both come from the price table (:mod:`core.report.pricing`, ``configs/prices.yaml`` plus
any override): ``input``/``output`` per million tokens, and ``rejects_params`` — the
request parameters a model refuses, such as ``temperature``/``top_p`` for OpenAI's
o-series and gpt-5 reasoning models. A model name that says it thinks (``…-thinking``,
OpenRouter's ``:thinking`` variants: Claude with extended thinking) refuses them too,
whatever the table says. A model the table does not know is *unpriced*: its calls cost
``$0`` in the totals and the run says so, never a silent zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llmobs_cli.core.report.pricing import PriceTable

_THINKING = re.compile(r"thinking", re.IGNORECASE)
SAMPLING = frozenset({"temperature", "top_p"})


@dataclass(frozen=True)
class ModelInfo:
    model: str
    input_per_million: float | None = None
    output_per_million: float | None = None
    rejects: frozenset[str] = frozenset()

    @property
    def priced(self) -> bool:
        return self.input_per_million is not None and self.output_per_million is not None

    @property
    def fixed_temperature(self) -> bool:
        """The model samples at its own default temperature (it refuses ``temperature``)."""
        return "temperature" in self.rejects


class ModelCatalog:
    """Look-ups of :class:`ModelInfo` by model name (cached per name)."""

    def __init__(self, table: PriceTable | None) -> None:
        self.table = table
        self._seen: dict[str, ModelInfo] = {}

    @classmethod
    def shipped(cls) -> ModelCatalog:
        """The catalog of the price table shipped with llmobs."""
        return cls(_shipped_table())

    def info(self, model: str) -> ModelInfo:
        hit = self._seen.get(model)
        if hit is not None:
            return hit
        rejects: set[str] = set(SAMPLING) if _THINKING.search(model) else set()
        pin = pout = None
        entries = self.table.resolve(model, None) if self.table is not None else []
        if entries:
            latest = entries[-1]  # the price in force now (periods are sorted by date)
            pin, pout = latest.input, latest.output
            rejects |= set(latest.rejects_params)
        info = ModelInfo(model, pin, pout, frozenset(rejects))
        self._seen[model] = info
        return info


@lru_cache(maxsize=1)
def _shipped_table() -> PriceTable:
    from llmobs_cli.core.report.pricing import build_price_table

    return build_price_table()


__all__ = ["SAMPLING", "ModelCatalog", "ModelInfo"]
