"""A fake OpenAI Chat Completions API (`POST /v1/chat/completions`) on loopback, for tests, benchmarks and fault runs.

In-process: `async with FakeOpenAI(FakeConfig(delay=1.0)) as fake: ... fake.base_url ...`.
Out of process: `python -m testkit.fake openai --port 0 --delay 1.0 --fault-rate 0.2`
prints its URL on stdout when it is ready (see `testkit._cli`); `OPENAI_BASE_URL` is that URL + `/v1`.

Usage overrides (`FakeConfig.usage`, `Step.reply(usage=...)`) take the top-level names (`prompt_tokens`,
`completion_tokens`, `total_tokens`), `cached_tokens` and `reasoning_tokens` (which go inside their
`*_details`), and `prompt_tokens_details` / `completion_tokens_details` set to `None`, which leaves that
object out, as some OpenAI-compatible servers do.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from aiohttp import web

from testkit._fake import FakeServer, Step, json_response, retry_after_headers

__all__ = ["FakeOpenAI"]

#: (type, code, message) of the API's error object for each status, as api.openai.com sends them.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
#: What the API says with the codes a test names by `Step.fault(..., error_code=...)`.
_CODE_ERRORS: dict[str, tuple[str, str]] = {
    "insufficient_quota": (
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
}
_DETAIL_KEYS = {"cached_tokens": "prompt_tokens_details", "reasoning_tokens": "completion_tokens_details"}


class FakeOpenAI(FakeServer):
    """Speaks Chat Completions as the SDK expects it: the completion object, error bodies, `retry-after`."""

    kind: ClassVar[str] = "openai"
    cli_description: ClassVar[str] = "fake OpenAI Chat Completions API"
    default_fault_statuses: ClassVar[tuple[int, ...]] = (429, 500, 503)

    @property
    def base_url(self) -> str:
        """What `OPENAI_BASE_URL` should be set to (the API's paths start with `/v1`)."""
        return f"{self.url}/v1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._completions)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, self._answer_completions)

    async def _answer_completions(self, request: web.Request, step: Step, body: Any) -> web.StreamResponse:
        if step.kind in ("fault", "stream_error"):
            status = step.status if step.kind == "fault" else 500
            return _error(status, step.message, code=step.error_code, headers=retry_after_headers(step))
        key = self._key_problem(request)
        if key is not None:
            return _error(401, key, code="invalid_api_key")
        if request.content_type != "application/json":
            return _error(400, f"Unsupported content type: {request.content_type!r}; use application/json.")
        problem = _invalid(body)
        if problem is not None:
            message, param, code = problem
            return _error(400, message, param=param, code=code)
        if self.config.models is not None and body["model"] not in self.config.models:
            model = body["model"]
            return _error(404, f"The model `{model}` does not exist or you do not have access to it.")
        return json_response(self._completion(body, step), headers={"x-request-id": _request_id()})

    def _key_problem(self, request: web.Request) -> str | None:
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not key:
            return "You didn't provide an API key."
        if self.config.api_key is not None and key != self.config.api_key:
            # The real API shows the key's ends, the middle masked.
            return f"Incorrect API key provided: {key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}."
        return None

    def _completion(self, body: dict[str, Any], step: Step) -> dict[str, Any]:
        words = (step.text if step.text is not None else self.config.reply_text).split(" ")
        max_tokens: int = body["max_completion_tokens"]
        truncated = len(words) > max_tokens
        text = " ".join(words[:max_tokens])
        usage = _usage(
            {"prompt_tokens": _prompt_tokens(body), "completion_tokens": min(len(words), max_tokens)},
            {**self.config.usage, **(step.usage or {})},
        )
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:29]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": step.stop_reason or ("length" if truncated else "stop"),
                }
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": None,
            **(step.patch or {}),
        }


def _usage(computed: Mapping[str, int], overrides: Mapping[str, Any]) -> dict[str, Any]:
    top = {**computed, **{k: v for k, v in overrides.items() if k in ("prompt_tokens", "completion_tokens")}}
    usage: dict[str, Any] = {
        **top,
        "total_tokens": overrides.get("total_tokens", _sum(top.values())),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    for name, value in overrides.items():
        if name in _DETAIL_KEYS:
            usage[_DETAIL_KEYS[name]][name] = value
        elif name in ("prompt_tokens_details", "completion_tokens_details") and value is None:
            del usage[name]
    return usage


def _sum(values: Any) -> int | None:
    """The total of counts that may have been overridden with odd values: None when they do not add up."""
    counts = list(values)
    return sum(counts) if all(type(count) is int for count in counts) else None


def _invalid(body: Any) -> tuple[str, str | None, str | None] | None:
    """(message, param, code) of what the real API would refuse with a 400, for the fields the worker sends."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request.", None, None
    if not isinstance(body.get("model"), str):
        return "you must provide a model parameter", None, None
    if "max_tokens" in body:
        # What reasoning models (the o-series, GPT-5) answer; the worker must send max_completion_tokens.
        return (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            "max_tokens",
            "unsupported_parameter",
        )
    max_tokens = body.get("max_completion_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        return "max_completion_tokens: an integer of at least 1 is expected by this fake", "max_completion_tokens", None
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "[] is too short - 'messages'", "messages", "empty_array"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("developer", "system", "user", "assistant"):
            return "Invalid value for 'messages': each needs a known role.", "messages", "invalid_value"
    if body.get("stream"):
        return "stream: this fake does not stream", "stream", None
    return None


def _prompt_tokens(body: dict[str, Any]) -> int:
    """About four characters a token, like the real tokenizer on English text."""
    chars = 0
    for message in body["messages"]:
        content = message.get("content")
        chars += len(content) if isinstance(content, str) else 0
    return max(1, math.ceil(chars / 4))


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def _error(
    status: int,
    message: str | None,
    *,
    code: str | None = None,
    param: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    kind, default_code, default_message = _ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error")
    )
    if code in _CODE_ERRORS:
        kind, default_message = _CODE_ERRORS[code]
    error = {"message": message or default_message, "type": kind, "param": param, "code": code or default_code}
    return json_response({"error": error}, status=status, headers={**(headers or {}), "x-request-id": _request_id()})
