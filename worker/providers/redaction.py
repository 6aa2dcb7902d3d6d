"""Provider text scrubbed before it reaches a result or a log (docs/contract.md §11).

A provider's error text may quote what it was sent: the API key, or the job's system prompt and user
message, whole or in part, plain or JSON-escaped (`\\"`, `\\n`, `\\\\`, `\\u00e9`), cut anywhere. The
contract's rule is about any 20 consecutive characters of the prompt texts, so matching whole prompts
is not enough: `Redactor` replaces every stretch of the text that shares 20 consecutive characters with
a prompt (or with one of its escaped forms) by `[redacted]`.

Cost. Provider messages are short (they are cut to `MAX_DETAIL` characters first) and prompts may be
100,000 characters, so the prompt is never indexed whole: any 20 common characters contain one of the
prompt's 10-character blocks that start at a multiple of 10, so the prompt is read in steps of 10 against
the message's 10-character windows, and only those hits are checked in full. A 100,000-character prompt
costs about a millisecond; a short one a few microseconds. Nothing is built until a message needs scrubbing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace

import orjson

from worker.providers.base import ProviderReply, ProviderRequest

__all__ = ["MAX_DETAIL", "REDACTED", "WINDOW", "Redactor", "cut", "provider_message", "scrubbed_reply"]

#: docs/contract.md §11: no 20 consecutive characters of a job's system prompt or user message are ever written.
WINDOW = 20
#: Half a window: every common stretch of `WINDOW` characters holds one whole aligned block of this size.
_BLOCK = WINDOW // 2
#: What stands for removed text.
REDACTED = "[redacted]"
#: Provider messages are quoted into results; a long one is cut so a result stays small.
MAX_DETAIL = 300
#: A secret shorter than this would only mangle ordinary words of a message without hiding anything.
_MIN_SECRET = 8
#: Said instead when scrubbing once was not enough (a prompt that itself holds the redaction mark).
_WITHHELD = "[the provider's text was withheld: it quoted the job's prompt]"


def cut(text: str, limit: int = MAX_DETAIL) -> str:
    """`text` at most `limit` characters long, ending in `…` when it was cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def provider_message(prefix: str, text: str, secrets: Iterable[str | None]) -> str:
    """`prefix` (ours) and the provider's `text` cut to `MAX_DETAIL`, scrubbed as one message.

    Scrubbed whole rather than the provider's part alone: a stretch of a prompt could straddle the two.
    """
    return Redactor(secrets)(prefix + cut(text), limit=None)


def scrubbed_reply(reply: ProviderReply, request: ProviderRequest) -> ProviderReply:
    """`reply` with its stop reason and model name scrubbed of the request's prompt texts (`reply` when clean).

    Both are the provider's own words that reach the result (`stopReason`, passed through by §4) or the call
    span (`gen_ai.response.model`); a server that echoes the prompt there must not carry it past us (§11).
    The text is the model's answer, the one place the prompt may appear. A short value is spared the work.
    """
    stop_reason, model = texts = (reply.stop_reason, reply.model)
    # Every reply comes through here: two plain tests, no generator, for the common short values.
    if (stop_reason is None or len(stop_reason) < WINDOW) and (model is None or len(model) < WINDOW):
        return reply
    redact = Redactor((request.system_prompt, request.user_message))
    stop_reason, model = (None if text is None else redact(text, limit=None) for text in texts)
    if (stop_reason, model) == texts:
        return reply
    return replace(reply, stop_reason=stop_reason, model=model)


class Redactor:
    """Scrubs text of `secrets`: the API key and the job's prompt texts of one call.

    Each secret is replaced wherever it occurs whole, and any 20-character stretch shared with a secret
    (or with its JSON-escaped forms) is replaced too, so a key or prompt quoted in part is caught as well.
    Cheap to build per call: the escaped forms are made only when a message has to be checked.
    """

    __slots__ = ("_forms", "_prompts", "_secrets")

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        kept = tuple(secret for secret in secrets if secret and len(secret) >= _MIN_SECRET)
        self._secrets = kept
        self._prompts = tuple(secret for secret in kept if len(secret) >= WINDOW)
        self._forms: tuple[str, ...] | None = None

    def __call__(self, text: str, *, limit: int | None = MAX_DETAIL) -> str:
        """`text` cut to `limit` characters, then without any secret or prompt stretch."""
        if limit is not None:
            text = cut(text, limit)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        if not self._prompts or len(text) < WINDOW:
            return text
        forms = self._prompt_forms()
        scrubbed = _without_shared(text, forms)
        # A stretch new after scrubbing overlaps a mark, so holds its "[" or its "]": a prompt without either
        # cannot share one, and the second look is spared.
        marked = scrubbed is not text and any("[" in form or "]" in form for form in forms)
        if marked and _shared_windows(scrubbed, forms):
            return _WITHHELD
        return scrubbed

    def _prompt_forms(self) -> tuple[str, ...]:
        if self._forms is None:
            forms: dict[str, None] = {}
            for prompt in self._prompts:
                forms[prompt] = None
                forms.update(dict.fromkeys(_escaped_forms(prompt)))
            self._forms = tuple(forms)
        return self._forms


def _escaped_forms(prompt: str) -> list[str]:
    """How a provider may quote `prompt` inside JSON: escaped with non-ASCII kept, as `\\uXXXX`, and as Go writes it.

    Go's encoding/json (Ollama) also writes `<`, `>`, `&` as `\\u003c`, `\\u003e`, `\\u0026`.
    """
    kept = orjson.dumps(prompt).decode()[1:-1]
    forms = [kept, json.dumps(prompt)[1:-1]]
    if "<" in kept or ">" in kept or "&" in kept:
        forms.append(kept.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))
    return forms


def _shared_windows(text: str, forms: Iterable[str]) -> set[str]:
    """The `WINDOW`-character stretches of `text` that occur in any of `forms`."""
    windows = {text[i : i + WINDOW] for i in range(len(text) - WINDOW + 1)}
    blocks = {text[i : i + _BLOCK] for i in range(len(text) - _BLOCK + 1)}
    shared: set[str] = set()
    # The windows that hold a block are the 20-character stretches of the 30 characters around it; a repetitive
    # prompt repeats those spans, and each is looked at once.
    spans: set[str] = set()
    for form in forms:
        for block_start in range(0, len(form) - _BLOCK + 1, _BLOCK):
            if form[block_start : block_start + _BLOCK] not in blocks:
                continue
            span_start = max(0, block_start - _BLOCK)
            span = form[span_start : block_start + WINDOW]
            if span in spans:
                continue
            spans.add(span)
            for start in range(min(block_start - span_start, len(span) - WINDOW) + 1):
                window = span[start : start + WINDOW]
                if window in windows:
                    shared.add(window)
    return shared


def _without_shared(text: str, forms: Iterable[str]) -> str:
    """`text` with each run of characters covered by a shared window replaced by `REDACTED` (`text` itself if none)."""
    shared = _shared_windows(text, forms)
    if not shared:
        return text
    covered = [False] * len(text)
    for i in range(len(text) - WINDOW + 1):
        if text[i : i + WINDOW] in shared:
            covered[i : i + WINDOW] = [True] * WINDOW
    parts: list[str] = []
    i = 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            parts.append(REDACTED)
        else:
            start = i
            while i < len(text) and not covered[i]:
                i += 1
            parts.append(text[start:i])
    return "".join(parts)
