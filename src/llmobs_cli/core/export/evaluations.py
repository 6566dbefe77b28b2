"""Saved judgments as evaluation events: one event per judgment, nothing else.

The event follows the OpenTelemetry GenAI ``gen_ai.evaluation.result`` convention: the
evaluation's name (the criterion, e.g. ``relevance``), its score (llmobs' normalised 0–1
score), a low-cardinality label (``pass``/``fail`` at ``pass_threshold``, or ``error``
when the judge failed), the judge's explanation, and the ids of the judged call so that a
backend can attach the event to that call's span. llmobs' own facts travel as
``llmobs.*`` attributes: the row's sample weight, eval rate, prompt version and hash, the
judge model and the raw score on the criterion's own scale.

Each event has a stable ``event_id`` (a UUID derived from the judged call, the evaluator,
the criterion and the prompt hash) that receivers which deduplicate (Langfuse, LangSmith)
use as the record id, so that sending the same judgments twice never doubles them.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

#: The OpenTelemetry event name for an evaluation result.
EVENT_NAME = "gen_ai.evaluation.result"
#: Namespace of the stable event ids (a fixed, arbitrary UUID: changing it re-keys everything).
_ID_NAMESPACE = uuid.UUID("5b0c6a0e-6f1f-4f57-9a43-7d2c1f1d6e21")
#: Columns an evals file must have to be exported.
REQUIRED = ("trace_id", "evaluator", "score", "timestamp")


@dataclass(frozen=True)
class EvaluationEvent:
    """One judgment, ready for any exporter."""

    event_id: str
    name: str
    trace_id: str
    span_id: str | None
    timestamp: datetime
    score: float | None
    label: str
    explanation: str | None
    error: str | None
    response_id: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    #: The system the judged call was read from (``langfuse``, ``langsmith``) or None
    #: (core/record/origin); not an OTLP attribute, it decides where scores may go.
    origin: str | None = None

    def otel_attributes(self) -> dict[str, Any]:
        """The event's attributes under their OpenTelemetry names (``None``s left out)."""
        attrs: dict[str, Any] = {"gen_ai.evaluation.name": self.name}
        if self.score is not None:
            attrs["gen_ai.evaluation.score.value"] = self.score
        attrs["gen_ai.evaluation.score.label"] = self.label
        if self.explanation:
            attrs["gen_ai.evaluation.explanation"] = self.explanation
        if self.response_id:
            attrs["gen_ai.response.id"] = self.response_id
        if self.error:
            attrs["error.type"] = "llmobs.judge_error"
        for key, value in self.attributes.items():
            if value is not None:
                attrs[key] = value
        return attrs


def evaluation_name(evaluator: str, criterion: str | None) -> str:
    """The criterion for judge evaluators (``relevance``), else the evaluator itself."""
    return criterion or evaluator


def _finite(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _text(v: Any) -> str | None:
    return v if isinstance(v, str) and v.strip() else None


def event_id(trace_id: str, span_id: str | None, name: str, evaluator: str, h: str | None) -> str:
    """A UUID that is the same for the same judgment on every run."""
    key = "\x1f".join([trace_id, span_id or "", evaluator, name, h or ""])
    return str(uuid.uuid5(_ID_NAMESPACE, key))


def iter_events(frame: pl.DataFrame, *, pass_threshold: float = 0.5) -> Iterator[EvaluationEvent]:
    """Yield one event per judgment row of an llmobs evals frame (``eval -o`` output).

    Rows without a score are judge errors: they keep their name and ids, get the label
    ``error`` and carry the error text as the explanation, so a backend sees that the
    call was selected and could not be judged.
    """
    cols = set(frame.columns)
    want = [
        c
        for c in (
            "trace_id",
            "span_id",
            "timestamp",
            "evaluator",
            "criterion",
            "score",
            "raw_score",
            "explanation",
            "error",
            "weight",
            "sample_rate",
            "eval_rate",
            "prompt_version",
            "prompt_hash",
            "judge_model",
            "route",
            "model",
            "response_id",
            "origin",
        )
        if c in cols
    ]
    for row in frame.select(want).iter_rows(named=True):
        trace_id = str(row["trace_id"])
        span_id = row.get("span_id") or None
        evaluator = str(row["evaluator"])
        name = evaluation_name(evaluator, row.get("criterion"))
        score = _finite(row.get("score"))
        error = _text(row.get("error"))
        label = "error" if score is None else ("pass" if score >= pass_threshold else "fail")
        ts = row.get("timestamp")
        if not isinstance(ts, datetime):
            ts = datetime.now(UTC)
        elif ts.tzinfo is None:
            ts = ts.replace(tzinfo=UTC)
        yield EvaluationEvent(
            event_id=event_id(trace_id, span_id, name, evaluator, row.get("prompt_hash")),
            name=name,
            trace_id=trace_id,
            span_id=span_id,
            timestamp=ts,
            score=score,
            label=label,
            explanation=_text(row.get("explanation")) or error,
            error=error,
            response_id=_text(row.get("response_id")),
            origin=_text(row.get("origin")),
            attributes={
                "llmobs.evaluator": evaluator,
                "llmobs.raw_score": _finite(row.get("raw_score")),
                "llmobs.sample_weight": _finite(row.get("weight")),
                "llmobs.sample_rate": _finite(row.get("sample_rate")),
                "llmobs.eval_rate": _finite(row.get("eval_rate")),
                "llmobs.prompt_version": _text(row.get("prompt_version")),
                "llmobs.prompt_hash": _text(row.get("prompt_hash")),
                "llmobs.judge_model": _text(row.get("judge_model")),
                "llmobs.route": _text(row.get("route")),
                "gen_ai.request.model": _text(row.get("model")),
            },
        )
