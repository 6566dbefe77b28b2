"""``llmobs show``: one trace as a tree of its spans, with the full text of every call.

The canonical records are LLM calls. The spans around them (an agent step, a tool, a
chain) are not records, but OTLP and Langfuse files carry them; :func:`span_skeleton`
reads just those spans' ids, names, kinds and times from the chosen trace so that the
tree shows agent → tool → LLM call as the application ran it. Other formats give the
calls alone, nested by their own ``parent_span_id`` where it points at another call.

Per span the tree carries its own tokens and cost (LLM calls) and the totals of its
subtree ("rolled up"); the trace's totals are the sums over its calls, so they equal the
file's. Times are offsets from the trace's first start, for timing bars.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import polars as pl

from llmobs_cli.core.explore import judgments as jm
from llmobs_cli.core.record.jsonable import iso
from llmobs_cli.errors import UsageError

_TOKENS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")


@dataclass
class SpanNode:
    """One span of the trace: an LLM call (``call`` holds its record) or a context span."""

    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start: datetime | None
    end: datetime | None
    call: dict[str, Any] | None = None
    children: list[SpanNode] = field(default_factory=list)
    depth: int = 0

    @property
    def latency_ms(self) -> float | None:
        if self.call is not None and self.call.get("latency_ms") is not None:
            return float(self.call["latency_ms"])
        if self.start is not None and self.end is not None:
            return (self.end - self.start).total_seconds() * 1000.0
        return None

    def own(self) -> dict[str, Any]:
        """Tokens and cost of this span itself (zero for context spans)."""
        c = self.call or {}
        out: dict[str, Any] = {k: int(c.get(k) or 0) for k in _TOKENS}
        out["cost_usd"] = float(c.get("cost_usd") or 0.0)
        out["calls"] = 1 if self.call is not None else 0
        # A call without a cost (no cost_usd, no price) is counted, never priced at $0.
        out["unpriced"] = 1 if self.call is not None and c.get("cost_usd") is None else 0
        return out

    def rolled_up(self) -> dict[str, Any]:
        """This span's figures plus all its descendants'."""
        total = self.own()
        for child in self.children:
            sub = child.rolled_up()
            for k in total:
                total[k] += sub[k]
        return total

    def walk(self) -> list[SpanNode]:
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out


@dataclass
class TraceView:
    """A trace ready to render: its span tree, totals, judgments and session."""

    trace_id: str
    roots: list[SpanNode]
    calls: pl.DataFrame
    judgments: pl.DataFrame | None = None
    session: pl.DataFrame | None = None
    sources: list[str] = field(default_factory=list)

    @property
    def start(self) -> datetime | None:
        starts = [n.start for n in self.spans() if n.start is not None]
        return min(starts) if starts else None

    @property
    def end(self) -> datetime | None:
        ends = [n.end for n in self.spans() if n.end is not None]
        return max(ends) if ends else None

    def spans(self) -> list[SpanNode]:
        return [n for r in self.roots for n in r.walk()]

    def totals(self) -> dict[str, Any]:
        total = {k: 0 for k in _TOKENS} | {"cost_usd": 0.0, "calls": 0, "unpriced": 0}
        for r in self.roots:
            sub = r.rolled_up()
            for k in total:
                total[k] += sub[k]
        total["spans"] = len(self.spans())
        return total

    def session_id(self) -> str | None:
        ids = [v for v in self.calls["session_id"].to_list() if v]
        return ids[0] if ids else None

    def as_dict(self) -> dict[str, Any]:
        start, end = self.start, self.end
        spans = []
        for n in self.spans():
            c = dict(n.call or {})
            spans.append(
                {
                    "span_id": n.span_id,
                    "parent_span_id": n.parent_span_id,
                    "name": n.name,
                    "kind": n.kind,
                    "depth": n.depth,
                    "start": iso(n.start),
                    "offset_ms": _ms(n.start - start) if n.start and start else None,
                    "latency_ms": n.latency_ms,
                    **{k: v for k, v in n.own().items() if k not in ("calls", "unpriced")},
                    **({"cost_usd": None} if n.own()["unpriced"] else {}),
                    "rolled_up": n.rolled_up(),
                    "call": _jsonable(c) if n.call is not None else None,
                }
            )
        out: dict[str, Any] = {
            "trace_id": self.trace_id,
            "session_id": self.session_id(),
            "start": iso(start),
            "end": iso(end),
            "latency_ms": _ms(end - start) if start and end else None,
            "totals": self.totals(),
            "spans": spans,
        }
        if self.judgments is not None:
            out["judgments"] = [
                _jsonable(r)
                for r in self.judgments.select(
                    [
                        c
                        for c in ("span_id", "evaluator", "score", "explanation", "judge_model")
                        if c in self.judgments.columns
                    ]
                ).to_dicts()
            ]
        if self.session is not None:
            out["session"] = [_jsonable(r) for r in self.session.to_dicts()]
        return out


def _ms(d: timedelta) -> float:
    return d.total_seconds() * 1000.0


def _jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and v != v:
        return None
    return v


# --- finding the trace ---------------------------------------------------------------


def resolve_id(ids: pl.Series, wanted: str) -> str:
    """The one trace id equal to ``wanted``, or the one it is a unique prefix of.

    Unknown or ambiguous ids are a :class:`UsageError` listing close matches.
    """
    uniq = ids.drop_nulls().unique()
    if (uniq == wanted).any():
        return wanted
    pref = uniq.filter(uniq.str.starts_with(wanted)).sort().to_list()
    if len(pref) == 1:
        return pref[0]
    if len(pref) > 1:
        shown = ", ".join(pref[:5]) + (" ..." if len(pref) > 5 else "")
        raise UsageError(f"trace id '{wanted}' is ambiguous: it starts {len(pref)} ids ({shown})")
    close = difflib.get_close_matches(wanted, uniq.to_list(), n=3, cutoff=0.5)
    hint = f" (closest: {', '.join(close)})" if close else ""
    raise UsageError(f"no trace '{wanted}' in the input{hint}")


def load_trace(
    trace_id: str,
    paths: Sequence[str | Path],
    *,
    evals: str | Path | None = None,
    session: bool = False,
    on_error: Literal["fail", "skip"] = "fail",
    fmt: str | None = None,
    options: Any = None,
    prices: Any = None,
) -> TraceView:
    """Read the trace (and with ``session`` its whole session) from ``paths``."""
    from llmobs_cli.core.ingest.readers import load

    ids = load(
        paths, columns=["trace_id", "session_id"], on_error=on_error, fmt=fmt, options=options
    )
    if not ids.frame.height:
        raise UsageError("no calls in the input (nothing to show)")
    tid = resolve_id(ids.frame["trace_id"], trace_id)
    session_id = (
        ids.frame.filter(pl.col("trace_id") == tid)["session_id"].drop_nulls().first()
        if session
        else None
    )
    wanted = ids.frame.filter(
        (pl.col("trace_id") == tid)
        | (pl.col("session_id") == session_id if session_id else pl.lit(False))
    )["trace_id"].unique()
    rows = _rows(ids.formats, wanted, on_error, options)
    rows = _priced(rows, prices)
    calls = rows.filter(pl.col("trace_id") == tid).sort("timestamp")
    skeleton = span_skeleton(ids.formats, tid)
    roots = build_tree(calls, skeleton)
    view = TraceView(trace_id=tid, roots=roots, calls=calls, sources=ids.sources)
    if evals is not None:
        view.judgments = jm.for_trace(jm.read(evals), tid)
    if session:
        if session_id is None:
            raise UsageError(f"--session: trace '{tid}' has no session_id")
        view.session = _session(rows.filter(pl.col("session_id") == session_id))
    return view


def _rows(
    formats: dict[str, str], trace_ids: pl.Series, on_error: str, options: Any
) -> pl.DataFrame:
    """Every field of the calls of ``trace_ids`` (Parquet: the id predicate pushed down)."""
    from llmobs_cli.core.ingest.readers import load
    from llmobs_cli.core.ingest.readers.parquet import scan, source_columns
    from llmobs_cli.core.record.schema import ALIASES, FIELDS, ROW, SCHEMA, normalize

    parts: list[pl.DataFrame] = []
    for source, kind in formats.items():
        if kind == "parquet":
            lf = scan(source)
            names = [c for c in lf.collect_schema().names() if c != ROW]
            cols = source_columns(names, None)
            id_col = next(c for c in ("trace_id", *ALIASES["trace_id"]) if c in names)
            raw = (
                lf.select([ROW, *cols])
                .filter(pl.col(id_col).cast(pl.String).is_in(trace_ids.implode()))
                .collect()
                .with_columns(pl.col(ROW).cast(pl.Int64))
            )
            frame = normalize(raw).frame
        else:
            frame = load([source], on_error=on_error, fmt=kind, options=options).frame  # type: ignore[arg-type]
            frame = frame.filter(pl.col("trace_id").is_in(trace_ids.implode()))
        for name in FIELDS:
            if name not in frame.columns:
                frame = frame.with_columns(pl.lit(None, dtype=SCHEMA[name]).alias(name))
        parts.append(frame.select(FIELDS))
    return pl.concat(parts, how="vertical_relaxed")


def _priced(rows: pl.DataFrame, prices: Any) -> pl.DataFrame:
    from llmobs_cli.core.report import pricing

    out = pricing.with_cost(rows.lazy(), prices).collect()
    return out.with_columns(pl.col(pricing.COST).alias("cost_usd")).select(rows.columns)


def _session(rows: pl.DataFrame) -> pl.DataFrame:
    """The session's calls in order: time, trace, route, prompt (last user turn), response."""
    users = pl.col("messages").list.eval(
        pl.element().filter(pl.element().struct.field("role") == "user").struct.field("content")
    )
    return rows.sort("timestamp").select(
        "timestamp",
        "trace_id",
        "span_id",
        "route",
        "model",
        pl.coalesce(pl.col("prompt"), users.list.last()).alias("prompt"),
        "response",
    )


