"""The single door: raw job bytes and headers in, a job or a verdict out (docs/contract.md §2, rules 1, 2 and 4).

Rule 3 (a result already stored for the run) needs the results stream, so the consumer applies it
between `Door.open` and the pipeline; the door itself is pure and synchronous.

JSON is read with orjson, which rejects what the contract calls "not JSON" (a byte-order mark, `NaN`,
`Infinity`, invalid UTF-8, lone surrogates); nesting deeper than 1024 levels is `not_json`. orjson reads
integers beyond 64 bits as floats, so a job whose float may have been such an integer is read again
exactly (`worker.exact_json`: a `maxTokens` of 100000000000000000000 is an integer, and the digits of a
payload's big integers reach the model as written). Rendering an `inputPayload` as compact JSON fails
beyond 254 levels of nesting, which is `invalid_job`.

Nothing taken from the job is quoted in a message beyond 64 characters (`catalog.quote`), and the result
echoes a job's strings only up to 256 characters (docs/contract.md §6).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from catalog.quota import USER_ID as QUOTA_USER_ID
from catalog.quote import MAX_QUOTE_CHARS
from worker.contract import REPLY_PREFIX, SIGNATURE_HEADER, DlqReason, ErrorCode
from worker.exact_json import (
    ExactInt,
    NotJsonError,
    dumps_compact,
    has_long_digit_run,
    loads_exact,
    refused_as_infinite,
)
from worker.job import Job, RunRef
from worker.providers.redaction import Redactor
from worker.wire import (
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT_SECS,
    MAX_ECHO_CHARS,
    MAX_FIELD_CHARS,
    MAX_MESSAGE_CHARS,
    RUN_ID,
    JobData,
    reply_to_fault,
)

__all__ = ["DeadLetter", "Door", "Rejected", "Verdict"]

_SIGNATURE = re.compile(r"sha256=([0-9A-Fa-f]{64})")

# What each job field must be, for the rejection message.
_EXPECTED: dict[str, str] = {
    "type": 'absent or "agent.execute"',
    "runId": "a string of 1 to 128 characters of letters, digits, '_' and '-'",
    "agentId": f"a non-empty string of at most {MAX_FIELD_CHARS} characters",
    "userId": f"a non-empty string of at most {MAX_FIELD_CHARS} characters",
    "tier": f"a string of at most {MAX_FIELD_CHARS} characters",
    "model": f"a string of at most {MAX_FIELD_CHARS} characters, or absent or null",
    "systemPrompt": "a string, or absent or null",
    "inputPayload": "a JSON object, or absent or null",
    "timeoutSecs": "a JSON integer from 1 to 3600, or absent or null",
    "maxTokens": "a JSON integer of at least 1, or absent or null",
}
_QUOTA_USER_ID_FORM = "1 to 128 letters, digits, '_' and '-'"
# Values of these fields are never quoted in a message: they may carry prompt text.
_UNQUOTED = frozenset({"systemPrompt", "inputPayload"})


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

    def __init__(
        self,
        *,
        signing_key: bytes | None = None,
        reply_prefixes: tuple[str, ...] = (REPLY_PREFIX,),
        quotas: bool = False,
    ) -> None:
        self._signing_key = signing_key
        self._reply_prefixes = reply_prefixes
        # With quotas on, userId is a token of the usage bucket's keys (docs/contract.md §9): held to that form.
        self._quotas = quotas

    def open(self, body: bytes, headers: Mapping[str, str] | None = None) -> Verdict:
        if self._signing_key is not None:
            fault = _signature_fault(self._signing_key, body, headers)
            if fault is not None:
                return DeadLetter(DlqReason.BAD_SIGNATURE, fault)
        try:
            parsed = _read(body)
        except (orjson.JSONDecodeError, NotJsonError) as exc:
            return DeadLetter(DlqReason.NOT_JSON, f"The body is not UTF-8 JSON: {exc}.")
        if not isinstance(parsed, dict):
            return DeadLetter(DlqReason.NOT_OBJECT, f"The body is {_shown(parsed)}, not a JSON object.")
        job = _job_of(parsed)
        if _may_hold_big_integers(job, body):
            exact = _read_again(body)
            if exact is not None:
                parsed, job = exact, _job_of(exact)
        if job is parsed:
            where, job_id = "the job", None
        else:
            job_id = parsed.get("id")
            where, job_id = "the envelope's data", _echo(job_id)
        run_id = job.get("runId")
        if run_id is None:
            return DeadLetter(DlqReason.NO_RUN_ID, f"The runId of {where} is missing or null.")
        if not isinstance(run_id, str) or RUN_ID.fullmatch(run_id) is None:
            detail = f"The runId of {where} must be {_EXPECTED['runId']}, not {_shown(run_id)}."
            return DeadLetter(DlqReason.BAD_RUN_ID, _without_prompts(detail, job))
        return self._validate(job, run_id, job_id, parsed.get("replyTo"))

    def _validate(self, job: dict[str, Any], run_id: str, job_id: str | None, reply_to: object) -> Job | Rejected:
        reply_fault = None if reply_to is None else reply_to_fault(reply_to, self._reply_prefixes)
        ref = RunRef(
            run_id=run_id,
            job_id=job_id,
            agent_id=_echo(job.get("agentId")),
            user_id=_echo(job.get("userId")),
            tier=_echo(job.get("tier")),
            requested_model=_echo(job.get("model")) or None,
            reply_to=reply_to if reply_fault is None and isinstance(reply_to, str) else None,
        )
        try:
            data = JobData.model_validate(job)
        except ValidationError as exc:
            faults = _field_faults(job, exc)
        else:
            faults = []
        if self._quotas and _quota_user_fault(ref.user_id, faults):
            faults.append(f"userId must be {_QUOTA_USER_ID_FORM} when quotas are on, not {_shown(ref.user_id)}")
        if reply_fault is not None:
            faults.append(f"replyTo {reply_fault}, not {_shown(reply_to)}")
        if faults:
            fault_list = _without_prompts("Invalid job: " + "; ".join(faults) + ".", job)
            return Rejected(ref, ErrorCode.INVALID_JOB, fault_list)
        message = _user_message(data.input_payload or {})
        if message is None:
            return Rejected(
                ref, ErrorCode.INVALID_JOB, "Invalid job: inputPayload is nested too deeply to send as text."
            )
        if len(message) > MAX_MESSAGE_CHARS:
            return Rejected(
                ref,
                ErrorCode.INPUT_TOO_LARGE,
                f"The user message is {len(message):,} characters long; the limit is {MAX_MESSAGE_CHARS:,}.",
            )
        return Job(
            ref=ref,
            agent_id=data.agent_id,
            user_id=data.user_id,
            tier=data.tier,
            system_prompt=data.system_prompt,
            user_message=message,
            timeout_secs=DEFAULT_TIMEOUT_SECS if data.timeout_secs is None else data.timeout_secs,
            max_tokens=DEFAULT_MAX_TOKENS if data.max_tokens is None else data.max_tokens,
        )


def _signature_fault(key: bytes, body: bytes, headers: Mapping[str, str] | None) -> str | None:
    header = None if headers is None else headers.get(SIGNATURE_HEADER)
    if header is None:
        return f"The {SIGNATURE_HEADER} header is missing."
    match = _SIGNATURE.fullmatch(header)
    if match is None:
        return f"The {SIGNATURE_HEADER} header is malformed: expected sha256=<64 hex digits>."
    expected = hmac.digest(key, body, "sha256")
    if not hmac.compare_digest(expected, bytes.fromhex(match.group(1))):
        return f"The {SIGNATURE_HEADER} header does not match the body."
    return None


def _without_prompts(message: str, job: dict[str, Any]) -> str:
    """`message` without 20 characters of the job's prompt texts (docs/contract.md §11).

    A message quotes up to 64 characters of a job's value (a replyTo, a runId), and that value may repeat what
    the job's system prompt or user message says. Only refusals pay for this look, never a job that runs.
    """
    texts: list[str | None] = []
    prompt = job.get("systemPrompt")
    if isinstance(prompt, str):
        texts.append(prompt)
    payload = job.get("inputPayload")
    if isinstance(payload, dict):
        texts.append(_user_message(payload))
    return Redactor(texts)(message, limit=None)


def _user_message(payload: dict[str, Any]) -> str | None:
    """The text sent to the model (docs/contract.md §2, rule 4), or None when it is too deeply nested to render."""
    value: Any = payload
    if "message" in payload:
        value = payload["message"]
        if isinstance(value, str):
            return value
    try:
        return dumps_compact(value)
    except orjson.JSONEncodeError:
        return None


def _field_faults(job: dict[str, Any], error: ValidationError) -> list[str]:
    # pydantic reports fields in declaration order; a field with several errors is named once.
    failed = dict.fromkeys(str(detail["loc"][0]) for detail in error.errors(include_url=False, include_input=False))
    faults = []
    for field in failed:
        expected = _EXPECTED.get(field, "valid")
        if field not in job:
            faults.append(f"{field} is missing (it must be {expected})")
        else:
            faults.append(f"{field} must be {expected}, not {_shown(job[field], quote=field not in _UNQUOTED)}")
    return faults


def _quota_user_fault(user_id: str | None, faults: list[str]) -> bool:
    """A userId that is a valid string yet not a usage key's token (already faulted otherwise: named once)."""
    named = any(fault.startswith("userId ") for fault in faults)
    return bool(user_id) and not named and QUOTA_USER_ID.fullmatch(user_id or "") is None


