# ruff: noqa: E501  (SQL text reads better unbroken)
"""``llmobs report --by route,model`` against the same weighted work in DuckDB.

Both sides run as whole processes (interpreter start, imports, reading the file, the
work, printing), alternated A B A B after a warm-up each, on the same generated Parquet
dump (``llmobs generate``, cached in ``bench/data``). The DuckDB query does what the
report does:

* weights ``1/sample_rate``; per (route, model) and overall: sampled rows, Σw, Σw²;
* weighted P50/P95/P99 of ``latency_ms`` and ``ttft_ms`` by the weighted CDF (window
  sum of weights over the sorted values, then the first value reaching q·Σw), means;
* weighted token totals, cost (the record's ``cost_usd``, else the same price table
  joined by model, provider and effective date, long-context tiers included), unpriced
  calls, error rate, refusal rate (the same refusal regular expression on the first 400
  characters), citation rate (document id or a quoted sentence in the response), the
  session estimate; with ``--bucket day`` the same again per day and per day × group.

Usage: ``python bench/report.py [--rows 1000000 2000000] [--runs 5]``; prints a Markdown
table of medians and the median of the per-pair ratios (llmobs / DuckDB).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import DATA, alternate, generated, print_row

QS = (0.5, 0.95, 0.99)


def _source(path: Path) -> str:
    """DuckDB's name for a file, or for every Parquet file under a (hive) directory."""
    return f"{path}/**/*.parquet" if path.is_dir() else str(path)


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _prices_cte(path: Path) -> str:
    """The price lookup of every (model, provider) in the file, as a VALUES list."""
    import polars as pl

    from llmobs_cli.core.report import pricing

    pairs = pl.scan_parquet(path).select("model", "provider").unique().collect().rows()
    lookup = pricing.build_price_table().lookup_frame(pairs)
    cols = list(lookup.columns)
    if lookup.height == 0:
        return "prices AS (SELECT NULL::VARCHAR AS model WHERE false)"

    def lit(v: object) -> str:
        if v is None:
            return "NULL"
        if isinstance(v, str):
            return _sql_str(v)
        if hasattr(v, "isoformat"):
            return f"TIMESTAMPTZ {_sql_str(v.isoformat())}"
        return repr(float(v)) if isinstance(v, float) else str(v)

    rows = ",\n    ".join("(" + ", ".join(lit(v) for v in r) + ")" for r in lookup.rows())
    return f"prices({', '.join(cols)}) AS (VALUES\n    {rows})"


def _quantile_sql(value: str, keys: list[str]) -> str:
    part = f"PARTITION BY {', '.join(keys)}" if keys else ""
    sel_keys = "".join(f"{k}, " for k in keys)
    qsel = ", ".join(
        f"min({value}) FILTER (WHERE cw >= {q} * (1 - 1e-12) * tot) AS {value}_p{int(q * 100)}"
        for q in QS
    )
    return (
        f"SELECT {sel_keys}{qsel} FROM (SELECT {sel_keys}{value}, "
        f"sum(w) OVER ({part} ORDER BY {value} ROWS UNBOUNDED PRECEDING) AS cw, "
        f"sum(w) OVER ({part}) AS tot FROM flagged WHERE {value} IS NOT NULL)"
        + (f" GROUP BY {', '.join(keys)}" if keys else "")
    )


