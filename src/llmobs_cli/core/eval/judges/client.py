"""The judge client: async calls to any OpenAI-compatible endpoint, with our own retries.

The ``openai`` client is built with ``max_retries=0``: this module owns the retry loop so
it can

* retry 429 (rate limit), 5xx, 408/409, timeouts and connection errors with jittered
  exponential backoff, honouring ``Retry-After``/``retry-after-ms``;
* fail fast on 401/403, on quota exhaustion (429 ``insufficient_quota``) and on 404 (a
  wrong model or base URL): the whole run stops, work already done stays cached, and the
  caller turns :attr:`RunResult.fatal` into a :class:`~llmobs_cli.errors.ServiceError`;
* fall back from ``response_format: json_schema`` to ``json_object`` (with the schema spelled
  out in the prompt, then validated) the first time the endpoint rejects the schema with a
  400 — once per run, for every later call;
* re-ask once when the answer is malformed, then record an error (never a low score);
* adapt concurrency (AIMD): halve the number of calls in flight on a 429, grow it back by
  one per window of successes, never above the configured bound;
* stop cleanly before ``max_cost_usd`` would be exceeded: the cost of each call is
  estimated (tokens × price) and reserved before it is sent.

Secrets: the API key is handed to the client and never stored, logged or put into an
error; messages from the server are scrubbed of anything that looks like a key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import email.utils
import random
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from llmobs_cli.core.eval.judges.cache import JudgmentCache
from llmobs_cli.core.eval.judges.prompts import Criterion, MalformedOutput

#: progress(done, cached, failed, cost_usd, total)
Progress = Callable[[int, int, int, float, int], None]


@dataclass
class Task:
    """One call: a judgment (``criterion`` set) or a generation (self-consistency)."""

    key: str
    messages: list[dict[str, str]]
    model: str
    criterion: Criterion | None = None
    temperature: float = 0.0
    max_tokens: int | None = None
    est_input_tokens: int = 0
    est_output_tokens: int = 200


@dataclass
class Outcome:
    ok: bool
    score: float | None = None
    raw_score: float | None = None
    explanation: str | None = None
    content: str | None = None
    error: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float | None = None
    attempts: int = 0
    cached: bool = False
    skipped: bool = False  # not attempted: max-cost reached or the run stopped

    def cache_value(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "raw_score": self.raw_score,
            "explanation": self.explanation,
            "content": self.content,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_ms,
            "attempts": self.attempts,
        }

    @classmethod
    def from_cache(cls, value: dict[str, Any]) -> Outcome:
        return cls(
            ok=True,
            score=value.get("score"),
            raw_score=value.get("raw_score"),
            explanation=value.get("explanation"),
            content=value.get("content"),
            input_tokens=int(value.get("input_tokens") or 0),
            output_tokens=int(value.get("output_tokens") or 0),
            cost_usd=float(value.get("cost_usd") or 0.0),
            latency_ms=value.get("latency_ms"),
            attempts=int(value.get("attempts") or 0),
            cached=True,
        )


@dataclass
class ClientSettings:
    base_url: str | None = None
    api_key: str | None = None
    timeout_s: float = 60.0
    max_retries: int = 6
    concurrency: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    input_price_per_million: float = 0.0
    output_price_per_million: float = 0.0
    max_cost_usd: float | None = None
    seed: int | None = None  # jitter seed (tests)


@dataclass
class RunResult:
    outcomes: list[Outcome]
    calls: int = 0  # HTTP requests sent (retries included)
    cached: int = 0
    failed: int = 0
    skipped: int = 0
    cost_usd: float = 0.0
    fatal: str | None = None
    stopped: str | None = None  # why the run stopped early (max cost)
    mode: str = "json_schema"
    service_failures: int = 0  # tasks that failed after every retry


class FatalError(Exception):
    """Auth, quota or a wrong endpoint: stop the run."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None, throttled: bool) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.throttled = throttled


_KEYLIKE = re.compile(r"(sk-|key-|Bearer\s+)[A-Za-z0-9_\-\.\*]{4,}")


def scrub(text: str, secret: str | None = None) -> str:
    """Remove the API key (and anything key-shaped) from a message."""
    if secret:
        text = text.replace(secret, "***")
    return _KEYLIKE.sub(lambda m: m.group(1) + "***", text)


