"""A fake Ollama `POST /api/chat` on loopback: NDJSON streams, single-object answers and Ollama's error shapes.

In-process: `async with FakeOllama() as fake: ... fake.url ...` (what `OLLAMA_HOST` should be).
Out of process: `python -m testkit.fake ollama --port 0 --delay 1.0` prints its URL when ready.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

from aiohttp import web

from testkit._fake import FakeServer, Step, dumps, json_response, retry_after_headers

__all__ = ["FakeOllama"]

_ERROR_MESSAGES = {
    400: "invalid request",
    404: "model not found",
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
    503: "server busy, please try again.  maximum pending requests exceeded",
}


class FakeOllama(FakeServer):
    """Speaks `/api/chat` as Ollama does; streams unless asked `"stream": false` (like Ollama itself)."""

    kind: ClassVar[str] = "ollama"
    cli_description: ClassVar[str] = "fake Ollama /api/chat"
    default_fault_statuses: ClassVar[tuple[int, ...]] = (503, 500)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/api/chat", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self.serve(request, self._answer_chat)

    async def _answer_chat(self, request: web.Request, step: Step, body: Any) -> web.StreamResponse:
        if step.kind == "fault":
            return _error(step.status, step.message or _ERROR_MESSAGES.get(step.status, "error"), step)
        if not isinstance(body, dict):
            return _error(400, "invalid character in request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "model is required")
        if self.config.models is not None and model not in self.config.models:
            return _error(404, f"model '{model}' not found")
        streamed = body.get("stream", True) is not False or self.config.stream_always
        started = time.monotonic_ns()
        chunks, final = self._generate(body, step, started)
        if not streamed:
            if step.kind == "stream_error":
                # Without streaming, Ollama turns a failure during generation into a 500 with the error.
                return _error(500, step.message or "error", step)
            text = "".join(chunk["message"]["content"] for chunk in chunks)
            answer = {**final, "message": {"role": "assistant", "content": text}, **(step.patch or {})}
            return json_response(answer)
        response = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await response.prepare(request)
        if step.kind == "stream_error":
            # Ollama reports a failure after the headers went out as one more line, with status 200.
            lines = [*chunks[:1], {"error": step.message or "error"}]
            await response.write(b"".join(dumps(line) + b"\n" for line in lines))
        elif step.kind == "truncated":
            # The stream breaks off without its `done` object: Ollama went away mid-answer.
            await response.write(b"".join(dumps(chunk) + b"\n" for chunk in chunks))
            assert request.transport is not None
            request.transport.abort()
            return response
        else:
            await response.write(b"".join(dumps(chunk) + b"\n" for chunk in [*chunks, final]))
        await response.write_eof()
        return response

    def _generate(self, body: dict[str, Any], step: Step, started: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The streamed chunks (a word each) and the final `done` object of an answer."""
        model = body["model"]
        options = body.get("options")
        num_predict = options.get("num_predict") if isinstance(options, dict) else None
        words = (step.text if step.text is not None else self.config.reply_text).split(" ")
        limited = isinstance(num_predict, int) and num_predict >= 0 and len(words) > num_predict
        if limited:
            words = words[:num_predict]
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        chunks = [
            {
                "model": model,
                "created_at": created,
                "message": {"role": "assistant", "content": word if i == 0 else " " + word},
                "done": False,
            }
            for i, word in enumerate(words)
        ]
        elapsed = time.monotonic_ns() - started
        final: dict[str, Any] = {
            "model": model,
            "created_at": created,
            "message": {"role": "assistant", "content": ""},
            "done_reason": step.stop_reason or ("length" if limited else "stop"),
            "done": True,
            "total_duration": elapsed,
            "load_duration": 0,
            "prompt_eval_count": _prompt_tokens(body),
            "prompt_eval_duration": elapsed // 2,
            "eval_count": len(words),
            "eval_duration": elapsed // 2,
        }
        final.update(self.config.usage)
        final.update(step.usage or {})
        final.update(step.patch or {})
        return chunks, final


def _prompt_tokens(body: dict[str, Any]) -> int:
    messages = body.get("messages")
    chars = 0
    for message in messages if isinstance(messages, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        chars += len(content) if isinstance(content, str) else 0
    return max(1, math.ceil(chars / 4))


def _error(status: int, message: str, step: Step | None = None) -> web.Response:
    return json_response({"error": message}, status=status, headers=retry_after_headers(step) if step else None)
