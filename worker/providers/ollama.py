"""Ollama's native `POST /api/chat` through httpx; both its single-object and its NDJSON answers are read.

httpx's API over aiohttp's connection pool (`httpx_aiohttp`, as the anthropic SDK's `DefaultAioHttpClient`
does): with 64 calls in flight httpx's own pool spent about 22 ms of CPU per call on this machine (its
bookkeeping grows with the square of the calls in flight), the aiohttp transport well under 1 ms.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx
import orjson
from httpx_aiohttp import HttpxAiohttpClient

from catalog import Usage
from worker.providers.answers import MalformedAnswerError, malformed_answer, token_count
from worker.providers.base import ProviderReply, ProviderRequest, model_name
from worker.providers.classify import connection_error, status_error, truncated_answer, unexpected_error
from worker.providers.redaction import MAX_DETAIL

__all__ = ["DONE_REASONS", "OllamaProvider", "ollama_base_url", "parse_chat_answer"]

#: How messages name the provider.
_LABEL = "Ollama"

#: A backstop only: the job's `timeoutSecs` (at most 3600) bounds every call.
_TRANSPORT_TIMEOUT = httpx.Timeout(3700.0, connect=10.0)
_JSON_HEADERS = {"content-type": "application/json"}
_OLLAMA_PORT = 11434
#: Ollama's `done_reason` → the stop reason in results (docs/contract.md §4); anything else passes through.
DONE_REASONS = {"stop": "end_turn", "length": "max_tokens"}


def ollama_base_url(host: str) -> str:
    """`OLLAMA_HOST` read the way Ollama reads it: no scheme means http on port 11434 (`0.0.0.0` and `:11434` too)."""
    host = host.strip().rstrip("/")
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
    hostport, _, path = rest.partition("/")
    if not sep and not _has_port(hostport):
        hostport = f"{hostport or '127.0.0.1'}:{_OLLAMA_PORT}"
    elif hostport.startswith(":"):
        hostport = "127.0.0.1" + hostport
    return f"{scheme}://{hostport}/{path}" if path else f"{scheme}://{hostport}"


def _has_port(hostport: str) -> bool:
    tail = hostport.rpartition("]")[2] if hostport.startswith("[") else hostport
    return ":" in tail


class OllamaProvider:
    """One `/api/chat` call per `complete`, non-streamed; a streamed answer is read the same way."""

    name = "ollama"

    def __init__(self, *, host: str, concurrency: int) -> None:
        self._url = f"{ollama_base_url(host)}/api/chat"
        # The transport opens its aiohttp session on the first call, inside the loop that runs the calls.
        self._client = HttpxAiohttpClient(
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            timeout=_TRANSPORT_TIMEOUT,
        )

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        # Nothing Ollama says back may carry the prompt into a result or a log.
        secrets = (request.system_prompt, request.user_message)
        messages = []
        if request.system_prompt:
            messages.append({"role": "system", "content": request.system_prompt})
        messages.append({"role": "user", "content": request.user_message})
        body = {
            "model": request.model,
            "messages": messages,
            "stream": False,
            "options": {"num_predict": request.max_tokens},
        }
        try:
            # The body is read in full before `post` returns; a cancelled read closes the response and frees its slot.
            response = await self._client.post(self._url, content=orjson.dumps(body), headers=_JSON_HEADERS)
        # The transport maps aiohttp's refusals, resets and its own timeouts to these (never to a bare TimeoutError,
        # which would pass for the job's timeout); aiohttp's own exception names what happened more exactly
        # (the transport calls a server that hung up a `ConnectTimeout`).
        except httpx.TransportError as exc:
            raise connection_error(_LABEL, exc.__cause__ or exc) from None
        except Exception as exc:
            raise unexpected_error(_LABEL, f"{type(exc).__name__}: {exc}", secrets=secrets) from None
        if response.status_code != 200:
            raise status_error(
                _LABEL, response.status_code, _error_detail(response.content), response.headers, secrets=secrets
            )
        return parse_chat_answer(response.content, secrets=secrets)

    async def aclose(self) -> None:
        await self._client.aclose()


def parse_chat_answer(body: bytes, *, secrets: Iterable[str | None] = ()) -> ProviderReply:
    """A `/api/chat` answer: one JSON object, or NDJSON chunks ending in a `done` one (docs/contract.md §4).

    An `{"error"}` chunk anywhere, a line that is not a JSON object, a chunk without text or a usage count
    that is not one is a malformed answer (`provider_error`); a stream that stops before its `done` chunk,
    or in the middle of a line, is a connection that ended early (`provider_unavailable`, retried).
    """
    try:
        chunks: list[Any] = [orjson.loads(body)]
    except orjson.JSONDecodeError:
        chunks = _ndjson_chunks(body, secrets)
    parts: list[str] = []
    for chunk in chunks:
        if not isinstance(chunk, dict):
            raise malformed_answer(_LABEL, "the answer holds something other than JSON objects", usage=None, secrets=())
        if "error" in chunk:
            what = chunk["error"] if isinstance(chunk["error"], str) else "unknown"
            raise malformed_answer(_LABEL, f"reported an error: {what}", usage=None, secrets=secrets)
        text = _text_of(chunk)
        if chunk.get("done") is True:
            try:
                usage = Usage(
                    input_tokens=token_count(chunk, "prompt_eval_count", where="answer", required=False),
                    output_tokens=token_count(chunk, "eval_count", where="answer", required=False),
                )
            except MalformedAnswerError as exc:
                raise malformed_answer(_LABEL, exc.fault, usage=None, secrets=()) from None
            if text is None:
                raise malformed_answer(_LABEL, "its `done` chunk has no `message.content`", usage=usage, secrets=())
            parts.append(text)
            return ProviderReply(
                text="".join(parts),
                stop_reason=_stop_reason(chunk.get("done_reason")),
                usage=usage,
                model=model_name(chunk.get("model")),
            )
        if text is None:
            raise malformed_answer(_LABEL, "a chunk has no `message.content`", usage=None, secrets=())
        parts.append(text)
    raise truncated_answer(_LABEL)


def _ndjson_chunks(body: bytes, secrets: Iterable[str | None]) -> list[Any]:
    """The chunks of a streamed answer; its last line cut short is a connection that ended early."""
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise malformed_answer(_LABEL, "the answer was empty", usage=None, secrets=())
    chunks: list[Any] = []
    for number, line in enumerate(lines, 1):
        try:
            chunks.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            # A last line that starts a JSON object but stops short, after lines that were whole: the stream was cut.
            if number == len(lines) > 1 and line.lstrip().startswith(b"{") and not body.endswith(b"\n"):
                raise truncated_answer(_LABEL) from None
            raise malformed_answer(_LABEL, "the answer is not JSON or NDJSON", usage=None, secrets=()) from None
    return chunks


def _text_of(chunk: dict[str, Any]) -> str | None:
    message = chunk.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else None


def _stop_reason(done_reason: object) -> str | None:
    if not isinstance(done_reason, str) or not done_reason:
        return None
    return DONE_REASONS.get(done_reason, done_reason)


def _error_detail(body: bytes) -> str:
    """Ollama's `{"error": "..."}` text, else the start of whatever the body was."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # Cut here only to bound the decoding; the message is cut and scrubbed of the prompt where it is made.
        return body[: 4 * MAX_DETAIL].decode("utf-8", "replace").strip()
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return str(document["error"])
    return ""
