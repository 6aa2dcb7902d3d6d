"""What every fake provider shares: configuration, scripted steps, counters, control routes and the server's life.

A fake answers each API call with the next scripted `Step` when there is one, else with a random
fault (`fault_rate`), else with a reply after `delay`. `down` drops every call's connection
unanswered. Counters and the last requests received are readable in-process (`.stats`,
`.requests`) or over HTTP (`GET /_fake/stats`, `GET /_fake/requests`); `POST /_fake/config`,
`POST /_fake/script` and `POST /_fake/reset` steer a fake running in another process.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from email.utils import formatdate
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

import orjson
from aiohttp import web

__all__ = [
    "FakeConfig",
    "FakeServer",
    "FakeStats",
    "ReceivedRequest",
    "Step",
    "StepKind",
    "dumps",
    "json_response",
    "retry_after_headers",
]

StepKind = Literal["reply", "fault", "drop", "hang", "stream_error", "garbage", "truncated"]
RetryAfterFormat = Literal["seconds", "ms", "date"]


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted answer.

    - `reply`: a normal answer; `text`, `stop_reason` (the provider's own word) and `usage` override the config's.
    - `fault`: HTTP `status` with the provider's error body (`message`; OpenAI also `error_code`, e.g.
      `insufficient_quota`) and, when `retry_after` is set, a `retry-after` header (`retry_after_format`:
      seconds, `ms` for `retry-after-ms`, or an HTTP `date`).
    - `drop`: the connection is closed without an answer (the client sees a reset).
    - `hang`: no answer until the client goes away (for timeouts).
    - `stream_error`: Ollama only: a streamed answer that breaks off with an `{"error": message}` line.
    - `garbage`: a 200 (or `status`) whose body is not the API's: `message` as the body, by default a misbehaving
      proxy's page.
    - `truncated`: a normal answer whose connection is cut halfway through its body (its length announced in full).

    A reply's `patch` replaces top-level fields of the API's answer object (Anthropic's message, OpenAI's
    chat.completion, Ollama's final `done` object), and its `usage` may hold any JSON value, so an answer of the
    real shape can be spoiled in exactly one place (a text block without `text`, a usage count of 2**63 - 1 or 1.5).

    `delay` replaces the config's delay for this answer; faults and drops are immediate unless it is set.
    """

    kind: StepKind = "reply"
    status: int = 200
    message: str | None = None
    retry_after: float | None = None
    retry_after_format: RetryAfterFormat = "seconds"
    text: str | None = None
    stop_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    delay: float | None = None
    patch: Mapping[str, Any] | None = None
    error_code: str | None = None

    @classmethod
    def reply(
        cls,
        text: str | None = None,
        *,
        stop_reason: str | None = None,
        usage: Mapping[str, Any] | None = None,
        delay: float | None = None,
        patch: Mapping[str, Any] | None = None,
    ) -> Step:
        return cls("reply", text=text, stop_reason=stop_reason, usage=usage, delay=delay, patch=patch)

    @classmethod
    def fault(
        cls,
        status: int,
        *,
        message: str | None = None,
        retry_after: float | None = None,
        retry_after_format: RetryAfterFormat = "seconds",
        delay: float | None = None,
        error_code: str | None = None,
    ) -> Step:
        return cls(
            "fault",
            status=status,
            message=message,
            retry_after=retry_after,
            retry_after_format=retry_after_format,
            delay=delay,
            error_code=error_code,
        )

    @classmethod
    def drop(cls, *, delay: float | None = None) -> Step:
        return cls("drop", delay=delay)

    @classmethod
    def hang(cls) -> Step:
        return cls("hang")

    @classmethod
    def stream_error(cls, message: str, *, delay: float | None = None) -> Step:
        return cls("stream_error", message=message, delay=delay)

    @classmethod
    def garbage(cls, body: str | None = None, *, status: int = 200) -> Step:
        return cls("garbage", status=status, message=body)

    @classmethod
    def truncated(cls, *, delay: float | None = None) -> Step:
        return cls("truncated", delay=delay)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown step fields: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(slots=True)
