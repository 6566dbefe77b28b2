"""Gates and alerts: ``--fail-on "METRIC OP VALUE"`` and ``alerts:`` in ``llmobs.yaml``.

Syntax: ``[SCOPE:]METRIC OP VALUE``

* ``METRIC`` is a path into a metrics object: ``latency_ms.p99``, ``ttft_ms.mean``,
  ``cost_usd``, ``cost_per_call_usd``, ``error_rate``, ``refusal_rate``,
  ``cache_hit_rate``, ``unpriced_calls``, ``calls``, ... (:func:`known_metrics`).
* ``OP`` is one of ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=``.
* ``VALUE`` is a number; ``5%`` is 0.05, ``$2`` is 2, ``1.5k``/``2M`` scale by 10³/10⁶,
  ``2s`` is 2000 (for ``*_ms`` metrics).
* ``SCOPE`` restricts the rule to groups: ``route=chat``, several keys separated by
  commas (``route=chat,model=gpt-4o``), ``KEY=*`` for every value of the key. The scope's
  keys need not be the report's ``--by`` fields: the report groups by them for the rule.
  Without a scope the rule applies to the overall metrics.

A rule fires when the comparison holds; a metric that is null (no data: a rate with an
empty denominator) does not fire. A scope value that no call in the data has (a typo such
as ``route=chatt``) is exit 2 (:func:`check_scopes`), never a gate that silently cannot
fire. Every firing is one alert ``{rule, name, scope, key, metric, op, value,
threshold}``; the CLI exits 1 when there is any.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from llmobs_cli.core.report.metrics import metric_paths, metric_value
from llmobs_cli.errors import ConfigError, LlmobsError, UsageError

if TYPE_CHECKING:
    from llmobs_cli.core.report.engine import Report

OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
_RULE = re.compile(r"^\s*(?P<lhs>.+?)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>[^\s<>=!]+)\s*$")
_METRIC = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*$")
_NUMBER = re.compile(
    r"^\$?(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(?P<unit>%|k|K|M|B|ms|s)?$"
)
_SCALE = {"%": 0.01, "k": 1e3, "K": 1e3, "M": 1e6, "B": 1e9, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Rule:
    """A parsed gate."""

    text: str
    metric: str
    op: str
    threshold: float
    scope: tuple[tuple[str, str], ...] = ()
    name: str | None = None
    #: Where the rule was written (``--fail-on`` or ``llmobs.yaml: alerts[i]``), for messages.
    where: str = "--fail-on"

    @property
    def scope_keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.scope)

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)


def known_metrics() -> list[str]:

    return metric_paths()


def parse_rule(text: str, where: str = "--fail-on", name: str | None = None) -> Rule:
    """Parse one rule; errors name ``where`` (the option, or ``file: alerts[i]``)."""
    usage = where in ("--fail-on", "fail_on")
    param = where if usage else None

    def err(message: str, **_named: object) -> LlmobsError:
        # (``unknown`` passes ``param=``; a usage error names ``where``, a config error none)
        return UsageError(message, param=param) if usage else ConfigError(message)

    m = _RULE.match(text or "")
    if not m:
        raise err(
            f"{where}: cannot parse '{text}' (expected \"METRIC OP VALUE\", e.g. "
            '"latency_ms.p99 > 2000" or "route=chat:error_rate >= 0.05")'
        )
    lhs, op, raw = m.group("lhs"), m.group("op"), m.group("value")
    scope: list[tuple[str, str]] = []
    metric = lhs.strip()
    if ":" in lhs:
        scope_txt, metric = lhs.rsplit(":", 1)
        metric = metric.strip()
        from llmobs_cli.core.record.fields import check_field

        for part in scope_txt.split(","):
            if "=" not in part:
                raise err(
                    f"{where}: scope '{scope_txt.strip()}' in '{text}' "
                    "must be KEY=VALUE[,KEY=VALUE...]"
                )
            k, v = (s.strip() for s in part.split("=", 1))
            if not k or not v:
                raise err(
                    f"{where}: scope '{scope_txt.strip()}' in '{text}' "
                    "must be KEY=VALUE[,KEY=VALUE...]"
                )
            try:
                check_field(k, where)
            except UsageError as exc:
                raise err(str(exc)) from exc
            scope.append((k, v))
    if not _METRIC.match(metric):
        raise err(
            f"{where}: cannot parse '{text}' (expected \"METRIC OP VALUE\", e.g. "
            '"latency_ms.p99 > 2000" or "route=chat:error_rate >= 0.05")'
        )
    known = known_metrics()
    if metric not in known:
        from llmobs_cli.core.record.names import unknown

        # The closest paths first, then the ones people use most.
        common = ["latency_ms.p99", "ttft_ms.p95", "cost_usd", "cost_per_call_usd",
                  "error_rate", "refusal_rate", "cache_hit_rate", "unpriced_calls"]  # fmt: skip
        same_root = [k for k in known if k.startswith(metric.split(".")[0])]
        raise unknown(
            where, "metric", metric, same_root or common, where=f"'{text}'", error=err, pool=known
        )
    nm = _NUMBER.match(raw)
    if not nm:
        raise err(f"{where}: '{raw}' in '{text}' is not a number")
    value = float(nm.group("num")) * _SCALE.get(nm.group("unit") or "", 1.0)
    if nm.group("unit") in ("s", "ms") and not metric.split(".")[0].endswith("_ms"):
        raise err(f"{where}: '{raw}' in '{text}' is a duration but {metric} is not a time in ms")
    return Rule(
        text=text.strip(),
        metric=metric,
        op=op,
        threshold=value,
        scope=tuple(scope),
        name=name,
        where=where,
    )


def parse_rules(
    fail_on: Sequence[str] = (), alerts: Sequence[Any] = (), source: str = "llmobs.yaml"
) -> list[Rule]:
    """``--fail-on`` values then config ``alerts`` (strings or ``{rule, name}``)."""
    rules = [parse_rule(t, "fail_on") for t in fail_on]
    for i, a in enumerate(alerts):
        text = a if isinstance(a, str) else a.rule
        name = None if isinstance(a, str) else a.name
        rules.append(parse_rule(text, f"{source}: alerts[{i}]", name))
    return rules


def check_scopes(rules: Sequence[Rule], frame: Any, sources: Sequence[str]) -> None:
    """Every scope value of ``rules`` occurs in the data (``frame``, canonical rows of the
    window reported on); else exit 2 with the values there and the closest one.

    A scope that matches nothing (``route=chatt``) is a gate that can never fire: in cron
    or CI that is a silent green, so it is refused rather than ignored.
    """
    from llmobs_cli.core.record.names import require_values

    for r in rules:
        if r.scope:
            usage = r.where in ("--fail-on", "fail_on")
            err = UsageError if usage else ConfigError
            require_values(frame, r.scope, sources, f"{r.where} '{r.text}'", error=err)


def _matches(key: dict[str, Any], scope: Sequence[tuple[str, str]]) -> bool:
    for k, v in scope:
        if v == "*":
            continue
        got = key.get(k)
        if got is None:
            if v not in ("null", "None", ""):
                return False
        elif str(got) != v:
            return False
    return True


def scope_keysets(rules: Sequence[Rule]) -> list[tuple[str, ...]]:
    """Distinct grouping key-sets the rules need (sorted, each in rule order)."""
    out: dict[frozenset[str], tuple[str, ...]] = {}
    for r in rules:
        if r.scope:
            out.setdefault(frozenset(r.scope_keys), r.scope_keys)
    return list(out.values())


def evaluate(
    rules: Sequence[Rule],
    report: Report,
    extra_groups: dict[frozenset[str], list[dict[str, Any]]] | None = None,
) -> list[dict[str, Any]]:
    """The alerts that fire on ``report`` (one per rule × matching group)."""

    alerts: list[dict[str, Any]] = []
    for r in rules:
        if not r.scope:
            targets: list[tuple[dict[str, Any] | None, dict[str, Any]]] = [(None, report.overall)]
        else:
            keys = frozenset(r.scope_keys)
            if keys == frozenset(report.by):
                pool = report.groups
            else:
                pool = (extra_groups or {}).get(keys, [])
            targets = [(g["key"], g) for g in pool if _matches(g["key"], r.scope)]
        for key, metrics in targets:
            value = metric_value(metrics, r.metric)
            if value is None or isinstance(value, bool | str):
                continue
            if r.holds(float(value)):
                alerts.append(
                    {
                        "rule": r.text,
                        "name": r.name,
                        "scope": dict(r.scope) or None,
                        "key": key,
                        "metric": r.metric,
                        "op": r.op,
                        "value": float(value),
                        "threshold": r.threshold,
                    }
                )
    return alerts