# --- the tree ------------------------------------------------------------------------


@dataclass(frozen=True)
class SkeletonSpan:
    span_id: str
    parent_span_id: str | None
    name: str
    kind: str
    start: datetime | None
    end: datetime | None


def _ns(v: int | None) -> datetime | None:
    if v is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=v // 1000)


def span_skeleton(formats: dict[str, str], trace_id: str) -> list[SkeletonSpan]:
    """Every span of ``trace_id`` in the OTLP and Langfuse sources (ids, names, times)."""
    out: list[SkeletonSpan] = []
    for source, kind in formats.items():
        try:
            if kind in ("otlp", "openinference"):
                out.extend(_otlp_skeleton(Path(source), trace_id))
            elif kind == "langfuse":
                out.extend(_langfuse_skeleton(Path(source), trace_id))
        except Exception:  # the records were read already; a tree without context is fine
            continue
    return out


def _otlp_skeleton(path: Path, trace_id: str) -> list[SkeletonSpan]:
    from llmobs_cli.core.ingest.readers import genai, otlp

    out = []
    for doc, where, problem in otlp.iter_documents(path):
        if problem is not None or doc is None:
            continue
        try:
            spans = list(otlp.spans_of(doc, where))
        except otlp.ExactIntsNeeded:  # ids as big integers: re-read exactly, as the reader does
            spans = list(otlp.spans_of(otlp._exact_document(path, where), where))
        for sp in spans:
            if sp.trace_id != trace_id or sp.span_id is None:
                continue
            kind = genai.classify(sp)
            if kind == "other":
                label = sp.attrs.get("openinference.span.kind") or sp.attrs.get(
                    "gen_ai.operation.name"
                )
                kind = str(label).lower() if label else "span"
            out.append(
                SkeletonSpan(
                    sp.span_id, sp.parent_id, sp.name, kind, _ns(sp.start_ns), _ns(sp.end_ns)
                )
            )
    return out


