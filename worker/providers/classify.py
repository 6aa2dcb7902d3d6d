"""The contract's error table in one place: an HTTP status or a dead connection becomes a `ProviderError`.

Every provider classifies through here, so Anthropic, OpenAI and Ollama can never disagree on what a 529 or a
refused connection means, and every message is scrubbed of the secrets the caller names (the API key and
the job's prompt texts, see `worker.providers.redaction`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime

from worker.contract import ErrorCode
from worker.providers.base import ProviderError
from worker.providers.redaction import provider_message

__all__ = [
    "MAX_RETRY_AFTER_SECS",
    "connection_error",
    "parse_retry_after",
    "status_error",
    "truncated_answer",
    "unexpected_error",
]


#: The longest wait a provider may ask for. A larger one (a year, 1e9 s) is a faulty header, not advice: taken
#: as it is, it would park the job for years as its nak delay, or overflow the server's duration.
MAX_RETRY_AFTER_SECS = 86_400.0


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms`, else `retry-after` as seconds or an HTTP date.

    At most `MAX_RETRY_AFTER_SECS`.
    """
    wait = _requested_wait(headers, now)
    return None if wait is None else min(wait, MAX_RETRY_AFTER_SECS)


def _requested_wait(headers: Mapping[str, str], now: float | None) -> float | None:
    millis = _seconds(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _seconds(value: str | None) -> float | None:
    """A finite number, at least 0; None for anything else.

    `inf` or `nan` is no wait at all: an infinite one would become a nak delay the NATS client cannot send.
    """
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return max(0.0, number) if math.isfinite(number) else None


#: Error codes a provider sends with a 429 that mean "out of credit", not "slow down": waiting does not help.
_OUT_OF_CREDIT = frozenset({"insufficient_quota"})


def _code_for_status(status: int, error_code: str | None) -> tuple[ErrorCode, bool]:
    if status == 429 and error_code in _OUT_OF_CREDIT:
        return ErrorCode.PROVIDER_AUTH, False
    if status in (401, 403):
        return ErrorCode.PROVIDER_AUTH, False
    if status == 429:
        return ErrorCode.PROVIDER_RATE_LIMITED, True
    if 400 <= status < 500:
        # docs/contract.md §4: every other 4xx (409, 418, 422, ...) is the provider refusing the request.
        return ErrorCode.PROVIDER_BAD_REQUEST, False
    if status >= 500:
        return ErrorCode.PROVIDER_UNAVAILABLE, True
    return ErrorCode.PROVIDER_ERROR, False


def status_error(
    provider: str,
    status: int,
    detail: str,
    headers: Mapping[str, str],
    *,
    secrets: Iterable[str | None] = (),
    error_code: str | None = None,
) -> ProviderError:
    """A provider's HTTP error answer, classified; `detail` is the provider's own error text.

    `error_code` is the provider's machine-readable code, when its error body has one (OpenAI's `code`).
    """
    code, retryable = _code_for_status(status, error_code)
    message = f"{provider} answered HTTP {status}"
    if detail:
        message = provider_message(f"{message}: ", detail, secrets)
    retry_after = parse_retry_after(headers) if retryable else None
    return ProviderError(code, message, retryable=retryable, retry_after=retry_after)


def connection_error(provider: str, exc: BaseException) -> ProviderError:
    """No answer at all (refused, reset, timed out at the transport): the provider is unavailable."""
    return ProviderError(
        ErrorCode.PROVIDER_UNAVAILABLE,
        f"{provider} could not be reached ({type(exc).__name__})",
        retryable=True,
    )


def truncated_answer(provider: str) -> ProviderError:
    """The connection ended before the answer was complete: a connection error (docs/contract.md §4), retried."""
    return ProviderError(
        ErrorCode.PROVIDER_UNAVAILABLE, f"{provider}'s answer ended before it was complete", retryable=True
    )


def unexpected_error(provider: str, what: str, *, secrets: Iterable[str | None] = ()) -> ProviderError:
    """Anything the table does not name: not retried, since nobody knows whether trying again helps."""
    return ProviderError(ErrorCode.PROVIDER_ERROR, provider_message(f"{provider}: ", what, secrets), retryable=False)
