"""Judgments as LangSmith feedback on the judged runs.

A LangSmith run is one call; its id is a UUID, which the LangSmith reader keeps as the
call's ``span_id``. Each judgment becomes one feedback record (``run_id``, ``key`` = the
criterion, ``score``, ``comment`` = the judge's explanation) whose ``id`` is the
judgment's stable event id, so a rerun is answered "already exists" (HTTP 409), which
counts as delivered, instead of adding a copy. Judgments whose call id is not a UUID (the
trace did not come from LangSmith) and judge errors are skipped and counted.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from llmobs_cli.core.export import http
from llmobs_cli.core.export.evaluations import EvaluationEvent

FEEDBACK_PATH = "/feedback"


def run_id(event: EvaluationEvent) -> str | None:
    """The LangSmith run id of the judged call (its span id, else its trace id)."""
    for candidate in (event.span_id, event.trace_id):
        if not candidate:
            continue
        try:
            return str(uuid.UUID(candidate))
        except ValueError:
            continue
    return None


def feedback_body(event: EvaluationEvent) -> dict[str, Any] | None:
    """The feedback record of one judgment, or None when it cannot be attached."""
    rid = run_id(event)
    if rid is None or event.score is None:
        return None
    meta = {k.removeprefix("llmobs."): v for k, v in event.attributes.items() if v is not None}
    meta["label"] = event.label
    body: dict[str, Any] = {
        "id": event.event_id,
        "run_id": rid,
        "key": event.name,
        "score": event.score,
        "feedback_source": {"type": "api", "metadata": {"source": "llmobs", **meta}},
    }
    if event.explanation:
        body["comment"] = event.explanation
    return body


def send(
    events: Iterable[EvaluationEvent],
    endpoint: str,
    api_key: str,
    *,
    policy: http.RetryPolicy = http.RetryPolicy(),
    on_progress: Callable[[str], None] | None = None,
    client: Any = None,
) -> http.ScoresSent:
    """POST one feedback record per judgment (409 "already exists" counts as sent)."""
    result = http.ScoresSent()
    url = endpoint.rstrip("/") + FEEDBACK_PATH
    headers = {"x-api-key": api_key, "Content-Type": "application/json"}
    for event in events:
        body = feedback_body(event)
        if body is None:
            result.skipped += 1
            continue
        out = http.post(
            url,
            json.dumps(body).encode(),
            headers=headers,
            policy=policy,
            ok_statuses=frozenset({409}),
            client=client,
        )
        result.requests += 1
        if out.ok:
            result.sent += 1
            if on_progress is not None and result.sent % 50 == 0:
                on_progress(f"sent {result.sent} feedback record(s) to LangSmith")
        else:
            result.failed += 1
            if len(result.errors) < 3:
                result.errors.append(out.error or "failed")
    return result
