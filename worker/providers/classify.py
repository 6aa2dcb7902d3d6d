"""The contract's error table in one place: an HTTP status or a dead connection becomes a `ProviderError`.

Both providers classify through here, so Anthropic and Ollama can never disagree on what a 529 or a
refused connection means, and every message is scrubbed of the secrets the caller names.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime

from worker.errors import ErrorCode
from worker.providers.base import ProviderError

__all__ = ["connection_error", "parse_retry_after", "redact", "status_error", "unexpected_error"]

#: Provider messages are quoted into results; a long one is cut so a result stays small.
_MAX_DETAIL = 300
#: Shorter secrets (a prompt of "hi") would only mangle ordinary words of the message without hiding anything.
_MIN_SECRET = 8


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (the API key, the prompt texts) replaced, cut to a length fit for a result."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET:
            text = text.replace(secret, "[redacted]")
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms`, else `retry-after` as seconds or an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _code_for_status(status: int) -> tuple[ErrorCode, bool]:
    if status in (401, 403):
        return ErrorCode.PROVIDER_AUTH, False
    if status in (400, 404, 413):
        return ErrorCode.PROVIDER_BAD_REQUEST, False
    if status == 429:
        return ErrorCode.PROVIDER_RATE_LIMITED, True
    if status >= 500:
        return ErrorCode.PROVIDER_UNAVAILABLE, True
    return ErrorCode.PROVIDER_ERROR, False


def status_error(
    provider: str, status: int, detail: str, headers: Mapping[str, str], *, secrets: Iterable[str | None] = ()
) -> ProviderError:
    """A provider's HTTP error answer, classified; `detail` is the provider's own error text."""
    code, retryable = _code_for_status(status)
    message = f"{provider} answered HTTP {status}"
    if detail:
        message += f": {redact(detail, secrets)}"
    retry_after = parse_retry_after(headers) if retryable else None
    return ProviderError(code, message, retryable=retryable, retry_after=retry_after)


def connection_error(provider: str, exc: BaseException) -> ProviderError:
    """No answer at all (refused, reset, timed out at the transport): the provider is unavailable."""
    return ProviderError(
        ErrorCode.PROVIDER_UNAVAILABLE,
        f"{provider} could not be reached ({type(exc).__name__})",
        retryable=True,
    )


def unexpected_error(provider: str, what: str, *, secrets: Iterable[str | None] = ()) -> ProviderError:
    """Anything the table does not name: not retried, since nobody knows whether trying again helps."""
    return ProviderError(ErrorCode.PROVIDER_ERROR, f"{provider}: {redact(what, secrets)}", retryable=False)
