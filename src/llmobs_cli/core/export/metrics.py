"""Report, eval and drift summaries as OTLP gauges, for dashboards that already exist.

:func:`detect` tells which command printed a JSON document (``llmobs report``, ``eval`` or
``eval summarize``, ``drift`` with ``--format json``, or their ``-o FILE.json``);
:func:`points` turns it into gauge data points, one per figure, without recomputing
anything: every value is the document's own number. Names live under ``llmobs.``
(``docs/export.md`` lists them with their units); group keys become attributes, under
OpenTelemetry names where one exists (``model`` → ``gen_ai.request.model``, ``provider``
→ ``gen_ai.provider.name``, ``environment`` → ``deployment.environment.name``) and
``llmobs.<field>`` otherwise. ``llmobs.scope`` says whether a point is over all calls
(``overall``), one group (``group``) or one drift slice (``slice``), so that a dashboard
summing a metric over its series never adds the overall figure to its own parts.

The time of a point is the end of the window it describes (a report bucket's end for
``--bucket`` series), its start time the window's start. Encoding goes through
``opentelemetry-proto`` (one ``ExportMetricsServiceRequest`` per batch); sending reuses
the retrying sender of :mod:`.http`, so headers, gzip, ``Retry-After`` and the secret
handling are the logs exporter's.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from llmobs_cli.core.export import http
from llmobs_cli.core.export.otlp import SendResult, post_batches
from llmobs_cli.errors import InputError, UsageError

Kind = Literal["report", "eval", "drift"]
#: Data points per request: far below any collector's default request size limit.
BATCH = 2000

#: Every metric llmobs emits: name → (unit, description). Units follow UCUM as OTLP asks
#: ("1" for ratios, "{call}" style annotations for counts); money is in US dollars.
METRICS: dict[str, tuple[str, str]] = {
    # report
    "llmobs.calls": ("{call}", "Estimated LLM calls in the window (weighted by 1/sample_rate)"),
    "llmobs.sampled": ("{call}", "Calls read from the dump (rows seen)"),
    "llmobs.n_eff": ("{call}", "Kish effective sample size of the weighted calls"),
    "llmobs.latency_ms": ("ms", "Weighted latency quantile (attribute quantile)"),
    "llmobs.latency_ms.mean": ("ms", "Weighted mean latency"),
    "llmobs.ttft_ms": ("ms", "Weighted time-to-first-token quantile (attribute quantile)"),
    "llmobs.ttft_ms.mean": ("ms", "Weighted mean time to first token"),
    "llmobs.tokens": ("{token}", "Estimated tokens (attribute gen_ai.token.type)"),
    "llmobs.tokens.cached": ("{token}", "Estimated input tokens served from a prompt cache"),
    "llmobs.cost_usd": ("USD", "Estimated cost of the calls"),
    "llmobs.cost_per_call_usd": ("USD", "Estimated cost per call"),
    "llmobs.error_rate": ("1", "Share of calls with status error"),
    "llmobs.refusal_rate": ("1", "Share of ok calls that refused"),
    "llmobs.cache_hit_rate": ("1", "Cached share of input tokens"),
    # eval
    "llmobs.eval.score": ("1", "Weighted judge score, 0-1"),
    "llmobs.eval.score.ci_low": ("1", "Lower bound of the score's 95% interval"),
    "llmobs.eval.score.ci_high": ("1", "Upper bound of the score's 95% interval"),
    "llmobs.eval.score.corrected": ("1", "Score corrected with human labels"),
    "llmobs.eval.score.corrected.ci_low": ("1", "Lower bound of the corrected score's interval"),
    "llmobs.eval.score.corrected.ci_high": ("1", "Upper bound of the corrected score's interval"),
    "llmobs.eval.n": ("{judgment}", "Judgments behind the score"),
    "llmobs.eval.n_eff": ("{judgment}", "Kish effective sample size of the judgments"),
    "llmobs.eval.calls": ("{call}", "Estimated calls the score stands for"),
    "llmobs.eval.judge_error_rate": ("1", "Share of selected calls the judge could not score"),
    "llmobs.eval.delta": ("1", "Score change against the baseline (current - baseline)"),
    "llmobs.eval.q_value": ("1", "Benjamini-Hochberg adjusted p-value of the regression test"),
    "llmobs.eval.regression": ("1", "1 when the regression test fired, else 0"),
    "llmobs.judge.calls": ("{request}", "Judge requests made by the run"),
    "llmobs.judge.failed": ("{judgment}", "Judgments that failed"),
    "llmobs.judge.cost_usd": ("USD", "Judge cost of the run"),
    # drift
    "llmobs.drift.effect_size": ("1", "Effect size of the drift test (see llmobs.drift.effect)"),
    "llmobs.drift.p_value": ("1", "p-value of the drift test"),
    "llmobs.drift.p_adjusted": ("1", "Benjamini-Hochberg adjusted p-value of the drift test"),
    "llmobs.drift.drifted": ("1", "1 when the feature drifted, else 0"),
    "llmobs.drift.features_drifted": ("{feature}", "Features that drifted over all calls"),
}

#: Group-key fields with an OpenTelemetry attribute of their own.
_KEY_NAMES = {
    "model": "gen_ai.request.model",
    "provider": "gen_ai.provider.name",
    "environment": "deployment.environment.name",
}
_QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))


@dataclass(frozen=True)
class Point:
    """One gauge data point."""

    name: str
    value: int | float
    attributes: tuple[tuple[str, Any], ...]
    time_ns: int
    start_ns: int | None = None


def _proto() -> Any:
    try:
        from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
        from opentelemetry.proto.common.v1 import common_pb2
        from opentelemetry.proto.metrics.v1 import metrics_pb2
        from opentelemetry.proto.resource.v1 import resource_pb2
    except ImportError as exc:  # an optional extra, not a hard dependency
        raise UsageError(
            'OTLP export needs the OpenTelemetry protocol package: pip install "llmobs[otlp]"'
        ) from exc
    return metrics_service_pb2, common_pb2, metrics_pb2, resource_pb2


# --- which document -----------------------------------------------------------------------


def detect(doc: Any, source: str = "summary") -> Kind:
    """Which command wrote ``doc``; exit 2 naming ``source`` when it is none of them."""
    if isinstance(doc, dict):
        if isinstance(doc.get("features"), list) and isinstance(doc.get("current"), dict):
            return "drift"
        if isinstance(doc.get("groups"), list) and ("judge" in doc or "windows" in doc):
            return "eval"
        if isinstance(doc.get("overall"), dict) and isinstance(doc.get("window"), dict):
            return "report"
    raise InputError(
        [
            f"{source}: not the JSON of llmobs report, eval or drift (expected their "
            "--format json output: window/overall, groups/judge or features/current keys)"
        ]
    )


# --- points -------------------------------------------------------------------------------


def _ns(text: Any) -> int | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000_000 + dt.microsecond * 1000


def _number(value: Any) -> int | float | None:
    """A gauge value: bools as 0/1, ints kept, finite floats; anything else is no point."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return None


