"""Anthropic through the official SDK: one shared client, the SDK's own retries off, aiohttp underneath.

The answer is taken raw (`with_raw_response`) and its few fields read from the JSON with orjson: at a
thousand calls in flight, building the SDK's pydantic `Message` cost more CPU than the HTTP exchange.
The SDK still builds and sends the request and still raises its `APIStatusError` for an error status;
the answer's parsing lives in `worker.providers.messages`, which replay uses without importing the SDK.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2

from worker.providers.answers import read_answer
from worker.providers.base import ProviderReply, ProviderRequest
from worker.providers.classify import connection_error, status_error, unexpected_error
from worker.providers.messages import error_detail, reply_from_body

__all__ = ["AnthropicProvider"]

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
            # The SDK's own span per API call would duplicate the call span that `worker.tracing` makes around
            # every call (retries included); off, the SDK also spends nothing on spans when traces are off.
            open_telemetry=False,
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
            detail = error_detail(exc.body)
            raise status_error(_LABEL, exc.status_code, detail, exc.response.headers, secrets=secrets) from None
        # A connection that ends before the whole answer arrived is one of these too (docs/contract.md §4: retried).
        except anthropic.APIConnectionError as exc:
            raise connection_error(_LABEL, exc) from None
        except Exception as exc:
            raise unexpected_error(_LABEL, f"{type(exc).__name__}: {exc}", secrets=secrets) from None
        # docs/contract.md §4: an answer that is not a completion fails the job, billing the usage it validly reported.
        return read_answer(_LABEL, raw.status_code, body, reply_from_body, shape="a Messages answer", secrets=secrets)

    async def aclose(self) -> None:
        await self._client.close()
