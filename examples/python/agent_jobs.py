"""Publish an agent execute job to agent-worker and await its billed result, for Python callers (nats-py).

Copy this file into your service; it needs nothing but `nats-py`. The wire contract is docs/contract.md.

    reply = await nc.subscribe(nc.new_inbox())     # BEFORE publishing: a copy sent to nobody is lost
    await publish_job(js, job, reply_to=reply.subject, signing_key=key)
    result = await await_result(js, job["runId"], timeout=60.0, reply=reply)

Without `reply`, `await_result` reads the run's record in the results stream (an ordered consumer on
`maschina.results.agent.execute.<runId>`), which also finds a run that finished long ago.

Points that cost time:
- `replyTo` sits at the top level of the envelope; inside `data` it is ignored. It must start with one of the
  worker's WORKER_REPLY_PREFIXES (default `_INBOX.`), else the job is `rejected` with `invalid_job`: a
  connection with a custom inbox prefix needs that prefix added there.
- A job that is dead-lettered (bad signature, body not JSON, bad runId, out of deliveries) gets neither a
  result nor a copy: every wait needs a timeout, and ends in `ResultTimeoutError`.
- The message limit (100,000 characters) counts code points: Python's `len(str)` counts the same.
- `billing.multiplier` is a JSON string (an exact decimal): read it with `decimal.Decimal`, never `float`.
- The jobs stream drops a re-publish with the same `Nats-Msg-Id` (the run id) for its duplicate window
  (2 min): a re-publish meant to get the stored result sent to a new `replyTo` needs another `msg_id`.
"""

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, NotRequired, TypedDict

from nats.aio.subscription import Subscription
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import NotFoundError

__all__ = [
    "DLQ_SUBJECT",
    "JOB_SUBJECT",
    "RESULTS_STREAM",
    "RESULT_SUBJECT_PREFIX",
    "Billing",
    "Job",
    "Result",
    "ResultError",
    "ResultTimeoutError",
    "Usage",
    "await_result",
    "publish_job",
    "result_subject",
    "signature",
]

JOB_SUBJECT = "maschina.jobs.agent.agent.execute"
RESULTS_STREAM = "MASCHINA_RESULTS"
RESULT_SUBJECT_PREFIX = "maschina.results.agent.execute."
DLQ_SUBJECT = "maschina.dlq.agent.execute"


class Job(TypedDict):
    """The job: the envelope's `data` (camelCase, as on the wire)."""

    runId: str
    agentId: str
    userId: str
    tier: str
    type: NotRequired[Literal["agent.execute"]]
    model: NotRequired[str | None]
    systemPrompt: NotRequired[str | None]
    inputPayload: NotRequired[dict[str, Any] | None]
    timeoutSecs: NotRequired[int | None]
    maxTokens: NotRequired[int | None]


class Usage(TypedDict):
    inputTokens: int
    outputTokens: int
    cacheCreationInputTokens: int
    cacheReadInputTokens: int


class Billing(TypedDict):
    multiplier: str
    billedInputTokens: int
    billedOutputTokens: int
    billedTokens: int


class ResultError(TypedDict):
    code: str
    message: str
    retryable: bool


class Result(TypedDict):
    """A run's billed result, as stored in the results stream and copied to `replyTo`."""

    version: int
    type: Literal["agent.execute.result"]
    jobId: str | None
    runId: str
    agentId: str | None
    userId: str | None
    tier: str | None
    status: Literal["completed", "rejected", "failed", "timed_out"]
    requestedModel: str | None
    model: str | None
    provider: str | None
    outputPayload: dict[str, Any] | None
    stopReason: str | None
    usage: Usage
    billing: Billing
    error: ResultError | None
    attempt: int
    workerId: str
    startedAt: str
    finishedAt: str
    durationMs: int