def _read(body: bytes) -> Any:
    """The body's JSON: orjson's reading, or the exact one when orjson refused a number beyond a double's range."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if not refused_as_infinite(exc):
            raise
        parsed = loads_exact(body)
        if parsed is None:  # nested deeper than Python reads: orjson's refusal stands
            raise
        return parsed


def _read_again(body: bytes) -> dict[str, Any] | None:
    """The exact reading of a body orjson accepted; None (orjson's reading stands) if it differs in kind or fails.

    Both parsers take the same JSON, so neither should happen; the door must not raise whatever the body.
    """
    try:
        exact = loads_exact(body)
    except NotJsonError:
        return None
    return exact if isinstance(exact, dict) else None


def _job_of(parsed: dict[str, Any]) -> dict[str, Any]:
    """An envelope's `data` when it is an object, else the body itself is the job (docs/contract.md §2, rule 2)."""
    data = parsed.get("data")
    return data if isinstance(data, dict) else parsed


def _may_hold_big_integers(job: dict[str, Any], body: bytes) -> bool:
    """Whether orjson may have read an integer beyond 64 bits as a float where its value matters.

    Checked in order of cost: the two integer fields, then, only when the payload is sent as JSON text
    rather than as its `message` string, the body's digits.
    """
    if type(job.get("maxTokens")) is float or type(job.get("timeoutSecs")) is float:
        return True
    payload = job.get("inputPayload")
    if not isinstance(payload, dict) or isinstance(payload.get("message"), str):
        return False
    return has_long_digit_run(body)


def _echo(value: object) -> str | None:
    """A job's string as its result echoes it: only a string of at most 256 characters (docs/contract.md §6)."""
    return value if isinstance(value, str) and len(value) <= MAX_ECHO_CHARS else None


def _shown(value: object, *, quote: bool = True) -> str:
    """A short description of a JSON value for a message: scalars as JSON, containers by kind."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        if not quote:
            return "a string"
        if len(value) > MAX_QUOTE_CHARS:
            return f"a string of {len(value):,} characters"
        return orjson.dumps(value).decode()
    if isinstance(value, ExactInt):
        return f"an integer of {value.digits:,} digits"
    return orjson.dumps(value).decode()