class FakeConfig:
    """How a fake behaves; change it any time (in-process: assign fields; out of process: `POST /_fake/config`)."""

    delay: float = 0.0
    """Seconds before each reply."""
    fault_rate: float = 0.0
    """Chance (0..1) that an unscripted call gets a random fault from `fault_statuses`."""
    fault_statuses: tuple[int, ...] | None = None
    """Statuses random faults are drawn from; `None` means the fake's own (Anthropic 429/529/500, OpenAI
    429/500/503, Ollama 503/500)."""
    retry_after: float | None = 1.0
    """The `retry-after` seconds sent with random 429, 503 and 529 faults; `None` sends none."""
    down: bool = False
    """Drop every call's connection unanswered, as a crashed provider behind a load balancer would."""
    reply_text: str = "Hello from the fake provider."
    usage: dict[str, int | None] = field(default_factory=dict)
    """Usage fields that replace the computed ones (e.g. `cache_read_input_tokens`, `eval_count`)."""
    models: tuple[str, ...] | None = None
    """The models the fake knows; `None` knows every model. Others get the provider's 404."""
    api_key: str | None = None
    """Anthropic and OpenAI: the one key accepted (Anthropic: `x-api-key` or `Authorization: Bearer`; OpenAI:
    `Authorization: Bearer`); `None` accepts any key."""
    stream_always: bool = False
    """Ollama only: stream NDJSON even when asked for `"stream": false`, as some proxies do."""
    seed: int | None = None
    """Seeds the random faults, for a repeatable run."""

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a JSON-shaped change (lists become tuples); unknown fields are refused."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        for name, value in changes.items():
            setattr(self, name, tuple(value) if isinstance(value, list) else value)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class FakeStats:
    """Counters since start (or the last reset); `cancelled` counts calls whose client left before the answer."""

    calls: int = 0
    replies: int = 0
    faults: int = 0
    drops: int = 0
    cancelled: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_status: dict[int, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["by_status"] = {str(status): count for status, count in self.by_status.items()}
        return data


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """An API call as received: `at` is `time.monotonic()` on arrival, `headers` have lower-case names, `body` is
    the parsed JSON (or `None`)."""

    at: float
    path: str
    headers: Mapping[str, str]
    body: Any

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "path": self.path, "headers": dict(self.headers), "body": self.body}


Handler = Callable[[web.Request, Step, Any], Awaitable[web.StreamResponse]]


