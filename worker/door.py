"""The single door: raw job bytes and headers in, a job or a verdict out (contract section 2, rules 1-4)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from worker.errors import DlqReason, ErrorCode
from worker.job import Job, RunRef

__all__ = ["DeadLetter", "Door", "Rejected", "Verdict"]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Unreadable: goes to the dead-letter stream with this reason; no result is published."""

    reason: DlqReason
    detail: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """Readable but invalid: a `rejected` result is published with this code and message."""

    ref: RunRef
    code: ErrorCode
    message: str


Verdict = Job | Rejected | DeadLetter


class Door:
    """Reads every incoming job; pure and synchronous, so the consumer, replay and demo share it."""

    def __init__(self, *, signing_key: bytes | None = None, reply_prefixes: tuple[str, ...] = ("_INBOX.",)) -> None:
        self._signing_key = signing_key
        self._reply_prefixes = reply_prefixes

    def open(self, body: bytes, headers: Mapping[str, str] | None = None) -> Verdict:
        raise NotImplementedError  # implemented with the message models (issue 2)