def _langfuse_skeleton(path: Path, trace_id: str) -> list[SkeletonSpan]:
    from llmobs_cli.core.ingest.readers import langfuse
    from llmobs_cli.core.record.windows import parse_time

    def when(v: Any) -> datetime | None:
        try:
            return parse_time(str(v)) if v else None
        except UsageError:
            return None

    out = []
    for doc, _loc in langfuse._documents(path):
        if isinstance(doc, Exception):
            continue
        for o, t in langfuse._rows_from_doc(doc):
            tid = o.get("trace_id") or t.get("id")
            if tid != trace_id or not o.get("id"):
                continue
            typ = str(o.get("type") or "span").lower()
            out.append(
                SkeletonSpan(
                    str(o["id"]),
                    o.get("parent_observation_id"),
                    str(o.get("name") or typ),
                    "llm" if typ == "generation" else typ,
                    when(o.get("start_time")),
                    when(o.get("end_time")),
                )
            )
    return out


def build_tree(calls: pl.DataFrame, skeleton: Sequence[SkeletonSpan]) -> list[SpanNode]:
    """Nodes for the calls and the context spans, nested by parent id, ordered by start."""
    nodes: dict[str, SpanNode] = {}
    for s in skeleton:
        nodes.setdefault(
            s.span_id, SpanNode(s.span_id, s.parent_span_id, s.name, s.kind, s.start, s.end)
        )
    for c in calls.to_dicts():
        sid = str(c.get("span_id") or c["trace_id"])
        node = nodes.get(sid)
        end = c.get("end_time")
        if end is None and c.get("timestamp") is not None and c.get("latency_ms") is not None:
            end = c["timestamp"] + timedelta(milliseconds=float(c["latency_ms"]))
        name = c.get("model") or "llm call"
        if node is None:
            node = SpanNode(sid, c.get("parent_span_id"), str(name), "llm", c.get("timestamp"), end)
            nodes[sid] = node
        node.call = c
        node.kind = "llm"
        node.start = c.get("timestamp") or node.start
        node.end = end or node.end
    roots: list[SpanNode] = []
    for node in nodes.values():
        parent = nodes.get(node.parent_span_id) if node.parent_span_id else None
        if parent is not None and parent is not node and not _is_ancestor(node, parent, nodes):
            parent.children.append(node)
        else:
            roots.append(node)
    far = datetime.max.replace(tzinfo=UTC)
    for node in nodes.values():
        node.children.sort(key=lambda n: (n.start or far, n.span_id))
    roots.sort(key=lambda n: (n.start or far, n.span_id))

    def depth(n: SpanNode, d: int) -> None:
        n.depth = d
        for ch in n.children:
            depth(ch, d + 1)

    for r in roots:
        depth(r, 0)
    return roots


def _is_ancestor(node: SpanNode, parent: SpanNode, nodes: dict[str, SpanNode]) -> bool:
    """True when attaching ``node`` under ``parent`` would close a cycle."""
    seen = set()
    cur: SpanNode | None = parent
    while cur is not None and cur.span_id not in seen:
        if cur is node:
            return True
        seen.add(cur.span_id)
        cur = nodes.get(cur.parent_span_id) if cur.parent_span_id else None
    return False
