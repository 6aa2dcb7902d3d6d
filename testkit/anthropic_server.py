"""A fake Anthropic Messages API (`POST /v1/messages`) on loopback, for tests, benchmarks and fault runs.

In-process: `async with FakeAnthropic(FakeConfig(delay=1.0)) as fake: ... fake.url ...`.
Out of process: `python -m testkit.fake anthropic --port 0 --delay 1.0 --fault-rate 0.2`
prints its URL on stdout when it is ready (see `testkit._cli`).
"""

from __future__ import annotations

import math
import uuid
from typing import Any, ClassVar

from aiohttp import web

from testkit._fake import FakeServer, Step, json_response, retry_after_headers

__all__ = ["FakeAnthropic"]

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_ERROR_MESSAGES = {
    "invalid_request_error": "Invalid request.",
    "authentication_error": "invalid x-api-key",
    "permission_error": "Your API key does not have permission to use the specified resource.",
    "not_found_error": "The requested resource could not be found.",
    "request_too_large": "Request exceeds the maximum allowed number of bytes.",
    "rate_limit_error": "Number of request tokens has exceeded your per-minute rate limit.",
    "api_error": "Internal server error",
    "overloaded_error": "Overloaded",
}


class FakeAnthropic(FakeServer):
    """Speaks the Messages API as the SDK expects it: the message object, error bodies, `retry-after`, `request-id`."""

    kind: ClassVar[str] = "anthropic"
    cli_description: ClassVar[str] = "fake Anthropic Messages API"
    default_fault_statuses: ClassVar[tuple[int, ...]] = (429, 529, 500)

    @property
    def base_url(self) -> str:
        """What `ANTHROPIC_BASE_URL` should be set to."""
        return self.url

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._messages)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, self._answer_messages)

    async def _answer_messages(self, request: web.Request, step: Step, body: Any) -> web.StreamResponse:
        if step.kind in ("fault", "stream_error"):
            return _error(step.status if step.kind == "fault" else 500, step.message, retry_after_headers(step))
        if not self._authorised(request):
            return _error(401, None)
        problem = _invalid(body)
        if problem:
            return _error(400, problem)
        if self.config.models is not None and body["model"] not in self.config.models:
            return _error(404, f"model: {body['model']}")
        return json_response(self._message(body, step), headers={"request-id": _request_id()})

    def _authorised(self, request: web.Request) -> bool:
        key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not key:
            return False
        return self.config.api_key is None or key == self.config.api_key

    def _message(self, body: dict[str, Any], step: Step) -> dict[str, Any]:
        words = (step.text if step.text is not None else self.config.reply_text).split(" ")
        max_tokens: int = body["max_tokens"]
        truncated = len(words) > max_tokens
        text = " ".join(words[:max_tokens])
        usage: dict[str, Any] = {
            "input_tokens": _prompt_tokens(body),
            "output_tokens": min(len(words), max_tokens),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
        usage.update(self.config.usage)
        usage.update(step.usage or {})
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": step.stop_reason or ("max_tokens" if truncated else "end_turn"),
            "stop_sequence": None,
            "usage": {**usage, "service_tier": "standard"},
            **(step.patch or {}),
        }


def _invalid(body: Any) -> str | None:
    """What the real API would refuse with a 400, for the fields the worker sends."""
    if not isinstance(body, dict):
        return "The request body is not valid JSON."
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        return "max_tokens: Field required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: Field required"
    if body.get("stream"):
        return "stream: this fake does not stream"
    return None


def _prompt_tokens(body: dict[str, Any]) -> int:
    """About four characters a token, like the real tokenizer on English text."""
    chars = len(body["system"]) if isinstance(body.get("system"), str) else 0
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        chars += len(content) if isinstance(content, str) else 0
    return max(1, math.ceil(chars / 4))


def _request_id() -> str:
    return f"req_{uuid.uuid4().hex[:24]}"


def _error(status: int, message: str | None, headers: dict[str, str] | None = None) -> web.Response:
    error_type = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    request_id = _request_id()
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message or _ERROR_MESSAGES.get(error_type, "Error")},
        "request_id": request_id,
    }
    return json_response(body, status=status, headers={**(headers or {}), "request-id": request_id})