def key_attributes(key: Mapping[str, Any] | None) -> dict[str, Any]:
    """A group key as attributes (OpenTelemetry names where they exist)."""
    out: dict[str, Any] = {}
    for name, value in (key or {}).items():
        attr = _KEY_NAMES.get(name) or f"llmobs.{name}"
        out[attr] = "(none)" if value is None else value if isinstance(value, str) else str(value)
    return out


@dataclass
class _Builder:
    """Collects points, dropping non-numbers and (defensively) exact repeats."""

    time_ns: int
    start_ns: int | None
    points: list[Point] = field(default_factory=list)
    _seen: set[tuple[Any, ...]] = field(default_factory=set)

    def add(
        self,
        name: str,
        value: Any,
        attrs: Mapping[str, Any],
        *,
        time_ns: int | None = None,
        start_ns: int | None = None,
    ) -> None:
        number = _number(value)
        if number is None:
            return
        assert name in METRICS, name
        t = time_ns if time_ns is not None else self.time_ns
        items = tuple(sorted(attrs.items()))
        ident = (name, items, t)
        if ident in self._seen:
            return
        self._seen.add(ident)
        start = start_ns if time_ns is not None else self.start_ns
        self.points.append(Point(name, number, items, t, start))


def points(
    doc: Mapping[str, Any], kind: Kind | None = None, *, now_ns: int | None = None
) -> list[Point]:
    """The gauge points of a report, eval or drift JSON document (``kind`` detected when
    not given). A window without an end (an empty summary) is stamped ``now_ns``."""
    kind = kind or detect(doc)
    now = now_ns if now_ns is not None else time.time_ns()
    if kind == "report":
        return _report(doc, now)
    if kind == "eval":
        return _eval(doc, now)
    return _drift(doc, now)


