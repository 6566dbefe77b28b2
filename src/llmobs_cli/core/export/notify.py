"""One message to a webhook when a gate, a regression or a drift fires.

The message is built from the command's JSON document (the contract's keys: ``alerts``
of ``report``, ``regressions`` of ``eval``, ``features``/``drifted`` of ``drift``), so it
says exactly what ``--format json`` says: the verdict, the top findings (by p-value or by
how far past its threshold), and the exemplar trace ids a finding carries. It never holds
prompt or response text: only names, numbers and ids (``include_text`` adds the excerpts
a finding carries, for teams whose channel may see them).

Two bodies: Slack-compatible incoming-webhook JSON (``text`` plus ``blocks``; Mattermost,
Rocket.Chat, Discord's ``/slack`` endpoint and most chat tools accept it) and a generic JSON
document for anything else. Sending is retried briefly and never raises: a notification
that cannot be delivered is a warning for the caller, never a change of the run's exit code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from llmobs_cli.core.export import http

NotifyFormat = Literal["slack", "json"]
#: At most this many findings in one message (the rest are counted).
TOP = 5
#: A short, firm policy: a chat message must not hold the run up.
POLICY = http.RetryPolicy(attempts=3, base=0.5, cap=4.0, budget=10.0, timeout=5.0)


@dataclass
class Finding:
    """One thing that fired, in words and numbers."""

    what: str
    detail: str
    exemplars: list[str] = field(default_factory=list)
    excerpt: str | None = None


@dataclass
class Notification:
    command: str
    title: str
    verdict: str
    findings: list[Finding]
    total: int
    source: str | None = None

    def text(self) -> str:
        lines = [self.title]
        for f in self.findings:
            line = f"• {f.what}: {f.detail}"
            if f.exemplars:
                line += f" (e.g. {', '.join(f.exemplars[:3])})"
            lines.append(line)
        if self.total > len(self.findings):
            lines.append(f"… and {self.total - len(self.findings)} more")
        return "\n".join(lines)


def _key(key: Any) -> str:
    if isinstance(key, Mapping) and key:
        return ", ".join(f"{k}={v}" for k, v in key.items())
    return "overall"


def _num(v: Any, digits: int = 3) -> str:
    if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)):
        return f"{v:.{digits}g}"
    return "n/a"


def _ids(item: Mapping[str, Any]) -> list[str]:
    ex = item.get("exemplars") or []
    out = []
    for e in ex:
        if isinstance(e, Mapping) and e.get("trace_id"):
            out.append(str(e["trace_id"]))
        elif isinstance(e, str):
            out.append(e)
    return out


def _excerpt(item: Mapping[str, Any]) -> str | None:
    for e in item.get("exemplars") or []:
        if isinstance(e, Mapping):
            for k in ("response", "prompt", "excerpt"):
                if isinstance(e.get(k), str) and e[k].strip():
                    return str(e[k])[:200]
    return None


def from_drift(doc: Mapping[str, Any], source: str | None = None) -> Notification | None:
    """The message for a drift run, or None when nothing drifted."""
    fired = [f for f in doc.get("features") or [] if f.get("drifted")]
    if not fired:
        return None
    fired.sort(key=lambda f: (f.get("p_value") is None, f.get("p_value") or 0.0))
    findings = [
        Finding(
            what=f"{f.get('feature')} ({_key(f.get('group'))})",
            detail=(
                f"{f.get('test')} statistic {_num(f.get('statistic'))}, "
                f"effect {_num(f.get('effect_size'))}, p {_num(f.get('p_value'), 2)}"
                + (f" — {f['summary']}" if isinstance(f.get("summary"), str) else "")
            ),
            exemplars=_ids(f),
            excerpt=_excerpt(f),
        )
        for f in fired[:TOP]
    ]
    names = sorted({str(f.get("feature")) for f in fired})
    return Notification(
        "drift",
        f"llmobs drift: {len(fired)} drifted ({', '.join(names[:6])})",
        "drift",
        findings,
        len(fired),
        source,
    )


def from_eval(doc: Mapping[str, Any], source: str | None = None) -> Notification | None:
    """The message for an eval run, or None when no regression fired."""
    regs = list(doc.get("regressions") or [])
    if not regs:
        return None
    regs.sort(key=lambda r: (r.get("delta") is None, r.get("delta") or 0.0))
    findings = [
        Finding(
            what=f"{r.get('evaluator')} ({_key(r.get('key'))})",
            detail=(
                f"{_num(r.get('baseline'))} → {_num(r.get('current'))} "
                f"(Δ {_num(r.get('delta'), 2)}, q {_num(r.get('q_value'), 2)})"
            ),
            exemplars=_ids(r),
            excerpt=_excerpt(r),
        )
        for r in regs[:TOP]
    ]
    return Notification(
        "eval",
        f"llmobs eval: {len(regs)} quality regression(s)",
        "regression",
        findings,
        len(regs),
        source,
    )


def from_report(doc: Mapping[str, Any], source: str | None = None) -> Notification | None:
    """The message for a report whose gates fired, or None when none did."""
    alerts = list(doc.get("alerts") or [])
    if not alerts:
        return None
    findings = [
        Finding(
            what=f"{a.get('name') or a.get('rule')} ({_key(a.get('key'))})",
            detail=f"{a.get('metric')} = {_num(a.get('value'), 4)} {a.get('op')} "
            f"{_num(a.get('threshold'), 4)}",
            exemplars=_ids(a),
            excerpt=_excerpt(a),
        )
        for a in alerts[:TOP]
    ]
    return Notification(
        "report",
        f"llmobs report: {len(alerts)} alert(s) fired",
        "alert",
        findings,
        len(alerts),
        source,
    )


BUILDERS: dict[str, Callable[[Mapping[str, Any], str | None], Notification | None]] = {
    "drift": from_drift,
    "eval": from_eval,
    "report": from_report,
}


def body(
    note: Notification, fmt: NotifyFormat = "slack", include_text: bool = False
) -> dict[str, Any]:
    """The request body in the chosen format."""
    if fmt == "json":
        return {
            "source": "llmobs",
            "command": note.command,
            "verdict": note.verdict,
            "title": note.title,
            "input": note.source,
            "total": note.total,
            "findings": [
                {
                    "what": f.what,
                    "detail": f.detail,
                    "exemplars": f.exemplars,
                    **({"excerpt": f.excerpt} if include_text and f.excerpt else {}),
                }
                for f in note.findings
            ],
            "sent_at": datetime.now(UTC).isoformat(),
        }
    bullets = []
    for f in note.findings:
        line = f"• *{_md(f.what)}*: {_md(f.detail)}"
        if f.exemplars:
            line += "\n    e.g. " + ", ".join(f"`llmobs show {t}`" for t in f.exemplars[:3])
        if include_text and f.excerpt:
            line += f"\n    > {_md(f.excerpt)}"
        bullets.append(line)
    if note.total > len(note.findings):
        bullets.append(f"… and {note.total - len(note.findings)} more")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": note.title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(bullets)[:2900]}},
    ]
    if note.source:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": _md(note.source)}]}
        )
    return {"text": note.text()[:3000], "blocks": blocks}


def _md(text: str) -> str:
    # Slack's mrkdwn treats these three as control characters.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass
class Delivery:
    ok: bool
    error: str | None = None


def send(
    url: str,
    note: Notification,
    *,
    fmt: NotifyFormat = "slack",
    include_text: bool = False,
    policy: http.RetryPolicy = POLICY,
    client: Any = None,
) -> Delivery:
    """POST the message; never raises (a failure comes back as ``Delivery(ok=False)``)."""
    try:
        payload = json.dumps(body(note, fmt, include_text), ensure_ascii=False).encode()
        out = http.post(
            url,
            payload,
            headers={"Content-Type": "application/json"},
            policy=policy,
            client=client,
        )
    except Exception as exc:  # a notification must never break the run it reports on
        return Delivery(False, f"{http.redact_url(url)}: {type(exc).__name__}")
    return Delivery(out.ok, None if out.ok else out.error)


def notify(
    command: str,
    doc: Mapping[str, Any],
    url: str,
    *,
    fmt: NotifyFormat = "slack",
    include_text: bool = False,
    source: str | Sequence[str] | None = None,
    policy: http.RetryPolicy = POLICY,
) -> Delivery | None:
    """Build and send the message for ``command``'s JSON document; None when nothing fired."""
    src = ", ".join(source) if isinstance(source, list | tuple) else source
    note = BUILDERS[command](doc, src if isinstance(src, str) else None)
    if note is None:
        return None
    return send(url, note, fmt=fmt, include_text=include_text, policy=policy)
