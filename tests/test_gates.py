"""Gates: parsing, every operator (fires when breached, holds otherwise), scopes, config."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmobs_cli.core.record.config import AlertRule
from llmobs_cli.core.report.engine import build_report
from llmobs_cli.core.report.gates import OPS, parse_rule, parse_rules
from llmobs_cli.core.report.pricing import PriceEntry, PriceTable
from llmobs_cli.errors import ConfigError, UsageError
from test_report import canonical

T0 = datetime(2026, 3, 2, tzinfo=UTC)
TABLE = PriceTable([PriceEntry(model="gpt-4o", input=2.5, output=10.0)])


def frame():  # type: ignore[no-untyped-def]
    # chat: latencies 100..400 (weights 1), refunds: 1000 (weight 2), one error in refunds.
    return canonical(
        {
            "timestamp": [T0] * 6,
            "route": ["chat", "chat", "chat", "chat", "refunds", "refunds"],
            "model": ["gpt-4o"] * 6,
            "latency_ms": [100.0, 200.0, 300.0, 400.0, 1000.0, 1000.0],
            "input_tokens": [1000] * 6,
            "output_tokens": [100] * 6,
            "status": ["ok", "ok", "ok", "ok", "ok", "error"],
            "sample_rate": [1.0, 1.0, 1.0, 1.0, 0.5, 0.5],
        }
    )


def fired(*rules: str, by: tuple[str, ...] = ("route",)) -> list[dict]:
    return build_report(frame(), by=list(by), prices=TABLE, rules=parse_rules(rules)).alerts


@pytest.mark.parametrize(
    ("op", "breached", "held"),
    [
        (">", 7, 8),  # overall calls = 8
        (">=", 8, 9),
        ("<", 9, 8),
        ("<=", 8, 7),
        ("==", 8, 7),
        ("!=", 7, 8),
    ],
)
def test_each_operator(op: str, breached: float, held: float) -> None:
    (a,) = fired(f"calls {op} {breached}")
    assert a["value"] == 8 and a["threshold"] == breached and a["op"] == op and a["key"] is None
    assert fired(f"calls {op} {held}") == []
    assert set(OPS) == {">", ">=", "<", "<=", "==", "!="}


def test_scoped_rule_fires_only_for_its_group() -> None:
    (a,) = fired("route=refunds:latency_ms.p99 > 900")
    assert a["key"] == {"route": "refunds"} and a["scope"] == {"route": "refunds"}
    assert a["value"] == 1000 and a["metric"] == "latency_ms.p99"
    assert fired("route=chat:latency_ms.p99 > 900") == []
    assert fired("route=nowhere:calls > 0") == []


def test_wildcard_scope_checks_every_group() -> None:
    alerts = fired("route=*:error_rate >= 0")
    assert {tuple(a["key"].values()) for a in alerts} == {("chat",), ("refunds",)}


def test_scope_on_fields_not_in_by_and_multi_key() -> None:
    # The report is by model only; the rule needs route groups and route×model groups.
    (a,) = fired("route=refunds:error_rate > 0.4", by=("model",))
    assert a["key"] == {"route": "refunds"} and a["value"] == pytest.approx(0.5)
    (b,) = fired("route=refunds,model=gpt-4o:calls == 4", by=("model",))
    assert b["key"] == {"route": "refunds", "model": "gpt-4o"}


def test_units_and_suffixes() -> None:
    assert parse_rule("error_rate > 5%").threshold == pytest.approx(0.05)
    assert parse_rule("latency_ms.p99 > 2s").threshold == 2000
    assert parse_rule("cost_usd > $1.5k").threshold == 1500
    assert parse_rule("calls>=2M").threshold == 2e6


def test_unpriced_gate() -> None:
    df = frame().with_columns(model=__import__("polars").lit("mystery"))
    rep = build_report(df, prices=TABLE, rules=parse_rules(["unpriced_calls > 0"]))
    (a,) = rep.alerts
    assert a["value"] == 8


def test_null_metric_does_not_fire() -> None:
    # No successful call in the group: refusal_rate is null, the rule cannot fire.
    assert fired("route=refunds:ttft_ms.p50 > 0") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("latency_ms.p99 >", "--fail-on: cannot parse 'latency_ms.p99 >'"),
        ("latency.p99 > 3", "--fail-on: unknown metric 'latency.p99' in 'latency.p99 > 3'"),
        ("latency_ms.p99 > fast", "--fail-on: 'fast' in 'latency_ms.p99 > fast' is not a number"),
        (
            "route:latency_ms.p99 > 3",
            "--fail-on: scope 'route' in 'route:latency_ms.p99 > 3' must be KEY=VALUE",
        ),
        ("colour=red:calls > 3", "--fail-on: unknown field 'colour'"),
        (
            "error_rate > 2s",
            "--fail-on: '2s' in 'error_rate > 2s' is a duration but error_rate is not a time in ms",
        ),
    ],
)
def test_bad_rules_are_usage_errors_naming_the_option(text: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse_rule(text)
    assert str(err.value).startswith(message)


def test_config_alerts_are_named_and_errors_name_the_key() -> None:
    rules = parse_rules(
        [], ["calls > 1", AlertRule(rule="error_rate > 0.1", name="errors")], "my.yaml"
    )
    assert [r.name for r in rules] == [None, "errors"]
    rep = build_report(frame(), prices=TABLE, rules=rules)
    assert [a["name"] for a in rep.alerts] == [None, "errors"]
    with pytest.raises(ConfigError, match=r"^my.yaml: alerts\[1\]: unknown metric 'nope'"):
        parse_rules([], ["calls > 1", "nope > 1"], "my.yaml")


def test_wildcard_alerts_on_fields_outside_by_come_in_the_groups_order() -> None:
    """A wildcard rule on a field the report is not grouped by fires in the order the
    report would list those groups (most expensive first, then most calls, then key), the
    same on every run: the JSON of one input does not depend on a group-by's order."""
    from pathlib import Path

    import polars as pl

    sample = Path(__file__).parent.parent / "sample_traces" / "traces.parquet"
    df = pl.read_parquet(sample)
    rules = parse_rules(["model=*:latency_ms.p50 > 0"])
    want = [g["key"] for g in build_report(df, by=("model",)).groups]
    assert len(want) > 3
    for _ in range(4):
        got = [a["key"] for a in build_report(df, by=("route",), rules=rules).alerts]
        assert got == want
