"""The judge client: async calls to any OpenAI-compatible endpoint, with our own retries.

The ``openai`` client is built with ``max_retries=0``: this module owns the retry loop.
Every failed call is classified by what it means (:mod:`.classify`), not by its status
alone, because gateways (LiteLLM, Portkey, OpenRouter) and local servers (vLLM, Ollama,
llama.cpp) say "no" differently from OpenAI:

* **configuration errors stop the run at once** — a wrong model name, a wrong or missing
  key, a parameter the server does not know, quota exhausted — whatever the status code
  (LiteLLM answers a wrong model with a 400): :attr:`RunResult.fatal` names the endpoint,
  the model and the server's own message, and the caller exits 3;
* **a run that judges nothing is not a success**: when all of the first ``fail_first``
  judgments fail, or more than ``max_failure_rate`` of them once ``fail_first`` are done,
  the run stops (fatal) with the most common error;
* **a circuit breaker** for an endpoint that cannot be reached: ``breaker_failures``
  consecutive connection failures or time-outs, or ``breaker_s`` seconds of nothing but
  them, stop the run naming the URL (a connect time-out of ``connect_timeout_s`` keeps a
  black-holed address from hanging);
* **the response-format ladder** (:mod:`.formats`): ``json_schema`` → ``json_object`` →
  no ``response_format``, one step down when the server rejects the parameter or fails its
  own schema validation; the step that works is remembered per endpoint + model in the
  cache directory;
* **sampling parameters**: ``temperature`` is not sent to models known to reject it
  (:attr:`Task.rejects`, from the price table's metadata); a server that rejects it anyway
  is asked once more without it, and that too is remembered;
* **rate limits**: the wait the server asks for (``retry-after``, ``retry-after-ms``,
  ``x-ratelimit-reset-*``, LiteLLM's ``llm_provider-*``: :mod:`.ratelimit`) is honoured
  within a total wait budget per judgment (``wait_budget_s``) instead of a fixed attempt
  count; the notice callback says "waiting 58 s (rate limited by the server)";
* 5xx, 408/409, time-outs and connection errors are retried with jittered exponential
  backoff (at most ``max_retries`` times, within the same wait budget);
* a malformed answer is re-asked once, then recorded as an error (never a low score);
* concurrency adapts (AIMD): halved on a 429, grown back by one per window of successes;
* ``max_cost_usd``: each call's cost is reserved before it is sent (the larger of the
  static estimate and the most expensive call so far), so calls in flight can never push
  the spend past the cap; every call is priced at its own model's price (:attr:`Task`);
* an interrupt (the task running the batch is cancelled: SIGINT under ``asyncio.run``)
  ends the batch cleanly: calls in flight are abandoned, everything already judged is
  cached, and :attr:`RunResult.interrupted` is set.

Secrets: the API key is handed to the client and never stored, logged or put into an
error; messages from the server are scrubbed of anything that looks like a key.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from llmobs_cli.core.eval.judges.cache import JudgmentCache
from llmobs_cli.core.eval.judges.classify import Failure, classify, scrub
from llmobs_cli.core.eval.judges.formats import EndpointMemory, Mode, next_mode
from llmobs_cli.core.eval.judges.prompts import Criterion, MalformedOutput
from llmobs_cli.core.eval.judges.ratelimit import wait_seconds

#: progress(done, cached, failed, cost_usd, total)
Progress = Callable[[int, int, int, float, int], None]
#: notice(text): something the user should see now (a failure, a wait, a step down)
Notice = Callable[[str], None]


@dataclass
class Task:
    """One call: a judgment (``criterion`` set) or a generation (self-consistency).

    ``temperature`` None sends none (the model's default). ``rejects`` names sampling
    parameters the model is known to refuse (never sent). Prices None mean the settings'
    (the judge model's) prices; a task for another model carries its own."""

    key: str
    messages: list[dict[str, str]]
    model: str
    criterion: Criterion | None = None
    temperature: float | None = 0.0
    max_tokens: int | None = None
    est_input_tokens: int = 0
    est_output_tokens: int = 200
    input_price_per_million: float | None = None
    output_price_per_million: float | None = None
    rejects: frozenset[str] = frozenset()


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
    connect_timeout_s: float = 10.0
    max_retries: int = 6
    wait_budget_s: float = 120.0  # total time one judgment may wait between its attempts
    concurrency: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    input_price_per_million: float = 0.0
    output_price_per_million: float = 0.0
    max_cost_usd: float | None = None
    breaker_failures: int = 5  # consecutive unreachable attempts that stop the run
    breaker_s: float = 30.0  # ... or this long with nothing but unreachable attempts
    fail_first: int = 10  # all of the first N judgments failed: stop
    max_failure_rate: float = 0.2  # more than this share failed (after fail_first): stop
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
    interrupted: bool = False  # cancelled (SIGINT/SIGTERM): the rest was not judged
    notes: list[str] = field(default_factory=list)


class FatalError(Exception):
    """A configuration error, an unreachable endpoint or too many failures: stop the run."""


#: The endpoint the ``openai`` client uses when neither the settings nor
#: ``OPENAI_BASE_URL`` name one (the CLI resolves the variable; the core reads no env).
DEFAULT_BASE_URL = "https://api.openai.com/v1"


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a server asks for (kept for callers of the old name; see :mod:`.ratelimit`)."""
    return wait_seconds(headers)


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
    """An ``AsyncOpenAI`` with our time-outs and no built-in retries.

    ``OPENAI_API_KEY``/``OPENAI_BASE_URL`` are read by the client itself when the settings
    leave them unset. A local endpoint given explicitly needs no key. The connect time-out
    is short (``connect_timeout_s``) so a black-holed address fails fast.
    """
    import httpx
    import openai

    timeout = httpx.Timeout(
        settings.timeout_s, connect=min(settings.connect_timeout_s, settings.timeout_s)
    )
    kwargs: dict[str, Any] = {"max_retries": 0, "timeout": timeout}
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


class _Stop(Exception):
    """The run is stopping (fatal elsewhere, or interrupted): abandon this task."""


class JudgeRunner:
    """Runs tasks concurrently against one client; see the module docstring."""

    def __init__(
        self,
        client: Any,
        settings: ClientSettings,
        cache: JudgmentCache,
        *,
        memory: EndpointMemory | None = None,
        endpoint: str | None = None,
    ) -> None:
        """``client`` is an ``AsyncOpenAI`` or a zero-argument factory of one, called only
        when some task is not cached (a fully cached rerun never imports ``openai``).
        ``memory`` remembers format steps and refused parameters across runs (default: in
        the cache's directory); ``endpoint`` is the URL named in messages."""
        self._client = client
        self.s = settings
        self.cache = cache
        self.endpoint = endpoint or settings.base_url or DEFAULT_BASE_URL
        self.memory = memory or EndpointMemory(cache.directory, self.endpoint)
        self._modes: dict[str, Mode] = {}
        self._dropped: dict[str, set[str]] = {}
        self._rng = random.Random(settings.seed)
        self._secret = settings.api_key
        self._notice: Notice | None = None
        self._said: set[str] = set()
        self._streak = 0  # consecutive unreachable attempts, across all tasks
        self._streak_start = 0.0
        self._answered = False  # the endpoint sent any HTTP answer in this run

    @property
    def mode(self) -> str:
        """The format in use for the first model asked (``json_schema`` before any call)."""
        return next(iter(self._modes.values()), "json_schema")

    @property
    def client(self) -> Any:
        if callable(self._client) and not hasattr(self._client, "chat"):
            import openai

            try:
                self._client = self._client()
            except openai.OpenAIError as exc:  # no key and no endpoint: a config error
                raise FatalError(
                    f"cannot call the judge at {self.endpoint}: {scrub(str(exc), self._secret)}"
                ) from None
        if self._secret is None:
            self._secret = getattr(self._client, "api_key", None)
        return self._client

    def _price(self, task: Task) -> tuple[float, float]:
        pin = task.input_price_per_million
        pout = task.output_price_per_million
        return (
            self.s.input_price_per_million if pin is None else pin,
            self.s.output_price_per_million if pout is None else pout,
        )

    def estimate_cost(self, task: Task) -> float:
        pin, pout = self._price(task)
        return (task.est_input_tokens * pin + task.est_output_tokens * pout) / 1e6

    def run(
        self, tasks: Sequence[Task], progress: Progress | None = None, notice: Notice | None = None
    ) -> RunResult:
        return asyncio.run(self._run(tasks, progress, notice))

    def _say(self, text: str, once: str | None = None) -> None:
        """Tell the user now (``once``: a key that makes the notice say it once per run)."""
        if once is not None:
            if once in self._said:
                return
            self._said.add(once)
        if self._notice is not None:
            with contextlib.suppress(Exception):
                self._notice(text)

    async def _run(
        self, tasks: Sequence[Task], progress: Progress | None, notice: Notice | None = None
    ) -> RunResult:
        self._notice = notice
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
        state: dict[str, Any] = {
            "done": result.cached,
            "reserved": 0.0,
            "paying": 0,
            "paid": 0,
            "max_call": 0.0,
            "judged": 0,
            "failed": 0,
        }
        errors: collections.Counter[str] = collections.Counter()
        if progress:
            progress(state["done"], result.cached, 0, 0.0, total)
        limiter = _Limiter(self.s.concurrency)
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmobs-cache")
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        budget = asyncio.Condition()  # guards the --max-cost reservations
        workers: list[asyncio.Task[None]] = []

        def abort(reason: str) -> None:
            """Stop the run now: calls in flight are abandoned (their work is not lost:
            nothing of theirs was judged yet)."""
            if result.fatal is None:
                result.fatal = reason
            stop.set()
            me = asyncio.current_task()
            for w in workers:
                if w is not me:
                    w.cancel()

        async def one(i: int) -> None:
            task = tasks[i]
            await limiter.acquire()
            try:
                if stop.is_set():
                    return
                # The static estimate (prompt length / 4) can be far off for a model that
                # counts tokens differently: reserve the worst of it and every call so far.
                cap = self.s.max_cost_usd
                async with budget:
                    while True:
                        est = max(self.estimate_cost(task), state["max_call"])
                        if cap is None or result.cost_usd + state["reserved"] + est <= cap:
                            break
                        if state["paying"] == 0 or stop.is_set():
                            # even with nothing in flight this call would pass the cap
                            result.stopped = f"--max-cost ${cap:g}"
                            stop.set()
                            return
                        await budget.wait()  # calls in flight may cost less than reserved
                    state["reserved"] += est
                    state["paying"] += 1  # calls holding a reservation (an exact count)
                out: Outcome | None = None
                try:
                    out = await self._call(task, limiter, result, stop)
                finally:
                    async with budget:
                        # the reservation becomes the actual cost in one step, so a call
                        # waiting for room never sees the spend without either
                        state["paying"] -= 1
                        state["reserved"] = 0.0 if not state["paying"] else state["reserved"] - est
                        if out is not None:
                            result.cost_usd += out.cost_usd
                        budget.notify_all()
            except FatalError as exc:
                abort(str(exc))
                return
            except _Stop:
                return
            finally:
                await limiter.release()
            assert out is not None
            result.outcomes[i] = out
            state["paid"] += 1
            state["max_call"] = max(state["max_call"], out.cost_usd)
            if out.skipped:
                return
            state["judged"] += 1
            if out.ok:
                await loop.run_in_executor(writer, self.cache.put, task.key, out.cache_value())
            else:
                result.failed += 1
                state["failed"] += 1
                errors[out.error or "unknown error"] += 1
                self._say(f"judgment failed: {out.error}")
            state["done"] += 1
            if progress:
                progress(int(state["done"]), result.cached, result.failed, result.cost_usd, total)
            judged, failed = state["judged"], state["failed"]
            n = max(1, self.s.fail_first)
            if failed and (
                (judged == failed and judged >= min(n, len(pending)))
                or (judged >= n and failed / judged > self.s.max_failure_rate)
            ):
                common, _ = errors.most_common(1)[0]
                abort(
                    f"{failed} of {judged} judgments failed at {self.endpoint} (model "
                    f"'{task.model}'); stopping. Most common error: {common}"
                )

        queue = collections.deque(pending)

        opened = asyncio.Event()

        async def worker(first: bool) -> None:
            # A fixed pool of workers pulls from a queue: at most `concurrency` coroutines
            # ever wait on the limiter, so a release wakes a handful, not every task. The
            # first call goes alone: a wrong model, key or URL costs one request, not
            # `concurrency` of them.
            if not first:
                await opened.wait()
            while queue and not stop.is_set():
                await one(queue.popleft())
                opened.set()
            opened.set()

        try:
            workers.extend(
                asyncio.create_task(worker(i == 0))
                for i in range(min(self.s.concurrency, len(queue)))
            )
            try:
                outs = await asyncio.gather(*workers, return_exceptions=True)
            except asyncio.CancelledError:
                # Interrupted (SIGINT cancels the task asyncio.run drives): end cleanly.
                result.interrupted = True
                stop.set()
                for w in workers:
                    w.cancel()
                outs = await asyncio.gather(*workers, return_exceptions=True)
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
            for o in outs:
                if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError):
                    raise o
        finally:
            writer.shutdown(wait=True)
            close = getattr(self._client, "close", None) if hasattr(self._client, "chat") else None
            if close is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(close(), timeout=2.0)
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
        if result.stopped:
            # Composed at the end, when every call in flight has returned: the true spend.
            result.stopped = (
                f"stopped before exceeding {result.stopped}: spent ${result.cost_usd:.4f}; "
                f"{result.skipped} of {total} calls not made"
            )
        return result

    def _backoff(self, attempt: int) -> float:
        base = min(self.s.backoff_max_s, self.s.backoff_base_s * 2 ** (attempt - 1))
        return base * (0.5 + self._rng.random())  # jitter: 0.5x..1.5x

    def _mode_for(self, task: Task) -> Mode | None:
        if task.criterion is None:
            return None
        if task.model not in self._modes:
            self._modes[task.model] = self.memory.mode(task.model)
        return self._modes[task.model]

    def _request(
        self, task: Task, messages: list[dict[str, str]], mode: Mode | None, result: RunResult
    ) -> dict[str, Any]:
        req: dict[str, Any] = {
            "model": task.model,
            "messages": self._with_instruction(messages, task.criterion, mode),
        }
        learned = self._dropped.setdefault(task.model, self.memory.dropped(task.model))
        if task.temperature is not None:
            if "temperature" in task.rejects:
                pass  # known from the price table: the caller already says so
            elif "temperature" in learned:
                self._note_default(task, result)
            else:
                req["temperature"] = task.temperature
        if task.max_tokens is not None:
            req["max_tokens"] = task.max_tokens
        if task.criterion is not None and mode in ("json_schema", "json_object"):
            req["response_format"] = task.criterion.response_format(mode)
        return req

    def _fatal(self, model: str, f: Failure) -> FatalError:
        return FatalError(
            f"{f.reason or 'judge failed'}: {self.endpoint} (model '{model}'): {f.text()}"
        )

    def _unreachable(self, f: Failure, sent: float) -> None:
        """Count an unreachable attempt (``sent``: when it left); trip the breaker
        (FatalError) past the limits: ``breaker_failures`` in a row, or ``breaker_s``
        seconds since the first of them was sent — with two of them, or one when the
        endpoint has never answered in this run."""
        now = time.monotonic()
        if self._streak == 0:
            self._streak_start = sent
        self._streak += 1
        long = now - self._streak_start >= self.s.breaker_s
        if self._streak >= max(1, self.s.breaker_failures) or (
            long and (self._streak >= 2 or not self._answered)
        ):
            raise FatalError(
                f"cannot reach the judge endpoint {self.endpoint}: {f.message} "
                + (
                    f"({self._streak} attempts in a row failed)"
                    if self._streak > 1
                    else f"(no answer in {now - self._streak_start:.0f} s)"
                )
            )

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> None:
        """Sleep, but wake (and abandon the task) as soon as the run stops."""
        if seconds <= 0:
            return
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        if stop.is_set():
            raise _Stop

    async def _call(
        self, task: Task, limiter: _Limiter, result: RunResult, stop: asyncio.Event
    ) -> Outcome:
        import openai

        attempts = 0
        retries = 0  # transient failures retried (max_retries bounds them)
        waited = 0.0  # seconds spent waiting between attempts (wait_budget_s bounds it)
        reasked = False
        resent: set[str] = set()
        messages = list(task.messages)
        in_tok = out_tok = 0
        cost = 0.0
        pin, pout = self._price(task)
        started = time.perf_counter()

        def failed(error: str, **kw: Any) -> Outcome:
            return Outcome(
                ok=False,
                error=error,
                attempts=attempts,
                input_tokens=in_tok,
                output_tokens=out_tok,
                cost_usd=cost,
                **kw,
            )

        while True:
            if stop.is_set():
                raise _Stop
            attempts += 1
            mode = self._mode_for(task)
            req = self._request(task, messages, mode, result)
            result.calls += 1
            sent = time.monotonic()
            try:
                # client.post with the plain body: same auth, headers and typed errors as
                # chat.completions.create, without its per-call TypedDict transform and
                # pydantic parsing (~4 ms CPU per call, twice our whole budget).
                resp = await self.client.post("/chat/completions", cast_to=object, body=req)
            except openai.APIError as exc:
                f = classify(exc, secret=self._secret, timeout_s=self.s.timeout_s)
                if f.kind == "unreachable":
                    self._unreachable(f, sent)
                else:
                    self._streak = 0
                    self._answered = True
                if f.kind == "fatal":
                    raise self._fatal(task.model, f) from None
                if f.kind == "format" and mode is not None and mode != "none":
                    self._step_down(task.model, mode, f)
                    continue
                if f.kind == "sampling" and f.param in req and f.param not in resent:
                    resent.add(f.param)
                    self._dropped.setdefault(task.model, set()).add(f.param)
                    self.memory.drop(task.model, f.param)
                    self._say(
                        f"model '{task.model}' rejects {f.param}: asking without it ({f.text()})",
                        once=f"sampling {task.model} {f.param}",
                    )
                    continue
                kind = f.kind
                if kind in ("format", "sampling"):
                    kind = "transient" if (f.status or 0) >= 500 else "rejected"
                if kind == "rejected":
                    return failed(f"judge rejected the request: {f.text()}")
                if kind == "rate_limited":
                    limiter.throttled()
                else:
                    retries += 1
                    if retries > self.s.max_retries:
                        return failed(
                            f"judge endpoint failed after {attempts} attempts: {f.text()}"
                        )
                delay = f.wait_s if f.wait_s is not None else self._backoff(max(1, retries))
                if waited + delay > self.s.wait_budget_s:
                    return failed(
                        f"judge endpoint failed after {attempts} attempts: {f.text()} "
                        f"(a further wait of {delay:.0f} s would pass the wait budget of "
                        f"{self.s.wait_budget_s:g} s per judgment, judge.wait_budget_s)"
                    )
                if kind == "rate_limited":
                    self._say(f"waiting {delay:.0f} s (rate limited by the server)")
                elif kind == "unreachable":
                    self._say(f"{self.endpoint}: {f.message}; retrying in {delay:.1f} s")
                waited += delay
                await self._sleep(delay, stop)
                continue
            self._streak = 0
            self._answered = True
            limiter.succeeded()
            if not isinstance(resp, dict):
                resp = {}
            usage = resp.get("usage") or {}
            it = int(usage.get("prompt_tokens") or 0) if isinstance(usage, dict) else 0
            ot = int(usage.get("completion_tokens") or 0) if isinstance(usage, dict) else 0
            in_tok += it
            out_tok += ot
            cost += (it * pin + ot * pout) / 1e6
            content = _content(resp)
            latency = (time.perf_counter() - started) * 1000.0
            if task.criterion is None:
                if content is None:
                    return failed("empty generation")
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
                return failed(
                    f"malformed judge output: {exc}",
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

    def _note_default(self, task: Task, result: RunResult) -> None:
        """Say once per model that it is asked at its default temperature (it refused one)."""
        key = f"default temperature {task.model}"
        if key in self._said:
            return
        self._said.add(key)
        what = (
            f"self-consistency on '{task.model}' sampled"
            if task.criterion is None
            else f"judge model '{task.model}' judged"
        )
        result.notes.append(
            f"{what} at the model's default temperature (the server refused "
            f"temperature={task.temperature:g})"
        )

    def _step_down(self, model: str, mode: Mode, f: Failure) -> None:
        """One step down the ladder for ``model`` (only the first of concurrent failures
        with the same step moves it)."""
        if self._modes.get(model) != mode:
            return  # another call already stepped down from this mode
        new = next_mode(mode)
        if new is None:
            return
        self._modes[model] = new
        self.memory.set_mode(model, new)
        what = "no response_format" if new == "none" else new
        self._say(
            f"{self.endpoint} (model '{model}') refused response_format {mode} "
            f"({f.text()}); asking with {what} (answers validated by llmobs)"
        )

    @staticmethod
    def _with_instruction(
        messages: list[dict[str, str]], criterion: Criterion | None, mode: str | None
    ) -> list[dict[str, str]]:
        if criterion is None or mode == "json_schema":
            return messages
        # json_object needs the word JSON and the shape in the prompt, and without any
        # response_format the prompt is all the model has: say it in the system message.
        note = criterion.json_instruction()
        if messages and messages[0]["role"] == "system":
            return [
                {"role": "system", "content": messages[0]["content"] + "\n\n" + note},
                *messages[1:],
            ]
        return [{"role": "system", "content": note}, *messages]


def _content(resp: dict[str, Any]) -> str | None:
    """The first choice's message content of a chat.completion body (None if absent)."""
    try:
        value = resp["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, str) else None


__all__ = [
    "DEFAULT_BASE_URL",
    "ClientSettings",
    "FatalError",
    "JudgeRunner",
    "Notice",
    "Outcome",
    "Progress",
    "RunResult",
    "Task",
    "make_client",
    "retry_after_seconds",
    "scrub",
]