def _level_sql(keys: list[str], name: str) -> str:
    sel_keys = "".join(f"{k}, " for k in keys)
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    join_on = " AND ".join(f"s.{k} IS NOT DISTINCT FROM {{o}}.{k}" for k in keys) or "true"
    sums = (
        "count(*) AS sampled, sum(w) AS calls, sum(w * w) AS w2, "
        "sum(w * latency_ms) / sum(w) FILTER (WHERE latency_ms IS NOT NULL) AS latency_mean, "
        "sum(w * ttft_ms) / sum(w) FILTER (WHERE ttft_ms IS NOT NULL) AS ttft_mean, "
        "sum(w * input_tokens) AS input_tokens, sum(w * output_tokens) AS output_tokens, "
        "sum(w * cached_tokens) AS cached_tokens, sum(w * reasoning_tokens) AS reasoning_tokens, "
        "sum(w * cache_write_tokens) AS cache_write_tokens, "
        "sum(w * cached_tokens) FILTER (WHERE input_tokens IS NOT NULL) / sum(w * input_tokens) AS cache_hit_rate, "
        "sum(w * cost) AS cost_usd, sum(w) FILTER (WHERE cost IS NULL) AS unpriced_calls, "
        "sum(w * cost) / sum(w) FILTER (WHERE cost IS NOT NULL) AS cost_per_call, "
        "sum(w) FILTER (WHERE status = 'error') / sum(w) AS error_rate, "
        "sum(w) FILTER (WHERE ok AND refusal) / sum(w) FILTER (WHERE ok) AS refusal_rate, "
        "sum(w) FILTER (WHERE cites) / sum(w) FILTER (WHERE cites IS NOT NULL) AS citation_rate, "
        "sum(w * cost) FILTER (WHERE session_id IS NOT NULL) AS session_cost"
    )
    excl = f" EXCLUDE ({', '.join(keys)})" if keys else ""
    sessions = (
        f"SELECT {sel_keys}sum(sw) AS sessions, count(*) AS sessions_sampled FROM "
        f"(SELECT {sel_keys}session_id, avg(w) AS sw FROM flagged WHERE session_id IS NOT NULL "
        f"GROUP BY {sel_keys}session_id){group}"
    )
    return (
        f"{name}_sums AS (SELECT {sel_keys}{sums} FROM flagged{group}),\n"
        f"{name}_lat AS ({_quantile_sql('latency_ms', keys)}),\n"
        f"{name}_ttft AS ({_quantile_sql('ttft_ms', keys)}),\n"
        f"{name}_sess AS ({sessions}),\n"
        f"{name} AS (SELECT o.*, l.*{excl}, t.*{excl}, s.sessions, s.sessions_sampled "
        f"FROM {name}_sums o LEFT JOIN {name}_lat l ON {join_on.format(o='o').replace('s.', 'l.')} "
        f"LEFT JOIN {name}_ttft t ON {join_on.format(o='o').replace('s.', 't.')} "
        f"LEFT JOIN {name}_sess s ON {join_on.format(o='o')})"
    )


