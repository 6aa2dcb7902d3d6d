"""Anthropic through the official SDK: one shared client, the SDK's own retries off, aiohttp underneath."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

from catalog import Usage
from worker.providers.base import ProviderReply, ProviderRequest
from worker.providers.classify import connection_error, status_error, unexpected_error

__all__ = ["AnthropicProvider", "reply_from_message"]

#: How messages name the provider.
_LABEL = "Anthropic"

#: A backstop only: the job's `timeoutSecs` (at most 3600) bounds every call. Setting it explicitly
#: also stops the SDK from refusing a large `max_tokens` without streaming.
_TRANSPORT_TIMEOUT = httpx2.Timeout(3700.0, connect=10.0)


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
            message = await self._client.messages.create(
                model=request.model,
                max_tokens=request.max_tokens,
                messages=[{"role": "user", "content": request.user_message}],
                **optional,
            )
        except anthropic.APIStatusError as exc:
            detail = _error_detail(exc.body)
            raise status_error(_LABEL, exc.status_code, detail, exc.response.headers, secrets=secrets) from None
        except anthropic.APIConnectionError as exc:
            raise connection_error(_LABEL, exc) from None
        except Exception as exc:
            raise unexpected_error(_LABEL, f"{type(exc).__name__}: {exc}", secrets=secrets) from None
        return reply_from_message(message)

    async def aclose(self) -> None:
        await self._client.close()


def reply_from_message(message: anthropic.types.Message) -> ProviderReply:
    """A Messages API answer as the pipeline sees it (shared with the recorded provider, so both bill alike)."""
    usage = message.usage
    return ProviderReply(
        text="".join(block.text for block in message.content if block.type == "text"),
        stop_reason=message.stop_reason,
        usage=Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
            cache_read_input_tokens=usage.cache_read_input_tokens or 0,
        ),
    )


def _error_detail(body: object) -> str:
    """`<error type>: <message>` from the API's error body, whatever shape it arrived in."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            parts = [str(error[key]) for key in ("type", "message") if isinstance(error.get(key), str)]
            return ": ".join(parts)
    return "" if body is None else str(body)
