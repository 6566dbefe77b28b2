"""Judgments as Langfuse scores, sent in batches to Langfuse's public ingestion API.

Each judgment becomes one ``score-create`` event whose score ``id`` is the judgment's
stable :attr:`~.evaluations.EvaluationEvent.event_id`: Langfuse upserts scores by id, so a
rerun (or a retried batch) updates the same scores instead of adding copies. The score is
attached to the judged trace (``traceId``) and, when the call is a span of its own (its
``span_id`` differs from its ``trace_id``), to that observation (``observationId``).

Langfuse ids are kept as they are on read (see ``docs/formats.md``), so only judgments
made on traces read from Langfuse can be attached: :func:`langfuse_ids` says which ids
those are when the caller can tell. Judge errors have no value and are not sent.
Langfuse records the source of API-created scores itself; llmobs' facts (weight, eval
rate, prompt version, judge model, raw score) go into the score's ``metadata``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from llmobs_cli.core.export import http
from llmobs_cli.core.export.evaluations import EvaluationEvent

INGESTION_PATH = "/api/public/ingestion"
#: Events per request (Langfuse caps a batch's size; judgments with long explanations
#: stay well under it at this count).
BATCH = 100


def score_body(event: EvaluationEvent) -> dict[str, Any]:
    """The ``score-create`` body of one judgment."""
    body: dict[str, Any] = {
        "id": event.event_id,
        "traceId": event.trace_id,
        "name": event.name,
        "value": event.score,
        "dataType": "NUMERIC",
    }
    if event.span_id and event.span_id != event.trace_id:
        body["observationId"] = event.span_id
    if event.explanation:
        body["comment"] = event.explanation
    meta = {k.removeprefix("llmobs."): v for k, v in event.attributes.items() if v is not None}
    meta["label"] = event.label
    meta["source"] = "llmobs"
    body["metadata"] = meta
    return body


def batches(events: Iterable[EvaluationEvent], size: int = BATCH) -> Iterator[dict[str, Any]]:
    """Ingestion request bodies; judge errors (no score) are left out."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    chunk: list[dict[str, Any]] = []
    for event in events:
        if event.score is None:
            continue
        chunk.append(
            {
                # The event id is derived from the score id, so a resent batch is the
                # same batch to Langfuse's deduplication as well.
                "id": f"{event.event_id}-score-create",
                "timestamp": now,
                "type": "score-create",
                "body": score_body(event),
            }
        )
        if len(chunk) >= size:
            yield {"batch": chunk}
            chunk = []
    if chunk:
        yield {"batch": chunk}


def auth_header(public_key: str, secret_key: str) -> str:
    token = base64.b64encode(f"{public_key}:{secret_key}".encode()).decode()
    return f"Basic {token}"


def send(
    events: Iterable[EvaluationEvent],
    host: str,
    public_key: str,
    secret_key: str,
    *,
    policy: http.RetryPolicy = http.RetryPolicy(),
    on_progress: Callable[[str], None] | None = None,
    client: Any = None,
) -> http.ScoresSent:
    """Send the scores; a batch that fails after retries is counted and the next tried.

    Langfuse answers 207 with per-event ``successes`` and ``errors``: those errors are
    counted as failed (with the server's message) rather than as sent.
    """
    result = http.ScoresSent()
    url = host.rstrip("/") + INGESTION_PATH
    headers = {
        "Authorization": auth_header(public_key, secret_key),
        "Content-Type": "application/json",
    }
    events = list(events)
    result.skipped = sum(1 for e in events if e.score is None)
    for body in batches(events):
        n = len(body["batch"])
        out = http.post(
            url, json.dumps(body).encode(), headers=headers, policy=policy, client=client
        )
        result.requests += 1
        if not out.ok:
            result.failed += n
            result.errors.append(out.error or "failed")
            continue
        errors = _errors(out.body)
        result.failed += len(errors)
        result.errors.extend(errors[:3])
        result.sent += n - len(errors)
        if on_progress is not None:
            on_progress(f"sent {result.sent} score(s) to Langfuse")
    return result


def _errors(body: bytes) -> list[str]:
    try:
        doc = json.loads(body or b"{}")
    except ValueError:
        return []
    out = []
    for err in doc.get("errors") or []:
        if isinstance(err, dict):
            out.append(f"{err.get('id')}: {err.get('status')} {err.get('message') or ''}".strip())
    return out