def duckdb_sql(path: Path, bucket: str | None) -> str:
    from llmobs_cli.core.report.refusals import HEAD_CHARS, combined_pattern

    # RE2 (DuckDB) has no (?-u:...) flag group; its \\b is ASCII-only anyway.
    pattern = combined_pattern().replace("(?-u:\\b)", "\\b")
    resp = "lower(response)"
    cites = (
        "CASE WHEN len(retrieved) > 0 THEN list_bool_or(list_transform(retrieved, lambda d: "
        f"coalesce(length(d.id) > 0 AND contains({resp}, lower(d.id)), false) OR "
        "coalesce(list_bool_or(list_transform(regexp_split_to_array(lower(d.content[1:1200]), '[.:;!?]\\s+')[1:6], "
        f"lambda s: length(s) >= 20 AND contains({resp}, trim(s[1:48], ' .,;:!?')))), false))) END"
    )
    p = "CASE WHEN long THEN {t} ELSE {p} END"
    cost = (
        "(greatest(inp - cached - cw, 0) * "
        + p.format(t="_t_in", p="_p_in")
        + " + cached * coalesce("
        + p.format(t="_t_cached", p="_p_cached")
        + ", "
        + p.format(t="_t_in", p="_p_in")
        + ")"
        + " + cw * coalesce("
        + p.format(t="_t_cw", p="_p_cw")
        + ", "
        + p.format(t="_t_in", p="_p_in")
        + ")"
        + " + (CASE WHEN reasoning > outp THEN outp + reasoning ELSE outp END) * "
        + p.format(t="_t_out", p="_p_out")
        + ") / 1e6"
    )
    bucket_col = f", date_trunc('{bucket}', timestamp) AS bucket" if bucket else ""
    levels = [([], "overall"), (["route", "model"], "groups")]
    if bucket:
        levels += [(["bucket"], "buckets"), (["bucket", "route", "model"], "bucket_groups")]
    return (
        "WITH " + _prices_cte(path) + ",\n"
        "base AS (SELECT route, model, provider, timestamp, latency_ms, ttft_ms, input_tokens, "
        "output_tokens, cached_tokens, reasoning_tokens, cache_write_tokens, cost_usd, status, session_id, "
        "1.0 / sample_rate AS w, coalesce(status, 'ok') <> 'error' AS ok, "
        f"coalesce(regexp_matches(substr(response, 1, {HEAD_CHARS}), {_sql_str(pattern)}), false) "
        "OR coalesce(finish_reason = 'content_filter', false) AS refusal, "
        f"{cites} AS cites{bucket_col} FROM read_parquet({_sql_str(_source(path))})),\n"
        "joined AS (SELECT b.*, p.* EXCLUDE (model, provider), coalesce(b.input_tokens, 0) AS inp, "
        "least(coalesce(b.cached_tokens, 0), coalesce(b.input_tokens, 0)) AS cached, "
        "least(coalesce(b.cache_write_tokens, 0), greatest(coalesce(b.input_tokens, 0) - least(coalesce(b.cached_tokens, 0), coalesce(b.input_tokens, 0)), 0)) AS cw, "
        "coalesce(b.output_tokens, 0) AS outp, coalesce(b.reasoning_tokens, 0) AS reasoning, "
        "(p._t_above IS NOT NULL AND coalesce(b.input_tokens, 0) > p._t_above) AS long "
        "FROM base b LEFT JOIN prices p ON b.model = p.model AND b.provider IS NOT DISTINCT FROM p.provider "
        "AND (p._from IS NULL OR b.timestamp >= p._from) AND (p._to IS NULL OR b.timestamp < p._to)),\n"
        "flagged AS MATERIALIZED (SELECT *, coalesce(cost_usd, CASE WHEN _p_in IS NOT NULL AND "
        f"(input_tokens IS NOT NULL OR output_tokens IS NOT NULL) THEN {cost} END, "
        "CASE WHEN status = 'error' AND input_tokens IS NULL AND output_tokens IS NULL THEN 0.0 END) AS cost FROM joined),\n"
        + ",\n".join(_level_sql(k, n) for k, n in levels)
        + "\nSELECT "
        + ", ".join(f"(SELECT count(*) FROM {n})" for _, n in levels)
        + ", (SELECT to_json(list(o)) FROM overall o), (SELECT to_json(list(g)) FROM groups g)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 2_000_000])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--print-sql", action="store_true", help="print the DuckDB query and exit")
    args = ap.parse_args()
    print("| workload | llmobs | DuckDB | llmobs / DuckDB |")
    print("|---|---|---|---|")
    for rows in args.rows:
        path = generated(rows)
        for bucket in (None, "day"):
            sql_file = DATA / f"report_{rows}_{bucket or 'all'}.sql"
            sql_file.write_text(duckdb_sql(path, bucket))
            if args.print_sql:
                print(sql_file.read_text())
                return
            llmobs = [
                sys.executable,
                "-m",
                "llmobs_cli",
                "report",
                str(path),
                "--by",
                "route,model",
                "-f",
                "json",
            ]
            if bucket:
                llmobs += ["--bucket", bucket]
            duck = [
                sys.executable,
                "-c",
                "import duckdb, sys; print(duckdb.sql(open(sys.argv[1]).read()).fetchall())",
                str(sql_file),
            ]
            ta, tb, ratios = alternate(("llmobs", llmobs), ("duckdb", duck), args.runs)
            label = (
                f"report --by route,model{' --bucket ' + bucket if bucket else ''}, {rows:,} rows"
            )
            print_row(label, ta, tb, ratios)


if __name__ == "__main__":
    main()
