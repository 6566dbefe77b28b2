"""No exit 70 from anything a user can do: malformed files and random options, fuzzed.

Property-based (Hypothesis) tests through the real CLI entry point, in-process (the error
boundary of ``llmobs_cli.cli.app.main`` included, so exit codes are the user's):

* every reader gets malformed input — truncated and invalid JSON, wrong types, binary
  junk, empty files, huge numbers, NaN, wrong nesting, Parquet with wrong column types,
  other tools' export shapes with random content — and must answer exit 0 or 2, an exit
  2 saying on its first line which file is at fault, never a traceback;
* every command (report, drift, dashboard, validate, convert, sample, eval --dry-run,
  eval summarize, review, generate) gets random combinations of plausible and implausible
  option values and must exit 0, 1, 2 or 3 (never 70) without a traceback, on stderr at
  most a few lines (one for anything but a list of bad rows).

Runtime is bounded (a few dozen examples each, well under a minute on a quiet machine);
``LLMOBS_FUZZ_EXAMPLES=500`` runs more, with a random seed, to hunt for new cases. The
default run is derandomised so that CI is reproducible.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmobs_cli.cli.app import main

EXAMPLES = int(os.environ.get("LLMOBS_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=EXAMPLES or 30,
    deadline=None,
    derandomize=not EXAMPLES,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ALLOWED = {0, 1, 2, 3}

GOOD: dict[str, Any] = {
    "trace_id": "t1",
    "span_id": "s1",
    "timestamp": "2026-01-02T03:04:05Z",
    "model": "gpt-4o",
    "latency_ms": 120,
    "route": "chat",
    "prompt": "hello there",
    "response": "hi",
    "input_tokens": 10,
    "output_tokens": 3,
}
FIELDS = [
    "trace_id",
    "span_id",
    "timestamp",
    "model",
    "latency_ms",
    "end_time",
    "ttft_ms",
    "route",
    "sample_rate",
    "status",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "messages",
    "retrieved",
    "metadata",
    "params",
    "tags",
    "logprobs",
    "response",
    "prompt",
    "session_id",
    "finish_reason",
]


def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    """The CLI in-process through its console entry point; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old = os.getcwd()
    code = 0
    try:
        if cwd is not None:
            os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
            except SystemExit as exc:
                code = int(exc.code or 0) if not isinstance(exc.code, str) else 1
    finally:
        os.chdir(old)
    return code, out.getvalue(), err.getvalue()


def check(code: int, err: str, args: tuple[str, ...]) -> None:
    """The behaviour every run must have, whatever it was given."""
    assert code in ALLOWED, f"exit {code} for llmobs {' '.join(args)}:\n{err}"
    assert "Traceback" not in err, f"traceback for llmobs {' '.join(args)}:\n{err}"
    assert "internal error" not in err, f"llmobs {' '.join(args)}:\n{err}"


# --- malformed content ---------------------------------------------------------------------