def retry_after_seconds(headers: Any) -> float | None:
    """``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date) → seconds."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        value = headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Limiter:
    """AIMD concurrency bound: halve on throttling, +1 after ``limit`` successes."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self._ok = 0
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def release(self) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._cond.notify_all()

    def throttled(self) -> None:
        self.limit = max(1, self.limit // 2)
        self._ok = 0

    def succeeded(self) -> None:
        if self.limit < self.maximum:
            self._ok += 1
            if self._ok >= self.limit:
                self.limit += 1
                self._ok = 0


def make_client(settings: ClientSettings) -> Any:
    """An ``AsyncOpenAI`` with our timeout and no built-in retries.

    ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` are read by the client itself when the settings
    leave them unset. A local endpoint given explicitly needs no key.
    """
    import openai

    kwargs: dict[str, Any] = {"max_retries": 0, "timeout": settings.timeout_s}
    if settings.base_url:
        kwargs["base_url"] = settings.base_url
    if settings.api_key:
        kwargs["api_key"] = settings.api_key
    try:
        return openai.AsyncOpenAI(**kwargs)
    except openai.OpenAIError:
        if settings.base_url:
            kwargs["api_key"] = "not-needed"
            return openai.AsyncOpenAI(**kwargs)
        raise


#: The endpoint the ``openai`` client uses when neither the settings nor
#: ``OPENAI_BASE_URL`` name one (the CLI resolves the variable; the core reads no env).
DEFAULT_BASE_URL = "https://api.openai.com/v1"


class JudgeRunner:
    """Runs tasks concurrently against one client; see the module docstring."""

    def __init__(self, client: Any, settings: ClientSettings, cache: JudgmentCache) -> None:
        """``client`` is an ``AsyncOpenAI`` or a zero-argument factory of one, called only
        when some task is not cached (a fully cached rerun never imports ``openai``)."""
        self._client = client
        self.s = settings
        self.cache = cache
        self.mode = "json_schema"
        self._rng = random.Random(settings.seed)
        self._secret = settings.api_key

    @property
    def client(self) -> Any:
        if callable(self._client) and not hasattr(self._client, "chat"):
            self._client = self._client()
        if self._secret is None:
            self._secret = getattr(self._client, "api_key", None)
        return self._client

    def estimate_cost(self, task: Task) -> float:
        return (
            task.est_input_tokens * self.s.input_price_per_million
            + task.est_output_tokens * self.s.output_price_per_million
        ) / 1e6

    def run(self, tasks: Sequence[Task], progress: Progress | None = None) -> RunResult:
        return asyncio.run(self._run(tasks, progress))

    async def _run(self, tasks: Sequence[Task], progress: Progress | None) -> RunResult:
        result = RunResult(outcomes=[Outcome(ok=False, skipped=True) for _ in tasks])
        total = len(tasks)
        pending: list[int] = []
        for i, t in enumerate(tasks):
            hit = self.cache.get(t.key)
            if hit is not None:
                result.outcomes[i] = Outcome.from_cache(hit)
                result.cached += 1
            else:
                pending.append(i)
        state = {"done": result.cached, "reserved": 0.0, "paid": 0}
        if progress:
            progress(state["done"], result.cached, 0, 0.0, total)
        limiter = _Limiter(self.s.concurrency)
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmobs-cache")
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()

        async def one(i: int) -> None:
            task = tasks[i]
            await limiter.acquire()
            try:
                if stop.is_set():
                    return
                # The static estimate (prompt length / 4) can be far off for a model that
                # counts tokens differently: never estimate below the mean actual cost.
                done_calls = state["paid"]
                est = max(
                    self.estimate_cost(task),
                    result.cost_usd / done_calls if done_calls else 0.0,
                )
                cap = self.s.max_cost_usd
                if cap is not None and result.cost_usd + state["reserved"] + est > cap:
                    result.stopped = (
                        f"stopped before exceeding --max-cost ${cap:g} "
                        f"(spent ${result.cost_usd:.4f})"
                    )
                    return
                state["reserved"] += est
                try:
                    out = await self._call(task, limiter, result)
                finally:
                    state["reserved"] -= est
            except FatalError as exc:
                result.fatal = str(exc)
                stop.set()
                return
            finally:
                await limiter.release()
            result.outcomes[i] = out
            result.cost_usd += out.cost_usd
            state["paid"] += 1
            if out.ok:
                await loop.run_in_executor(writer, self.cache.put, task.key, out.cache_value())
            else:
                result.failed += 1
            state["done"] += 1
            if progress:
                progress(int(state["done"]), result.cached, result.failed, result.cost_usd, total)

        # A fixed pool of workers pulls from a queue: at most `concurrency` coroutines ever
        # wait on the limiter, so a release wakes a handful, not every pending task.
        queue = collections.deque(pending)

        async def worker() -> None:
            while queue and not stop.is_set():
                await one(queue.popleft())

        try:
            await asyncio.gather(*(worker() for _ in range(min(self.s.concurrency, len(queue)))))
        finally:
            writer.shutdown(wait=True)
            close = getattr(self._client, "close", None) if hasattr(self._client, "chat") else None
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()
        result.skipped = sum(1 for o in result.outcomes if o.skipped)
        result.mode = self.mode
        result.service_failures = sum(
            1
            for o in result.outcomes
            if not o.ok
            and not o.skipped
            and o.error
            and o.error.startswith("judge endpoint failed")
        )
        return result

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            # The server knows best; cap only absurd values (at 60 s, or backoff_max_s).
            return min(retry_after, max(self.s.backoff_max_s, 60.0)) * (
                1 + 0.1 * self._rng.random()
            )
        base = min(self.s.backoff_max_s, self.s.backoff_base_s * 2 ** (attempt - 1))
        return base * (0.5 + self._rng.random())  # jitter: 0.5x..1.5x

    async def _call(self, task: Task, limiter: _Limiter, result: RunResult) -> Outcome:
        import openai

        attempts = 0
        reasked = False
        messages = list(task.messages)
        in_tok = out_tok = 0
        cost = 0.0
        started = time.perf_counter()
        while True:
            attempts += 1
            mode = self.mode
            req: dict[str, Any] = {
                "model": task.model,
                "messages": self._with_instruction(messages, task.criterion, mode),
                "temperature": task.temperature,
            }
            if task.max_tokens is not None:
                req["max_tokens"] = task.max_tokens
            if task.criterion is not None:
                req["response_format"] = task.criterion.response_format(mode)  # type: ignore[arg-type]
            result.calls += 1
            try:
                # client.post with the plain body: same auth, headers and typed errors as
                # chat.completions.create, without its per-call TypedDict transform and
                # pydantic parsing (~4 ms CPU per call, twice our whole budget).
                resp = await self.client.post("/chat/completions", cast_to=object, body=req)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                raise FatalError(self._describe("authentication failed", exc)) from None
            except openai.NotFoundError as exc:
                raise FatalError(
                    self._describe(f"model '{task.model}' or endpoint not found", exc)
                ) from None
            except openai.RateLimitError as exc:
                if _is_quota(exc):
                    raise FatalError(self._describe("quota exhausted", exc)) from None
                limiter.throttled()
                err: _Retryable | None = _Retryable(
                    self._describe("rate limited", exc),
                    retry_after_seconds(exc.response.headers),
                    True,
                )
            except openai.BadRequestError as exc:
                if task.criterion is not None and mode == "json_schema" and _rejects_schema(exc):
                    self.mode = "json_object"  # once per run: every later call uses it
                    continue
                return Outcome(
                    ok=False,
                    error=self._describe("judge rejected the request", exc),
                    attempts=attempts,
                    input_tokens=in_tok,
                    output_tokens=out_tok,
                    cost_usd=cost,
                )
            except openai.APITimeoutError:
                err = _Retryable(f"timed out after {self.s.timeout_s:g} s", None, False)
            except openai.APIConnectionError as exc:
                err = _Retryable(scrub(f"connection error ({exc})", self._secret), None, False)
            except openai.APIStatusError as exc:
                code = exc.status_code
                if code >= 500 or code in (408, 409):
                    err = _Retryable(
                        self._describe(f"HTTP {code}", exc),
                        retry_after_seconds(exc.response.headers),
                        False,
                    )
                else:
                    return Outcome(
                        ok=False,
                        error=self._describe(f"HTTP {code}", exc),
                        attempts=attempts,
                        input_tokens=in_tok,
                        output_tokens=out_tok,
                        cost_usd=cost,
                    )
            else:
                err = None
            if err is not None:
                if attempts > self.s.max_retries:
                    return Outcome(
                        ok=False,
                        attempts=attempts,
                        error=f"judge endpoint failed after {attempts} attempts: {err}",
                        input_tokens=in_tok,
                        output_tokens=out_tok,
                        cost_usd=cost,
                    )
                await asyncio.sleep(self._backoff(attempts, err.retry_after))
                continue
            limiter.succeeded()
            if not isinstance(resp, dict):
                resp = {}
            usage = resp.get("usage") or {}
            it = int(usage.get("prompt_tokens") or 0) if isinstance(usage, dict) else 0
            ot = int(usage.get("completion_tokens") or 0) if isinstance(usage, dict) else 0
            in_tok += it
            out_tok += ot
            cost += (
                it * self.s.input_price_per_million + ot * self.s.output_price_per_million
            ) / 1e6
            content = _content(resp)
            latency = (time.perf_counter() - started) * 1000.0
            if task.criterion is None:
                if content is None:
                    return Outcome(
                        ok=False,
                        error="empty generation",
                        attempts=attempts,
                        input_tokens=in_tok,
                        output_tokens=out_tok,
                        cost_usd=cost,
                    )
                return Outcome(
                    ok=True,
                    content=content,
                    input_tokens=in_tok,
                    output_tokens=out_tok,
                    cost_usd=cost,
                    latency_ms=latency,
                    attempts=attempts,
                )
            try:
                score, raw, why = task.criterion.parse(content)
            except MalformedOutput as exc:
                if not reasked:
                    reasked = True
                    messages = [
                        *task.messages,
                        {"role": "assistant", "content": (content or "")[:2000]},
                        {
                            "role": "user",
                            "content": (
                                f"That answer is not valid ({exc}). "
                                + task.criterion.json_instruction()
                            ),
                        },
                    ]
                    continue
                return Outcome(
                    ok=False,
                    error=f"malformed judge output: {exc}",
                    attempts=attempts,
                    input_tokens=in_tok,
                    output_tokens=out_tok,
                    cost_usd=cost,
                    latency_ms=latency,
                    content=(content or "")[:500],
                )
            return Outcome(
                ok=True,
                score=score,
                raw_score=raw,
                explanation=why,
                content=None,
                input_tokens=in_tok,
                output_tokens=out_tok,
                cost_usd=cost,
                latency_ms=latency,
                attempts=attempts,
            )

    @staticmethod
    def _with_instruction(
        messages: list[dict[str, str]], criterion: Criterion | None, mode: str
    ) -> list[dict[str, str]]:
        if criterion is None or mode == "json_schema":
            return messages
        # json_object needs the word JSON and the shape in the prompt (the endpoint cannot
        # enforce the schema): say it in the system message.
        note = criterion.json_instruction()
        if messages and messages[0]["role"] == "system":
            return [
                {"role": "system", "content": messages[0]["content"] + "\n\n" + note},
                *messages[1:],
            ]
        return [{"role": "system", "content": note}, *messages]

    def _describe(self, what: str, exc: Any) -> str:
        status = getattr(exc, "status_code", None)
        msg = ""
        body = getattr(exc, "body", None)
        if isinstance(body, dict):
            inner = body.get("error", body) if isinstance(body.get("error", body), dict) else body
            msg = str(inner.get("message") or "")
        if not msg:
            msg = str(getattr(exc, "message", "") or "")
        text = f"{what} (HTTP {status}): {msg}" if status else f"{what}: {msg}"
        return scrub(text.strip().rstrip(":"), self._secret)


def _content(resp: dict[str, Any]) -> str | None:
    """The first choice's message content of a chat.completion body (None if absent)."""
    try:
        value = resp["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) else None


def _is_quota(exc: Any) -> bool:
    body = getattr(exc, "body", None)
    blob = str(body).lower() if body is not None else ""
    return "insufficient_quota" in blob or "exceeded your current quota" in blob


def _rejects_schema(exc: Any) -> bool:
    blob = (str(getattr(exc, "body", "")) + " " + str(getattr(exc, "message", ""))).lower()
    return any(s in blob for s in ("response_format", "json_schema", "schema", "structured"))


__all__ = [
    "DEFAULT_BASE_URL",
    "ClientSettings",
    "FatalError",
    "JudgeRunner",
    "Outcome",
    "Progress",
    "RunResult",
    "Task",
    "make_client",
    "retry_after_seconds",
    "scrub",
]
