"""Rule 4, `replyTo`: read from the body's top level; only a valid subject under an allowed prefix is kept."""

from __future__ import annotations

from typing import Any

import pytest

from testkit.jobs import MISSING, REPLY_TO, encode, envelope, job_data
from worker.contract import ErrorCode
from worker.door import Door, Rejected
from worker.job import Job

pytestmark = pytest.mark.unit

INVALID_REPLY_TO: list[Any] = [
    "",
    "_INBOX",
    "_INBOX.",
    "_INBOX..a",
    "_INBOX.a.",
    "_INBOX.a..b",
    ".INBOX.a",
    "_INBOX.*",
    "_INBOX.>",
    "_INBOX.a.*",
    "_INBOX.a b",
    "_INBOX.a\tb",
    "_INBOX.a\n",
    "_INBOX.ünïcode",
    "_inbox.a",
    "INBOX.a",
    "$JS.API.CONSUMER.INFO.MASCHINA_JOBS.agent-worker",
    "$JS.ACK.MASCHINA_JOBS.agent-worker.1.1.1.1.0",
    "$SYS.REQ.SERVER.PING",
    "maschina.results.agent.execute.7c1e0d4a",
    "maschina.jobs.agent.agent.execute",
    "maschina.dlq.agent.execute",
    "_INBOX." + "a" * 250,  # 257 characters
    5,
    True,
    ["_INBOX.a"],
    {"subject": "_INBOX.a"},
]
VALID_REPLY_TO = ["_INBOX.a", "_INBOX.api-7.Qx3v9k", "_INBOX.a.b.c_d-e", "_INBOX." + "a" * 249]  # the last is 256


@pytest.mark.parametrize("reply_to", INVALID_REPLY_TO, ids=lambda v: repr(v)[:40])
@pytest.mark.parametrize("enveloped", [True, False], ids=["envelope", "bare"])
def test_invalid_reply_to_is_invalid_job_without_a_copy(reply_to: Any, enveloped: bool) -> None:
    body = envelope(changes={"replyTo": reply_to}) if enveloped else job_data({"replyTo": reply_to})
    verdict = Door().open(encode(body))
    assert isinstance(verdict, Rejected), verdict
    assert verdict.code is ErrorCode.INVALID_JOB
    assert verdict.message.startswith("Invalid job: replyTo must ")
    assert verdict.ref.reply_to is None
    assert verdict.ref.agent_id == job_data()["agentId"]


@pytest.mark.parametrize(
    ("reply_to", "fault"),
    [
        (5, "must be a string, not 5"),
        ("_INBOX." + "a" * 250, "must be at most 256 characters, not a string of 257 characters"),
        ("_INBOX.>", "must be dot-separated non-empty tokens of letters, digits, '_' and '-', not \"_INBOX.>\""),
        ("_INBOX.", "must be dot-separated non-empty tokens of letters, digits, '_' and '-', not \"_INBOX.\""),
        ("_INBOX", "must start with '_INBOX.' and have a token after it, not \"_INBOX\""),
        ("maschina.results.x", "must start with '_INBOX.' and have a token after it, not \"maschina.results.x\""),
    ],
)
def test_reply_to_message(reply_to: Any, fault: str) -> None:
    verdict = Door().open(encode(envelope(changes={"replyTo": reply_to})))
    assert isinstance(verdict, Rejected)
    assert verdict.message == f"Invalid job: replyTo {fault}."


@pytest.mark.parametrize("reply_to", VALID_REPLY_TO)
@pytest.mark.parametrize("enveloped", [True, False], ids=["envelope", "bare"])
def test_valid_reply_to_is_kept(reply_to: str, enveloped: bool) -> None:
    body = envelope(changes={"replyTo": reply_to}) if enveloped else job_data({"replyTo": reply_to})
    verdict = Door().open(encode(body))
    assert isinstance(verdict, Job), verdict
    assert verdict.ref.reply_to == reply_to


@pytest.mark.parametrize("absent", [MISSING, None])
def test_absent_or_null_reply_to_means_none(absent: Any) -> None:
    verdict = Door().open(encode(envelope(changes={"replyTo": absent})))
    assert isinstance(verdict, Job)
    assert verdict.ref.reply_to is None


@pytest.mark.parametrize("inner", ["_INBOX.inner", "$JS.API.x", 5])
def test_reply_to_inside_an_envelopes_data_is_ignored(inner: Any) -> None:
    verdict = Door().open(encode(envelope(job_data({"replyTo": inner}), {"replyTo": MISSING})))
    assert isinstance(verdict, Job)
    assert verdict.ref.reply_to is None


def test_rejected_job_with_a_valid_reply_to_keeps_it_for_its_copy() -> None:
    verdict = Door().open(encode(envelope(job_data({"timeoutSecs": 0}))))
    assert isinstance(verdict, Rejected)
    assert verdict.ref.reply_to == REPLY_TO


PREFIXES = ("api.replies.", "_INBOX.")


@pytest.mark.parametrize("reply_to", ["api.replies.r1", "api.replies.a.b", "_INBOX.a"])
def test_configured_prefixes_are_allowed(reply_to: str) -> None:
    verdict = Door(reply_prefixes=PREFIXES).open(encode(envelope(changes={"replyTo": reply_to})))
    assert isinstance(verdict, Job)
    assert verdict.ref.reply_to == reply_to


@pytest.mark.parametrize("reply_to", ["api.replies", "api.repliesx.r1", "api.r1", "_INBOX"])
def test_subjects_outside_the_configured_prefixes_are_refused(reply_to: str) -> None:
    verdict = Door(reply_prefixes=PREFIXES).open(encode(envelope(changes={"replyTo": reply_to})))
    assert isinstance(verdict, Rejected)
    assert verdict.message == (
        "Invalid job: replyTo must start with 'api.replies.' or '_INBOX.' and have a token after it, "
        f'not "{reply_to}".'
    )