_TIMES = st.sampled_from(
    [
        "2026-01-02T03:04:05Z",
        "2026-01-02",
        "2026-13-45T99:00:00Z",
        "yesterday",
        "",
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "2026-01-02T03:04:05+14:00",
    ]
)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    _TIMES,
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A mostly good record with a few fields replaced by anything at all."""
    rec = dict(GOOD)
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        rec[name] = draw(_VALUES)
    for name in draw(st.lists(st.sampled_from(list(GOOD)), max_size=1)):
        rec.pop(name, None)
    return rec


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True, default=str)


@st.composite
def jsonl_lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["record", "record", "record", "truncated", "junk", "other"]))
    if kind == "record":
        return _dumps(draw(records())).encode()
    if kind == "truncated":
        text = _dumps(draw(records()))
        return text[: draw(st.integers(1, max(1, len(text) - 1)))].encode()
    if kind == "junk":
        return draw(st.binary(max_size=24)).replace(b"\n", b" ")
    return _dumps(draw(_VALUES)).encode()


@st.composite
def jsonl_files(draw: st.DrawFn) -> tuple[str, bytes]:
    lines = draw(st.lists(jsonl_lines(), max_size=6))
    data = b"\n".join(lines) + (b"\n" if lines and draw(st.booleans()) else b"")
    suffix = draw(st.sampled_from([".jsonl", ".jsonl", ".ndjson", ".json", ".jsonl.gz"]))
    if suffix.endswith(".gz") and draw(st.booleans()):
        data = gzip.compress(data)
    return suffix, data


#: Shapes other tools export, filled with random content (their readers' input).
_FOREIGN = st.one_of(
    st.builds(lambda v: {"resourceSpans": v}, _VALUES),
    st.builds(
        lambda v, w: {"resourceSpans": [{"scopeSpans": [{"spans": [v, w]}]}]},
        _VALUES,
        _VALUES,
    ),
    st.builds(lambda v: {"data": v, "meta": {}}, _VALUES),
    st.builds(lambda v: [{"id": "x", "type": "GENERATION", "traceId": "t", "input": v}], _VALUES),
    st.builds(lambda v: [{"run_type": "llm", "id": "r", "trace_id": "t", "inputs": v}], _VALUES),
    st.builds(lambda v: [{"request_id": "r", "request_body": v, "response_body": v}], _VALUES),
)

_DTYPES: dict[str, tuple[pl.DataType, st.SearchStrategy[Any]]] = {
    "int": (pl.Int64(), st.integers(-(2**63), 2**63 - 1)),
    "float": (pl.Float64(), st.floats(allow_nan=True, allow_infinity=True)),
    "str": (pl.String(), st.text(max_size=6) | _TIMES),
    "bool": (pl.Boolean(), st.booleans()),
    "list": (pl.List(pl.Int64()), st.lists(st.integers(-5, 5), max_size=2)),
    "struct": (pl.Struct({"a": pl.Int64()}), st.builds(lambda a: {"a": a}, st.integers(-5, 5))),
    "datetime": (
        pl.Datetime("us", "UTC"),
        st.datetimes(timezones=st.just(__import__("datetime").UTC)),
    ),
}


@st.composite
def parquet_frames(draw: st.DrawFn) -> pl.DataFrame:
    """Canonical column names, some with the wrong type, one to four rows."""
    n = draw(st.integers(1, 4))
    cols: dict[str, pl.Series] = {}
    base = pl.DataFrame([GOOD] * n).with_columns(
        pl.col("timestamp").str.to_datetime(time_zone="UTC")
    )
    for name in base.columns:
        cols[name] = base[name]
    for name in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(sorted(_DTYPES)))
        dtype, values = _DTYPES[kind]
        vals = draw(st.lists(st.none() | values, min_size=n, max_size=n))
        cols[name] = pl.Series(name, vals, dtype=dtype)
    for name in draw(st.lists(st.sampled_from(list(GOOD)), max_size=1)):
        cols.pop(name, None)
    return pl.DataFrame(list(cols.values()))


@st.composite
def bad_files(draw: st.DrawFn) -> tuple[str, bytes | pl.DataFrame]:
    kind = draw(st.sampled_from(["jsonl", "jsonl", "parquet", "foreign", "bytes", "empty"]))
    if kind == "jsonl":
        return draw(jsonl_files())
    if kind == "parquet":
        return ".parquet", draw(parquet_frames())
    if kind == "foreign":
        return ".json", _dumps(draw(_FOREIGN)).encode()
    if kind == "bytes":
        suffix = draw(st.sampled_from([".parquet", ".jsonl", ".json", ".jsonl.zst", ".csv"]))
        return suffix, draw(st.binary(max_size=64))
    return draw(st.sampled_from([".jsonl", ".parquet", ".json"])), b""


def write(directory: Path, name: str, content: bytes | pl.DataFrame) -> Path:
    path = directory / name
    if isinstance(content, pl.DataFrame):
        content.write_parquet(path)
    else:
        path.write_bytes(content)
    return path


# --- readers ----------------------------------------------------------------------------------

READ_FROM = [
    "auto",
    "auto",
    "canonical",
    "parquet",
    "otlp",
    "openinference",
    "langfuse",
    "langsmith",
    "helicone",
]


@FUZZ
@given(
    file=bad_files(),
    command=st.sampled_from(["validate", "report", "validate", "convert"]),
    source=st.sampled_from(READ_FROM),
    skip=st.booleans(),
)
def test_every_reader_answers_malformed_input_with_exit_0_or_2_naming_the_file(
    file: tuple[str, bytes | pl.DataFrame], command: str, source: str, skip: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        path = write(d, "input" + file[0], file[1])
        args = [command, str(path), "--from", source]
        if skip:
            args += ["--on-error", "skip"]
        if command == "convert":
            args += ["-o", str(d / "out.parquet")]
        code, _, err = run(*args)
        check(code, err, tuple(args))
        assert code in (0, 2), err
        if code == 2:
            first = err.splitlines()[0] if err.strip() else ""
            # An input problem names the file (a --from that cannot apply names --from).
            assert "input" in first or "--from" in first, err


# --- commands × options -------------------------------------------------------------------------

WINDOWS = [
    "7d",
    "last_week",
    "last_month",
    "2026-01-01..2026-01-03",
    "2026-01-03..2026-01-01",
    "garbage",
    "0d",
    "1e9d",
    "..",
    "2026-01-02T03:04:05Z..",
    "all",
    "99999d",
    "9999999d",
    "..99999999999d",
    "0001-01-01..0001-01-02",
]
TIMES = [
    "2026-01-01",
    "7d",
    "0s",
    "not-a-time",
    "2026-01-02T03:04:06Z",
    "2100-01-01",
    "1e9d",
    "9999999d",
    "99999999999d",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
]
FIELD_NAMES = [
    "route",
    "model",
    "rout",
    "metadata.x",
    "metadata.",
    "session_id",
    "route,model",
    ",",
    "customer_id",
    "metadata.tenant",
    "timestamp",
    "messages",
]
RULES = [
    "latency_ms.p99 > 1",
    "route=chat:error_rate > 0",
    "x",
    "route=zzz:calls > 0",
    "calls >= 0",
    "route=*:latency_ms.p50 > 1s",
    "cost_usd > $nan",
    "a=b=c:calls > 1",
    "error_rate > 5%",
    "latency_ms.p99 > 1e400",
]
OUTPUTS = [
    "out.json",
    "out.parquet",
    "out.html",
    "out.csv",
    "out.md",
    "out.txt",
    "nodir/x.json",
    "out",
    ".",
    "t.jsonl",
]


def _opt(name: str, values: list[str]) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), st.sampled_from(values).map(lambda v: [name, v]))


def _options(*pairs: tuple[str, list[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*(_opt(n, v) for n, v in pairs)).map(
        lambda parts: [x for p in parts for x in p]
    )


COMMON = [
    ("--format", ["table", "json", "markdown", "csv"]),
    ("--on-error", ["fail", "skip"]),
    ("--now", TIMES),
]
COMMANDS: dict[str, st.SearchStrategy[list[str]]] = {
    "report": _options(
        ("--by", FIELD_NAMES),
        ("--bucket", ["hour", "day", "week", "month"]),
        ("--fail-on", RULES),
        ("--since", TIMES),
        ("--until", TIMES),
        ("-o", OUTPUTS),
        *COMMON,
    ),
    "drift": _options(
        ("--current", WINDOWS),
        ("--baseline", [*WINDOWS, "BASE"]),
        ("--by", FIELD_NAMES),
        (
            "--features",
            [
                "prompt_length",
                "language,topic",
                "bogus",
                "metadata.tenant",
                "route",
                "latency_ms",
                "response_length,finish_reason",
            ],
        ),
        ("-o", OUTPUTS),
        *COMMON,
    ),
    "dashboard": _options(
        ("--current", WINDOWS),
        ("--baseline", WINDOWS),
        ("--since", TIMES),
        ("--until", TIMES),
        ("--bucket", ["hour", "day", "week"]),
        ("--now", TIMES),
    ).map(lambda o: [*o, "-o", "dash.html"]),
    "validate": _options(*COMMON),
    "convert": _options(
        ("--to", ["parquet", "jsonl", "csv"]),
        ("--partition-by", ["date", "route"]),
        ("--on-error", ["fail", "skip"]),
    ).flatmap(
        lambda o: st.sampled_from(["conv.parquet", "conv.jsonl", "convdir", "conv.txt"]).map(
            lambda out: [*o, "-o", out]
        )
    ),
    "sample": _options(
        ("--rate", ["chat=0.5", "chatt=0.5", "chat=0", "chat=2", "chat", "=0.5", "chat=nan"]),
        ("--default-rate", ["0.5", "0", "1", "-1", "nan"]),
        ("--on-error", ["fail", "skip"]),
    ).flatmap(
        lambda o: st.sampled_from(["s.parquet", "s.jsonl.gz", "s.txt"]).map(
            lambda out: [*o, "-o", out]
        )
    ),
    "eval": _options(
        ("--by", FIELD_NAMES),
        ("--budget", ["1", "5", "0", "-3"]),
        ("--evaluators", ["relevance", "relevnce", "reference", "faithfulness,reference", ""]),
        ("--current", WINDOWS),
        ("--baseline", WINDOWS),
        ("--since", TIMES),
        ("--allocation", ["equal", "neyman", "x"]),
        ("--max-cost", ["0", "1", "-1"]),
        *COMMON,
    ).map(lambda o: [*o, "--dry-run"]),
    "generate": _options(
        ("--rows", ["0", "1", "30", "-1", "x"]),
        ("--seed", ["0", "7", "-1"]),
        ("--days", ["0", "1", "3"]),
        ("--start", TIMES),
        ("--drift-after", TIMES),
        ("--drift-kinds", ["length", "bogus", ""]),
    ),
    "calls": _options(
        (
            "--where",
            [
                "route == 'chat'",
                "rout == 'chat'",
                "latency_ms > 1e400",
                "((",
                "x ==",
                "metadata.tenant == 'a'",
                "latency_ms > 'a'",
                "route in ('chat',)",
            ],
        ),
        ("--sort", ["latency_ms", "latncy_ms", "-cost_usd", "route", "metadata.tenant"]),
        ("--top", ["0", "1", "-1", "99999999999"]),
        ("--since", TIMES),
        *COMMON,
    ),
    "show": _options(("--session", ["s1", "zzz"]), ("--format", ["table", "json"])),
    "plan": _options(
        ("--detect", ["0.05", "5%", "0", "-1", "2", "x", "nan"]),
        ("--within", ["24h", "7d", "0h", "x", "9999999d"]),
        ("--power", ["0.8", "0", "1", "2", "nan"]),
        ("--alpha", ["0.05", "0", "1"]),
        ("--max-cost-per-day", ["1", "0", "-1"]),
        ("--since", TIMES),
        ("--until", TIMES),
        *COMMON,
    ).map(
        lambda o: (
            o
            if "--detect" in o and "--within" in o
            else [*o, "--detect", "0.05", "--within", "24h"]
        )
    ),
}

_GOOD_ROWS = [
    {
        **GOOD,
        "trace_id": f"t{i}",
        "span_id": f"s{i}",
        "route": ("chat", "search")[i % 2],
        "timestamp": f"2026-01-{1 + i % 3:02d}T0{i % 10}:00:00Z",
        "metadata": {"tenant": "a"},
        "latency_ms": 100 + i,
    }
    for i in range(40)
]


@settings(FUZZ, max_examples=EXAMPLES or 60)
@given(
    command=st.sampled_from(sorted(COMMANDS)),
    data=st.data(),
    input_kind=st.sampled_from(["good", "good", "good", "bad"]),
)
def test_every_command_with_random_options_never_exits_70(
    command: str, data: st.DataObject, input_kind: str
) -> None:
    options = data.draw(COMMANDS[command], label="options")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        if input_kind == "good":
            path = d / "t.jsonl"
            path.write_text("\n".join(json.dumps(r) for r in _GOOD_ROWS) + "\n")
        else:
            suffix, content = data.draw(bad_files(), label="file")
            path = write(d, "t" + suffix, content)
        base = d / "base.jsonl"
        base.write_text("\n".join(json.dumps(r) for r in _GOOD_ROWS[:20]) + "\n")
        options = [str(base) if o == "BASE" else o for o in options]
        if command == "generate":
            args = ("generate", "gen.jsonl", *options)
        elif command == "show":
            args = (
                "show",
                data.draw(st.sampled_from(["t1", "nope", ""])),
                "--traces",
                str(path),
                *options,
            )
        else:
            args = (command, str(path), *options)
        code, _, err = run(*args, cwd=d)
        check(code, err, args)


@FUZZ
@given(
    evals=bad_files(),
    labels=jsonl_files(),
    action=st.sampled_from(["export", "import", "sum", "send"]),
)
def test_review_and_eval_summarize_on_malformed_files_never_exit_70(
    evals: tuple[str, bytes | pl.DataFrame], labels: tuple[str, bytes], action: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        e = write(d, "evals" + evals[0], evals[1])
        lab = write(d, "labels.jsonl", labels[1])
        if action == "export":
            args: tuple[str, ...] = ("review", "export", str(e), "-o", str(d / "queue"))
        elif action == "import":
            args = ("review", "import", str(lab), "--evals", str(e), "-o", str(d / "o.parquet"))
        elif action == "send":
            to = ["otlp", "langfuse", "langsmith"][len(labels[1]) % 3]
            args = ("export", str(e), "--to", to, "--dry-run", "-o", str(d / "bodies.json"))
        else:
            args = ("eval", "summarize", str(e))
        code, _, err = run(*args)
        check(code, err, args)


def test_huge_and_nan_numbers_are_bad_rows_not_crashes(tmp_path: Path) -> None:
    """The corner values named in the issue, once each, deterministically."""
    lines = [
        _dumps({**GOOD, "latency_ms": math.nan}),
        _dumps({**GOOD, "latency_ms": 1e308 * 10}),
        _dumps({**GOOD, "input_tokens": 2**80}),
        _dumps({**GOOD, "metadata": [1, 2]}),
        _dumps({**GOOD, "messages": {"role": "user"}}),
        _dumps({**GOOD, "timestamp": 12345}),
    ]
    path = tmp_path / "odd.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for command in ("validate", "report", "drift", "eval"):
        dry = ["--dry-run", "--base-url", "http://127.0.0.1:9/v1"] if command == "eval" else []
        args = (command, str(path), *dry)
        code, _, err = run(*args)
        check(code, err, args)
        assert code == 2 and err.startswith(f"{path}:"), err


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".json", ".jsonl.gz"])
def test_binary_junk_is_exit_2_naming_the_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(bytes(range(256)) * 4)
    code, _, err = run("report", str(path))
    assert code == 2 and str(path) in err.splitlines()[0], err
