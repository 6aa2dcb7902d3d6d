"""Anthropic through the official SDK: one shared client, the SDK's own retries off, aiohttp underneath.

The answer is taken raw (`with_raw_response`) and its few fields read from the JSON with orjson: at a
thousand calls in flight, building the SDK's pydantic `Message` cost more CPU than the HTTP exchange.
The SDK still builds and sends the request and still raises its `APIStatusError` for an error status.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import orjson

from catalog import Usage
from worker.providers.base import ProviderReply, ProviderRequest
from worker.providers.classify import connection_error, status_error, unexpected_error

__all__ = ["AnthropicProvider", "MalformedAnswerError", "reply_from_body"]

#: How messages name the provider.
_LABEL = "Anthropic"

#: A backstop only: the job's `timeoutSecs` (at most 3600) bounds every call. Setting it explicitly
#: also stops the SDK from refusing a large `max_tokens` without streaming.
_TRANSPORT_TIMEOUT = httpx2.Timeout(3700.0, connect=10.0)


class MalformedAnswerError(ValueError):
    """A body that is not a Messages API answer; the text names the fault (of the body only an error's own text)."""


class AnthropicProvider:
    """One Messages call per `complete`; `max_retries=0` because `call_with_retry` is the only retry loop."""

    name = "anthropic"

    def __init__(self, *, api_key: str, base_url: str | None = None, concurrency: int) -> None:
        # With hundreds of calls in flight, the aiohttp transport costs several times less CPU than httpx.
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        http_client = anthropic.DefaultAioHttpClient(limits=limits, timeout=_TRANSPORT_TIMEOUT)
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=_TRANSPORT_TIMEOUT,
            http_client=http_client,
        )
        self._api_key = api_key

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        # Nothing the provider says back may carry the key or the prompt into a result or a log.
        secrets = (self._api_key, request.system_prompt, request.user_message)
        optional: dict[str, Any] = {}
        # An empty system prompt says nothing, and the API refuses empty text, so it is left out like a missing one.
        if request.system_prompt:
            optional["system"] = request.system_prompt
        try:
            raw = await self._client.messages.with_raw_response.create(
                model=request.model,
                max_tokens=request.max_tokens,
                messages=[{"role": "user", "content": request.user_message}],
                **optional,
            )
            body = await raw.read()
        except anthropic.APIStatusError as exc:
            detail = _error_detail(exc.body)
            raise status_error(_LABEL, exc.status_code, detail, exc.response.headers, secrets=secrets) from None
        except anthropic.APIConnectionError as exc:
            raise connection_error(_LABEL, exc) from None
        except Exception as exc:
            raise unexpected_error(_LABEL, f"{type(exc).__name__}: {exc}", secrets=secrets) from None
        try:
            return reply_from_body(orjson.loads(body))
        except orjson.JSONDecodeError:
            raise unexpected_error(_LABEL, f"answered HTTP {raw.status_code} with a body that is not JSON") from None
        except MalformedAnswerError as exc:
            what = f"answered HTTP {raw.status_code} with a body that is not a Messages answer: {exc}"
            raise unexpected_error(_LABEL, what, secrets=secrets) from None

    async def aclose(self) -> None:
        await self._client.close()


def reply_from_body(body: object) -> ProviderReply:
    """A Messages API answer, as decoded from its JSON, as the pipeline sees it.

    Shared with the recorded provider, so a replayed answer bills exactly as the live one did. Only the
    fields the reply needs are checked; any other fault of shape raises `MalformedAnswerError`.
    """
    if not isinstance(body, dict):
        raise MalformedAnswerError("it is not a JSON object")
    kind = body.get("type")
    if kind != "message":
        if kind == "error":
            raise MalformedAnswerError(f"it is an error ({_error_detail(body) or 'no detail'})")
        raise MalformedAnswerError('its `type` is not "message"')
    stop_reason = body.get("stop_reason")
    if stop_reason is not None and not isinstance(stop_reason, str):
        raise MalformedAnswerError("its `stop_reason` is not a string")
    usage = body.get("usage")
    if not isinstance(usage, dict):
        raise MalformedAnswerError("it has no `usage`")
    return ProviderReply(
        text=_text_of(body.get("content")),
        stop_reason=stop_reason,
        usage=Usage(
            input_tokens=_token_count(usage, "input_tokens", required=True),
            output_tokens=_token_count(usage, "output_tokens", required=True),
            cache_creation_input_tokens=_token_count(usage, "cache_creation_input_tokens", required=False),
            cache_read_input_tokens=_token_count(usage, "cache_read_input_tokens", required=False),
        ),
    )


def _text_of(content: object) -> str:
    """The text blocks joined; other blocks (thinking, tool use) are not part of the reply."""
    if not isinstance(content, list):
        raise MalformedAnswerError("its `content` is not a list")
    texts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            raise MalformedAnswerError("a `content` block is not an object")
        if block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise MalformedAnswerError("a text block has no `text`")
            texts.append(text)
    return "".join(texts)


def _token_count(usage: dict[str, Any], key: str, *, required: bool) -> int:
    """A usage field; the cache fields may be missing or null, meaning none."""
    value = usage.get(key)
    if value is None and not required:
        return 0
    # `type(...) is int` rather than isinstance: a JSON `true` is not a count.
    if type(value) is not int or value < 0:
        raise MalformedAnswerError(f"its `usage.{key}` is not a token count")
    return value


def _error_detail(body: object) -> str:
    """`<error type>: <message>` from the API's error body, whatever shape it arrived in."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error[key]) for key in ("type", "message") if isinstance(error.get(key), str)]
            return ": ".join(parts)
    return "" if body is None else str(body)