def _usage(b: _Builder, m: Mapping[str, Any], attrs: dict[str, Any], **at: Any) -> None:
    """The figures of one report metrics object ``m`` (overall, a group or a bucket)."""
    for key, name in (
        ("calls", "llmobs.calls"),
        ("sampled", "llmobs.sampled"),
        ("n_eff", "llmobs.n_eff"),
        ("cached_tokens", "llmobs.tokens.cached"),
        ("cost_usd", "llmobs.cost_usd"),
        ("cost_per_call_usd", "llmobs.cost_per_call_usd"),
        ("error_rate", "llmobs.error_rate"),
        ("refusal_rate", "llmobs.refusal_rate"),
        ("cache_hit_rate", "llmobs.cache_hit_rate"),
    ):
        b.add(name, m.get(key), attrs, **at)
    for key, kind in (("input_tokens", "input"), ("output_tokens", "output")):
        b.add("llmobs.tokens", m.get(key), {**attrs, "gen_ai.token.type": kind}, **at)
    for key in ("latency_ms", "ttft_ms"):
        dist = m.get(key)
        if not isinstance(dist, dict):
            continue
        for q, level in _QUANTILES:
            b.add(f"llmobs.{key}", dist.get(q), {**attrs, "quantile": level}, **at)
        b.add(f"llmobs.{key}.mean", dist.get("mean"), attrs, **at)


def _report(doc: Mapping[str, Any], now: int) -> list[Point]:
    window = doc.get("window") or {}
    b = _Builder(_ns(window.get("end")) or now, _ns(window.get("start")))
    _usage(b, doc.get("overall") or {}, {"llmobs.scope": "overall"})
    for g in doc.get("groups") or []:
        _usage(b, g, {"llmobs.scope": "group", **key_attributes(g.get("key"))})
    bucket = doc.get("bucket")
    for bk in doc.get("buckets") or []:
        at = {"time_ns": _ns(bk.get("end")) or b.time_ns, "start_ns": _ns(bk.get("start"))}
        tag = {"llmobs.bucket": str(bucket or "bucket")}
        _usage(b, bk.get("overall") or {}, {"llmobs.scope": "overall", **tag}, **at)
        for g in bk.get("groups") or []:
            attrs = {"llmobs.scope": "group", **tag, **key_attributes(g.get("key"))}
            _usage(b, g, attrs, **at)
    return b.points


def _eval(doc: Mapping[str, Any], now: int) -> list[Point]:
    current = (doc.get("windows") or {}).get("current") or {}
    b = _Builder(_ns(current.get("end")) or now, _ns(current.get("start")))
    for g in doc.get("groups") or []:
        attrs = {
            "llmobs.scope": "group",
            **key_attributes(g.get("key")),
            "gen_ai.evaluation.name": str(g.get("evaluator")),
        }
        _score(b, "llmobs.eval.score", g, attrs)
        b.add("llmobs.eval.n", g.get("judged"), attrs)
        b.add("llmobs.eval.n_eff", g.get("n_eff"), attrs)
        b.add("llmobs.eval.calls", g.get("calls"), attrs)
        b.add("llmobs.eval.judge_error_rate", g.get("error_rate"), attrs)
        if isinstance(g.get("corrected"), dict):
            _score(b, "llmobs.eval.score.corrected", g["corrected"], attrs)
    for o in doc.get("overall") or []:
        cur = o.get("current") if isinstance(o, dict) else None
        if not isinstance(cur, dict):
            continue
        attrs = {"llmobs.scope": "overall", "gen_ai.evaluation.name": str(o.get("evaluator"))}
        _score(b, "llmobs.eval.score", cur, attrs)
        b.add("llmobs.eval.n", cur.get("judged"), attrs)
        b.add("llmobs.eval.delta", o.get("delta"), attrs)
    for t in doc.get("tests") or []:
        attrs = {
            "llmobs.scope": "group",
            **key_attributes(t.get("key")),
            "gen_ai.evaluation.name": str(t.get("evaluator")),
            "llmobs.eval.test": str(t.get("kind") or "window"),
        }
        b.add("llmobs.eval.delta", t.get("delta"), attrs)
        b.add("llmobs.eval.q_value", t.get("q_value"), attrs)
        b.add("llmobs.eval.regression", bool(t.get("regression")), attrs)
    judge = doc.get("judge") or {}
    overall = {"llmobs.scope": "overall"}
    b.add("llmobs.judge.calls", judge.get("calls"), overall)
    b.add("llmobs.judge.failed", judge.get("failed"), overall)
    b.add("llmobs.judge.cost_usd", judge.get("cost_usd"), overall)
    return b.points


