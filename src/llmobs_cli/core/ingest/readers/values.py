"""Values as trace files hold them, made plain: the helpers every reader shares.

Readers meet the same small problems in every format: numbers written as strings, JSON
encoded inside a string, message content in a dozen shapes, nested attribute objects
that must become dotted keys. They are solved once here, so that one input spelled two
ways reads the same in every reader.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = [
    "as_str",
    "dumps",
    "first",
    "flatten_obj",
    "loads_maybe",
    "message_list",
    "only_text",
    "output_text",
    "split_messages",
    "text_of",
    "to_float",
    "to_int",
    "unflatten",
]


def _json_loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # NaN/Infinity and other lenient JSON


def dumps(obj: Any) -> str:
    """Compact JSON text (non-ASCII kept, unknown types as strings)."""
    try:
        return orjson.dumps(obj, default=str).decode()
    except TypeError:  # e.g. integers beyond 64 bits
        return json.dumps(obj, ensure_ascii=False, default=str)


def loads_maybe(value: Any) -> Any:
    """A JSON string decoded (when it is one); anything else as is."""
    if isinstance(value, str):
        s = value.strip()
        if s[:1] in ("[", "{"):
            try:
                return _json_loads(s)
            except ValueError:
                return value
    return value


def to_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if f == f else None


def to_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def text_of(value: Any) -> str | None:
    """Message content of any shape as plain text (parts joined, tool calls as JSON)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return json.dumps(value)
    if isinstance(value, dict):
        for key in ("text", "content", "value"):
            if (
                key in value
                and isinstance(value[key], (str, list, dict))
                and value.get("type")
                not in (
                    "tool_call",
                    "tool_call_response",
                    "function_call",
                )
            ):
                return text_of(value[key])
        if value.get("type") in ("tool_call", "function_call", "tool_use"):
            return json.dumps(
                {
                    "tool_call": value.get("name"),
                    "arguments": value.get("arguments", value.get("input")),
                },
                ensure_ascii=False,
            )
        if value.get("type") == "tool_call_response":
            return text_of(value.get("response", value.get("result")))
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        texts = [t for t in (text_of(v) for v in value) if t]
        return "\n".join(texts) if texts else None
    return str(value)


def only_text(parts: Any) -> str | None:
    """The text parts of a message (no tool calls), or all parts when none is text."""
    if isinstance(parts, list):
        texts = [
            text_of(p)
            for p in parts
            if not isinstance(p, dict)
            or p.get("type") in (None, "text", "output_text", "input_text")
        ]
        found = [t for t in texts if t]
        if found:
            return "\n".join(found)
    return text_of(parts)


def message_list(value: Any) -> list[dict[str, str | None]] | None:
    """``[{role, content}]`` from GenAI ``parts`` messages, OpenAI messages or strings."""
    value = loads_maybe(value)
    if value is None:
        return None
    if isinstance(value, dict):
        if "messages" in value:
            return message_list(value["messages"])
        value = [value]
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        return None
    out: list[dict[str, str | None]] = []
    for m in value:
        if isinstance(m, str):
            out.append({"role": "user", "content": m})
            continue
        if not isinstance(m, dict):
            continue
        role = m.get("role")
        if "parts" in m:
            content = only_text(m["parts"])
            parts = m["parts"] if isinstance(m["parts"], list) else []
            if parts and all(
                isinstance(p, dict) and p.get("type") == "tool_call_response" for p in parts
            ):
                role = "tool"  # tool results sent back (some SDKs label them "user")
        elif "content" in m:
            content = (
                only_text(m["content"]) if isinstance(m["content"], list) else text_of(m["content"])
            )
        elif "message" in m and isinstance(m["message"], dict):
            return message_list([x.get("message") for x in value if isinstance(x, dict)])
        else:
            content = text_of(m.get("text"))
        if content is None and m.get("tool_calls"):
            content = json.dumps(m["tool_calls"], ensure_ascii=False)
        out.append({"role": str(role) if role is not None else None, "content": content})
    return out


def split_messages(
    msgs: list[dict[str, str | None]] | None,
) -> tuple[str | None, str | None, list[dict[str, str | None]] | None]:
    """(system, prompt = last user turn, messages)."""
    if not msgs:
        return None, None, msgs
    system = (
        "\n".join(m["content"] or "" for m in msgs if m["role"] in ("system", "developer")) or None
    )
    prompt = next((m["content"] for m in reversed(msgs) if m["role"] == "user"), None)
    return system, prompt, msgs


def unflatten(attrs: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """``prefix.0.a.b`` … → ``[{"a.b": …}, …]`` in index order."""
    out: dict[int, dict[str, Any]] = {}
    plen = len(prefix) + 1
    for k, v in attrs.items():
        if not k.startswith(prefix + "."):
            continue
        rest = k[plen:]
        idx, _, sub = rest.partition(".")
        if not idx.isdigit():
            continue
        out.setdefault(int(idx), {})[sub] = v
    return [out[i] for i in sorted(out)]


def flatten_obj(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts → dotted keys (lists of dicts get their index as a key part)."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) or (
                isinstance(v, list) and v and all(isinstance(x, dict) for x in v)
            ):
                out.update(flatten_obj(v, key))
            else:
                out[key] = v
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(flatten_obj(v, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix] = obj
    return out


def first(a: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        v = a.get(k)
        if v is not None and v != "":
            return v
    return None


def output_text(value: Any) -> tuple[str | None, str | None]:
    """(response text, finish reason) from GenAI output messages / completions."""
    value = loads_maybe(value)
    if value is None:
        return None, None
    if isinstance(value, str):
        return value, None
    if isinstance(value, dict):
        if "choices" in value:
            return output_text(value["choices"])
        if "parts" in value or "role" in value or "message" in value:
            value = [value]
        else:
            text = value.get("text", value.get("content"))
            return text_of(text) if text is not None else json.dumps(
                value, ensure_ascii=False
            ), value.get("finish_reason")
    if isinstance(value, list):
        texts: list[str] = []
        finish = None
        for m in value:
            if isinstance(m, dict):
                inner: dict[str, Any] = m["message"] if isinstance(m.get("message"), dict) else m
                content = inner.get("parts", inner.get("content", inner.get("text")))
                t = only_text(content) if isinstance(content, list) else text_of(content)
                if t is None and inner.get("tool_calls"):
                    t = json.dumps(inner["tool_calls"], ensure_ascii=False)
                if t:
                    texts.append(t)
                finish = finish or m.get("finish_reason")
            elif isinstance(m, str):
                texts.append(m)
        return ("\n".join(texts) if texts else None), finish
    return text_of(value), None


def as_str(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else str(v)
