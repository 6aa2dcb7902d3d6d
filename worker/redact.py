"""Redaction for recorded jobs (`agent-worker record --redact`): prompt text out, every size the worker reads kept.

The worker reads three sizes off a job's text: the user message's length in characters (the
`input_too_large` limit), and the UTF-8 byte length of the system prompt plus the user message (the
quota reservation, docs/contract.md §9). A placeholder therefore replaces each character with one of
the same UTF-8 width: ASCII becomes the letters of "redacted ", two-byte characters `é`, three-byte `…`,
four-byte `𝐱`. None of these needs escaping in JSON.

- `systemPrompt` and `inputPayload.message` (when a string) are replaced character for character.
- Every other string value inside `inputPayload` is replaced so that its rendering as compact JSON
  keeps its length (a `"` or a newline, written `\\"` or `\\n`, becomes two placeholder characters):
  when there is no `message` string, the user message is the payload rendered as JSON. Object keys are
  kept; so are numbers, the envelope and every other field.
- A body that is JSON but not an object has every string replaced the same way; a body that is not JSON
  at all is replaced by as many `x` bytes: both are dead-lettered as before, for the same reason.

The body is written again as compact JSON, so its own length may differ from the original's when the
publisher used whitespace or escapes; big integers are kept exactly (stdlib `json`, not orjson).
The `Maschina-Signature` header is dropped: it signed the original body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

from worker.contract import SIGNATURE_HEADER

__all__ = ["redact_body", "redact_headers", "redacted_text"]

_ASCII_FILLER = "redacted "
_WIDE_FILLER = {2: "é", 3: "…", 4: "𝐱"}


def redacted_text(text: str) -> str:
    """`text` with every character replaced by a placeholder of the same UTF-8 width."""
    return "".join(
        _ASCII_FILLER[index % len(_ASCII_FILLER)] if char < "\x80" else _WIDE_FILLER[len(char.encode())]
        for index, char in enumerate(text)
    )


def redact_headers(headers: Mapping[str, str] | None) -> dict[str, str] | None:
    """The headers without the signature, which no longer matches a redacted body."""
    if headers is None:
        return None
    return {name: value for name, value in headers.items() if name.lower() != SIGNATURE_HEADER.lower()}


def redact_body(body: bytes) -> bytes:
    """The job body with its prompt text replaced (see the module's documentation)."""
    try:
        orjson.loads(body)  # the door's own reading decides what is JSON
    except orjson.JSONDecodeError:
        return b"x" * len(body)
    try:
        document = json.loads(body.decode("utf-8"))
    except RecursionError:  # nested deeper than the stdlib parser goes; nothing of it can be kept anyway
        return b"x" * len(body)
    if isinstance(document, dict):
        data = document.get("data")
        _redact_job(data if isinstance(data, dict) else document)
    else:
        document = _rendered(document)
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _redact_job(job: dict[str, Any]) -> None:
    prompt = job.get("systemPrompt")
    if isinstance(prompt, str):
        job["systemPrompt"] = redacted_text(prompt)
    payload = job.get("inputPayload")
    if isinstance(payload, dict):
        message = payload.get("message")
        redacted = _rendered(payload)
        if isinstance(message, str):
            redacted["message"] = redacted_text(message)
        job["inputPayload"] = redacted


def _rendered(value: Any) -> Any:
    """`value` with every string replaced by one whose compact JSON rendering has the same length."""
    if isinstance(value, str):
        return redacted_text(orjson.dumps(value)[1:-1].decode("utf-8"))
    if isinstance(value, dict):
        return {key: _rendered(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rendered(item) for item in value]
    return value