def _score(b: _Builder, name: str, est: Mapping[str, Any], attrs: dict[str, Any]) -> None:
    b.add(name, est.get("score"), attrs)
    b.add(f"{name}.ci_low", est.get("ci_low"), attrs)
    b.add(f"{name}.ci_high", est.get("ci_high"), attrs)


def _drift(doc: Mapping[str, Any], now: int) -> list[Point]:
    current = doc.get("current") or {}
    b = _Builder(_ns(current.get("end")) or now, _ns(current.get("start")))
    for f in doc.get("features") or []:
        group = f.get("group")
        scope = "overall" if not group else "slice" if f.get("slice") else "group"
        attrs = {
            "llmobs.scope": scope,
            **key_attributes(group),
            "llmobs.drift.feature": str(f.get("feature")),
        }
        effect = {**attrs, "llmobs.drift.effect": str(f.get("effect_name") or f.get("test"))}
        b.add("llmobs.drift.effect_size", f.get("effect_size"), effect)
        b.add("llmobs.drift.p_value", f.get("p_value"), attrs)
        b.add("llmobs.drift.p_adjusted", f.get("p_adjusted"), attrs)
        b.add("llmobs.drift.drifted", bool(f.get("drifted")), attrs)
    drifted = doc.get("drifted")
    if isinstance(drifted, list):
        b.add("llmobs.drift.features_drifted", len(drifted), {"llmobs.scope": "overall"})
    return b.points


# --- resource -----------------------------------------------------------------------------