class ResultTimeoutError(TimeoutError):
    """No result for the run within the wait: most often the job was dead-lettered, which publishes no result."""

    def __init__(self, run_id: str, timeout: float) -> None:
        self.run_id = run_id
        self.timeout = timeout
        super().__init__(
            f"no result for run {run_id} within {timeout:g} s. A dead-lettered job gets no result: look for it in "
            f"the MASCHINA_DLQ stream ({DLQ_SUBJECT}, header Maschina-Dlq-Reason: bad_signature, not_json, "
            "not_object, no_run_id, bad_run_id or max_deliveries_exceeded). Otherwise no worker is consuming, or "
            "the run is still going (each delivery may take the job's timeoutSecs)."
        )


def result_subject(run_id: str) -> str:
    """Where the run's one result record is stored."""
    return RESULT_SUBJECT_PREFIX + run_id


def signature(body: bytes, key: bytes | str) -> str:
    """The `Maschina-Signature` header value: HMAC-SHA256 of the exact body bytes published (a str key as UTF-8)."""
    secret = key.encode() if isinstance(key, str) else key
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


async def publish_job(
    js: JetStreamContext,
    job: Job,
    *,
    reply_to: str | None = None,
    signing_key: bytes | str | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
    job_id: str | None = None,
    msg_id: str | None = None,
    subject: str = JOB_SUBJECT,
) -> PubAck:
    """Publish `job` in the event envelope; the PubAck's `duplicate` is True when the jobs stream dropped it.

    `Nats-Msg-Id` is the run id unless `msg_id` says otherwise. `signing_key` is the worker's
    WORKER_SIGNING_KEY; `traceparent`/`tracestate` continue the caller's W3C trace in the worker.
    """
    envelope = {
        "id": job_id or str(uuid.uuid4()),
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "version": 1,
        "subject": subject,
        "replyTo": reply_to,
        "data": job,
    }
    # allow_nan=False: the worker dead-letters NaN and Infinity as not JSON.
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    headers = {"Nats-Msg-Id": msg_id or job["runId"]}
    if signing_key is not None:
        headers["Maschina-Signature"] = signature(body, signing_key)
    if traceparent is not None:
        headers["traceparent"] = traceparent
    if tracestate is not None:
        headers["tracestate"] = tracestate
    return await js.publish(subject, body, headers=headers)


async def await_result(
    js: JetStreamContext,
    run_id: str,
    *,
    # The deadline is part of the answer (a missed copy is looked up at it), not only a cancellation.
    timeout: float,  # noqa: ASYNC109
    reply: Subscription | None = None,
    results_stream: str = RESULTS_STREAM,
) -> Result:
    """The run's result: the copy on `reply` when given, else its record in the results stream.

    `reply` must be subscribed before the job is published; it is unsubscribed here. Raises
    `ResultTimeoutError` when nothing comes within `timeout` seconds.
    """
    if reply is not None:
        try:
            msg = await reply.next_msg(timeout=timeout)
            return _parse(msg.data)
        except NatsTimeoutError:
            # The copy is plain NATS, lost if this connection was down when it was sent; the record is not.
            stored = await _stored_result(js, results_stream, run_id)
            if stored is not None:
                return stored
            raise ResultTimeoutError(run_id, timeout) from None
        finally:
            await reply.unsubscribe()
    # An ordered consumer delivers the record whether it was stored before or after this call.
    sub = await js.subscribe(result_subject(run_id), stream=results_stream, ordered_consumer=True)
    try:
        msg = await sub.next_msg(timeout=timeout)
        return _parse(msg.data)
    except NatsTimeoutError:
        raise ResultTimeoutError(run_id, timeout) from None
    finally:
        await sub.unsubscribe()


async def _stored_result(js: JetStreamContext, stream: str, run_id: str) -> Result | None:
    """One direct get of the run's record (the results stream has allow_direct), None when there is none yet."""
    try:
        try:
            msg = await js.get_last_msg(stream, result_subject(run_id), direct=True)
        except NoRespondersError:
            # The stream was made without allow_direct: the stream API answers instead.
            msg = await js.get_last_msg(stream, result_subject(run_id))
    except NotFoundError:
        return None
    return None if msg.data is None else _parse(msg.data)


def _parse(data: bytes) -> Result:
    result: Result = json.loads(data)
    return result