class FakeServer(ABC):
    """A provider fake on loopback: `async with FakeX(config) as fake: fake.url`. Subclasses add the API routes."""

    default_fault_statuses: ClassVar[tuple[int, ...]] = (500,)
    #: Its name on the command line (`python -m testkit.fake KIND`) and in `testkit.process.FakeProcess`.
    kind: ClassVar[str] = ""
    #: What `python -m testkit.fake KIND --help` says it is.
    cli_description: ClassVar[str] = ""
    #: Faults that carry `retry-after` when drawn at random.
    throttling_statuses: ClassVar[frozenset[int]] = frozenset({429, 503, 529})

    def __init__(
        self,
        config: FakeConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        script: Iterable[Step] = (),
        record: int = 1000,
    ) -> None:
        self.config = config or FakeConfig()
        self.stats = FakeStats()
        self.requests: deque[ReceivedRequest] = deque(maxlen=record)
        self._host = host
        self._port = port
        self._script: deque[Step] = deque(script)
        self._random = random.Random(self.config.seed)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- life ---------------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.add_routes(app)
        app.router.add_get("/_fake/stats", self._get_stats)
        app.router.add_get("/_fake/requests", self._get_requests)
        app.router.add_post("/_fake/config", self._post_config)
        app.router.add_post("/_fake/script", self._post_script)
        app.router.add_post("/_fake/reset", self._post_reset)
        # Cancelling the handler when its client leaves is what lets the fake count cancelled calls.
        # Stopping a fake is a provider going away: calls in flight are cut after a second, not waited for.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        assert self._runner is not None
        self._site = web.TCPSite(self._runner, self._host, self._port, backlog=4096, reuse_address=True)
        await self._site.start()
        self._port = self._runner.addresses[0][1]

    async def pause(self) -> None:
        """Stop listening (new connections are refused) but keep the port for `resume`."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def resume(self) -> None:
        if self._site is None:
            await self._listen()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
            self._site = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- steering -----------------------------------------------------------------------------------------------

    def script(self, *steps: Step) -> None:
        """Queue answers for the next calls, in order; after them the config decides again."""
        self._script.extend(steps)

    @property
    def scripted(self) -> int:
        """Scripted steps not used yet."""
        return len(self._script)

    def reset(self) -> None:
        self.stats = FakeStats()
        self.requests.clear()
        self._script.clear()
        self._random.seed(self.config.seed)
        self._notify()

    async def wait_until(self, predicate: Callable[[FakeStats], bool]) -> FakeStats:
        """Wait for the counters to satisfy `predicate`: woken by each change, never a poll. Bound it yourself."""
        while not predicate(self.stats):
            self._changed.clear()
            await self._changed.wait()
        return self.stats

    # -- serving ------------------------------------------------------------------------------------------------

    @abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Route the provider's API paths to handlers that call `serve`."""

    def _notify(self) -> None:
        self._changed.set()

    def _next_step(self) -> Step:
        if self._script:
            return self._script.popleft()
        config = self.config
        if config.fault_rate > 0 and self._random.random() < config.fault_rate:
            status = self._random.choice(config.fault_statuses or self.default_fault_statuses)
            retry_after = config.retry_after if status in self.throttling_statuses else None
            return Step.fault(status, retry_after=retry_after)
        return Step.reply()

    async def serve(self, request: web.Request, answer: Handler) -> web.StreamResponse:
        """Account for one API call and answer it with the next step; `answer` speaks the provider's API."""
        stats = self.stats
        stats.calls += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        self._notify()
        try:
            raw = await request.read()
            body = _json_or_none(raw)
            headers = {name.lower(): value for name, value in request.headers.items()}
            self.requests.append(ReceivedRequest(time.monotonic(), request.path, headers, body))
            step = Step.drop() if self.config.down else self._next_step()
            response = await self._answer(request, step, body, answer)
        except (asyncio.CancelledError, ConnectionResetError):
            stats.cancelled += 1
            raise
        finally:
            stats.in_flight -= 1
            self._notify()
        return response

    async def _answer(self, request: web.Request, step: Step, body: Any, answer: Handler) -> web.StreamResponse:
        if step.kind == "hang":
            await asyncio.Event().wait()
        delay = step.delay if step.delay is not None else (self.config.delay if step.kind == "reply" else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        if step.kind == "drop":
            self.stats.drops += 1
            assert request.transport is not None
            request.transport.abort()
            # The connection is gone; aiohttp discards whatever is returned.
            return web.Response(status=500)
        response: web.StreamResponse
        if step.kind == "garbage":
            body_text = "<html>502 from a confused proxy" if step.message is None else step.message
            response = web.Response(text=body_text, status=step.status, content_type="application/json")
        else:
            response = await answer(request, step, body)
            if step.kind == "truncated" and isinstance(response, web.Response):
                return await _cut_short(request, response)
        self.stats.by_status[response.status] = self.stats.by_status.get(response.status, 0) + 1
        if response.status < 400 and step.kind == "reply":
            self.stats.replies += 1
        else:
            self.stats.faults += 1
        return response

    # -- control routes -----------------------------------------------------------------------------------------

    async def _get_stats(self, request: web.Request) -> web.Response:
        return json_response({**self.stats.to_json(), "scripted": self.scripted, "config": self.config.to_json()})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return json_response([recorded.to_json() for recorded in self.requests])

    async def _post_config(self, request: web.Request) -> web.Response:
        try:
            changes = orjson.loads(await request.read())
            if not isinstance(changes, dict):
                raise ValueError("a JSON object of config fields is expected")
            self.config.update(changes)
        except ValueError as exc:
            return json_response({"error": str(exc)}, status=400)
        if "seed" in changes:
            self._random.seed(self.config.seed)
        return json_response(self.config.to_json())

    async def _post_script(self, request: web.Request) -> web.Response:
        try:
            steps = orjson.loads(await request.read())
            if not isinstance(steps, list):
                raise ValueError("a JSON list of steps is expected")
            self.script(*(Step.from_json(step) for step in steps))
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response({"scripted": self.scripted})

    async def _post_reset(self, request: web.Request) -> web.Response:
        self.reset()
        return json_response({"reset": True})


async def _cut_short(request: web.Request, whole: web.Response) -> web.StreamResponse:
    """Send the head of `whole` announcing its full length, half its body, then drop the connection."""
    body = whole.body if isinstance(whole.body, bytes) else b""
    response = web.StreamResponse(status=whole.status, headers={"content-type": whole.content_type})
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(body[: len(body) // 2])
    assert request.transport is not None
    request.transport.abort()
    return response


def retry_after_headers(step: Step) -> dict[str, str]:
    """The `retry-after` header a fault step asks for, in the format it asks for."""
    if step.retry_after is None:
        return {}
    if step.retry_after_format == "ms":
        return {"retry-after-ms": str(round(step.retry_after * 1000))}
    if step.retry_after_format == "date":
        return {"retry-after": formatdate(time.time() + step.retry_after, usegmt=True)}
    return {"retry-after": f"{step.retry_after:g}"}


def _json_or_none(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def dumps(data: Any) -> bytes:
    """JSON as the providers write it; integers beyond 64 bits too (a spoiled usage count), which orjson refuses."""
    try:
        return orjson.dumps(data)
    except orjson.JSONEncodeError:
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json", headers=headers)