def resource_attributes(service_name: str | None, resource: str | None) -> dict[str, str]:
    """Resource attributes from ``OTEL_RESOURCE_ATTRIBUTES`` (``k=v,k2=v2``, values
    URL-encoded) and ``OTEL_SERVICE_NAME``, which wins for ``service.name``, as the
    OpenTelemetry SDKs do; ``service.name`` is ``llmobs`` when neither says."""
    attrs: dict[str, str] = {}
    for part in (resource or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UsageError(
                "OTEL_RESOURCE_ATTRIBUTES: expected key=value pairs separated by commas"
            )
        attrs[unquote(key.strip())] = unquote(value.strip())
    if service_name:
        attrs["service.name"] = service_name
    attrs.setdefault("service.name", "llmobs")
    return attrs


# --- encoding -----------------------------------------------------------------------------


def _any_value(common_pb2: Any, value: Any) -> Any:
    if isinstance(value, bool):
        return common_pb2.AnyValue(bool_value=value)
    if isinstance(value, int):
        return common_pb2.AnyValue(int_value=value)
    if isinstance(value, float):
        return common_pb2.AnyValue(double_value=value)
    return common_pb2.AnyValue(string_value=str(value))


def requests(
    pts: Iterable[Point],
    *,
    resource: Mapping[str, str] | None = None,
    version: str = "",
    batch: int = BATCH,
) -> Iterator[Any]:
    """``ExportMetricsServiceRequest`` messages of at most ``batch`` points, each metric
    one gauge holding its points."""
    svc, common_pb2, metrics_pb2, resource_pb2 = _proto()
    res = resource_pb2.Resource(
        attributes=[
            common_pb2.KeyValue(key=k, value=_any_value(common_pb2, v))
            for k, v in (resource or {"service.name": "llmobs"}).items()
        ]
    )
    scope = common_pb2.InstrumentationScope(name="llmobs", version=version)
    chunk: list[Point] = []
    for p in pts:
        chunk.append(p)
        if len(chunk) >= batch:
            yield _request(svc, common_pb2, metrics_pb2, res, scope, chunk)
            chunk = []
    if chunk:
        yield _request(svc, common_pb2, metrics_pb2, res, scope, chunk)


def _request(
    svc: Any, common_pb2: Any, metrics_pb2: Any, res: Any, scope: Any, chunk: list[Point]
) -> Any:
    by_name: dict[str, list[Any]] = {}
    for p in chunk:
        dp = metrics_pb2.NumberDataPoint(
            time_unix_nano=p.time_ns,
            attributes=[
                common_pb2.KeyValue(key=k, value=_any_value(common_pb2, v)) for k, v in p.attributes
            ],
        )
        if p.start_ns is not None:
            dp.start_time_unix_nano = p.start_ns
        if isinstance(p.value, int):
            dp.as_int = p.value
        else:
            dp.as_double = p.value
        by_name.setdefault(p.name, []).append(dp)
    metrics = [
        metrics_pb2.Metric(
            name=name,
            unit=METRICS[name][0],
            description=METRICS[name][1],
            gauge=metrics_pb2.Gauge(data_points=dps),
        )
        for name, dps in by_name.items()
    ]
    return svc.ExportMetricsServiceRequest(
        resource_metrics=[
            metrics_pb2.ResourceMetrics(
                resource=res,
                scope_metrics=[metrics_pb2.ScopeMetrics(scope=scope, metrics=metrics)],
            )
        ]
    )


def to_json(request: Any) -> dict[str, Any]:
    """A request in the OTLP/JSON mapping (lowerCamelCase, 64-bit integers as strings)."""
    from google.protobuf import json_format

    doc: dict[str, Any] = json_format.MessageToDict(request)
    return doc


def json_lines(pts: Iterable[Point], **kw: Any) -> Iterator[str]:
    """One OTLP/JSON document per line (the Collector ``file`` exporter layout)."""
    for req in requests(pts, **kw):
        yield json.dumps(to_json(req), separators=(",", ":"), ensure_ascii=False)


def metrics_url(endpoint: str) -> str:
    """A base endpoint with ``/v1/metrics`` appended (a signal-specific one is used as given)."""
    parts = urlsplit(endpoint)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/v1/metrics"))


def send(
    pts: list[Point],
    url: str,
    *,
    protocol: str = "protobuf",
    headers: Mapping[str, str] | None = None,
    policy: http.RetryPolicy = http.RetryPolicy(),
    compress: bool = True,
    resource: Mapping[str, str] | None = None,
    version: str = "",
    on_progress: Callable[[str], None] | None = None,
    client: Any = None,
) -> SendResult:
    """POST the points to an OTLP/HTTP metrics endpoint, batched, gzipped and retried.

    Gauges are idempotent for a receiver (the same series, time and value), so a batch
    retried after a lost reply stores nothing twice. A batch that still fails after its
    retries is counted in ``failed``; a receiver's partial success in ``rejected``.
    """
    if protocol not in ("protobuf", "json"):
        raise UsageError(f"protocol: {protocol!r} is not one of protobuf, json")
    svc = _proto()[0]
    batches = (
        (
            req,
            sum(
                len(m.gauge.data_points)
                for rm in req.resource_metrics
                for sm in rm.scope_metrics
                for m in sm.metrics
            ),
        )
        for req in requests(pts, resource=resource, version=version)
    )
    return post_batches(
        batches,
        url,
        encode=to_json,
        rejected=lambda body: _rejected(svc, body, protocol),
        unit="metric point(s)",
        protocol=protocol,
        headers=headers,
        policy=policy,
        compress=compress,
        client=client,
        on_progress=on_progress,
    )


def _rejected(svc: Any, body: bytes, protocol: str) -> int:
    """``partial_success.rejected_data_points`` of a receiver's reply (0 when absent)."""
    if not body:
        return 0
    try:
        if protocol == "protobuf":
            resp = svc.ExportMetricsServiceResponse()
            resp.ParseFromString(body)
            return int(resp.partial_success.rejected_data_points)
        doc = json.loads(body)
        return int((doc.get("partialSuccess") or {}).get("rejectedDataPoints") or 0)
    except Exception:  # a reply we cannot parse carries no partial-success information
        return 0
