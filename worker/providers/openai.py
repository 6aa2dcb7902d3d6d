"""OpenAI Chat Completions through the official SDK: one shared client, the SDK's own retries off, aiohttp underneath.

Built like the Anthropic provider: the SDK sends the request and raises its `APIStatusError` for an error
status, but the body goes out as JSON the provider wrote and the answer comes back raw, read with orjson by
`worker.providers.completions`, which replay uses without importing the SDK. With `OPENAI_BASE_URL` the
same calls go to any OpenAI-compatible server (vLLM, LM Studio, ...).
"""

from __future__ import annotations

import httpx2
import openai
import orjson

from worker.providers.answers import read_answer
from worker.providers.base import ProviderReply, ProviderRequest
from worker.providers.classify import connection_error, status_error, unexpected_error
from worker.providers.completions import reply_from_completion
from worker.providers.messages import error_detail

__all__ = ["OpenAIProvider"]

#: How messages name the provider.
_LABEL = "OpenAI"

_PATH = "/chat/completions"
#: A backstop only: the job's `timeoutSecs` (at most 3600) bounds every call.
_TRANSPORT_TIMEOUT = httpx2.Timeout(3700.0, connect=10.0)
#: The SDK's own default, passed explicitly: left to itself the SDK would read `OPENAI_BASE_URL` again from the
#: environment, where an empty value (which the settings count as unset) would become the base URL "".
_DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider:
    """One Chat Completions call per `complete`; `max_retries=0` because `call_with_retry` is the only retry loop."""

    name = "openai"

    def __init__(self, *, api_key: str, base_url: str | None = None, concurrency: int) -> None:
        # The SDK's aiohttp transport, as for Anthropic: at 1,000 calls in flight it spent 0.70 ms of CPU per call
        # against 2.84 ms on httpx2's own pool (`python -m bench.transport`, docs/benchmarks.md).
        limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        http_client = openai.DefaultAioHttpClient(limits=limits, timeout=_TRANSPORT_TIMEOUT)
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or _DEFAULT_BASE_URL,
            max_retries=0,
            timeout=_TRANSPORT_TIMEOUT,
            http_client=http_client,
        )
        self._api_key = api_key

    async def complete(self, request: ProviderRequest) -> ProviderReply:
        # Nothing the provider says back may carry the key or the prompt into a result or a log.
        secrets = (self._api_key, request.system_prompt, request.user_message)
        messages: list[dict[str, str]] = []
        # The contract sends the system prompt as a `developer` message; an empty one says nothing and is left out.
        if request.system_prompt:
            messages.append({"role": "developer", "content": request.system_prompt})
        messages.append({"role": "user", "content": request.user_message})
        payload = {"model": request.model, "messages": messages, "max_completion_tokens": request.max_tokens}
        try:
            # The SDK's documented generic call rather than `chat.completions.create`: that one first walks the
            # params through the SDK's typed transform, about 45% of the CPU of a call, to send the same JSON
            # (1.11 -> 0.57 ms per call). The SDK still sends the request (auth, base URL, headers), raises its errors.
            raw = await self._client.post(_PATH, cast_to=httpx2.Response, content=orjson.dumps(payload))
            body = raw.content
        except openai.APIStatusError as exc:
            detail = error_detail(exc.body)
            raise status_error(
                _LABEL, exc.status_code, detail, exc.response.headers, secrets=secrets, error_code=_code_of(exc.body)
            ) from None
        # A connection that ends before the whole answer arrived is one of these too (docs/contract.md §4: retried).
        except openai.APIConnectionError as exc:
            raise connection_error(_LABEL, exc.__cause__ or exc) from None
        except Exception as exc:
            raise unexpected_error(_LABEL, f"{type(exc).__name__}: {exc}", secrets=secrets) from None
        # docs/contract.md §4: an answer that is not a completion fails the job, billing the usage it validly reported.
        shape = "a Chat Completions answer"
        return read_answer(_LABEL, raw.status_code, body, reply_from_completion, shape=shape, secrets=secrets)

    async def aclose(self) -> None:
        await self._client.close()


def _code_of(body: object) -> str | None:
    """The `code` of OpenAI's error object (the SDK hands over the object inside `{"error": ...}`)."""
    if isinstance(body, dict):
        code = body.get("code")
        return code if isinstance(code, str) else None
    return None
