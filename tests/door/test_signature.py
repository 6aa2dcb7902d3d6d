"""Rule 1: with a signing key, every body must carry a valid `Maschina-Signature`, checked before anything else."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from testkit.jobs import encode, envelope
from worker.contract import DlqReason
from worker.door import DeadLetter, Door
from worker.job import Job

pytestmark = pytest.mark.unit

KEY = b"whsec_3f9a1c7e5b2d4f60"
BODY = encode(envelope())
HEX = hmac.new(KEY, BODY, hashlib.sha256).hexdigest()
DOOR = Door(signing_key=KEY)

MISSING_DETAIL = "The Maschina-Signature header is missing."
MALFORMED_DETAIL = "The Maschina-Signature header is malformed: expected sha256=<64 hex digits>."
WRONG_DETAIL = "The Maschina-Signature header does not match the body."


def _bad_signature(body: bytes, headers: dict[str, str] | None) -> str:
    verdict = DOOR.open(body, headers)
    assert isinstance(verdict, DeadLetter), verdict
    assert verdict.reason is DlqReason.BAD_SIGNATURE
    return verdict.detail


@pytest.mark.parametrize(
    "digest", [HEX.lower(), HEX.upper(), HEX[:32].upper() + HEX[32:]], ids=["lower", "upper", "mixed"]
)
def test_valid_signature_in_either_case_opens(digest: str) -> None:
    verdict = DOOR.open(BODY, {"Maschina-Signature": f"sha256={digest}", "Nats-Msg-Id": "x"})
    assert isinstance(verdict, Job)


@pytest.mark.parametrize("headers", [None, {}, {"Nats-Msg-Id": "x"}, {"maschina-signature": f"sha256={HEX}"}])
def test_missing_signature(headers: dict[str, str] | None) -> None:
    assert _bad_signature(BODY, headers) == MISSING_DETAIL


@pytest.mark.parametrize(
    "header",
    [
        "",
        HEX,
        f"sha256:{HEX}",
        f"SHA256={HEX}",
        f"sha1={HEX[:40]}",
        f"sha256={HEX[:63]}",
        f"sha256={HEX}0",
        f"sha256={HEX[:62]}zz",
        f"sha256= {HEX}",
        f"sha256={HEX} ",
        f"sha256={HEX}\n",
        f"sha256={HEX[:32]} {HEX[32:63]}",
        f"sha256={HEX},sha256={HEX}",
    ],
)
def test_malformed_signature(header: str) -> None:
    assert _bad_signature(BODY, {"Maschina-Signature": header}) == MALFORMED_DETAIL


def _flip_last_digit(digest: str) -> str:
    return digest[:-1] + ("0" if digest[-1] != "0" else "1")


@pytest.mark.parametrize(
    "digest",
    [
        _flip_last_digit(HEX),
        hmac.new(b"another key", BODY, hashlib.sha256).hexdigest(),
        hmac.new(KEY, BODY + b" ", hashlib.sha256).hexdigest(),
        hashlib.sha256(BODY).hexdigest(),
        "0" * 64,
    ],
    ids=["one-digit-off", "other-key", "other-body", "plain-sha256", "zeros"],
)
def test_wrong_signature(digest: str) -> None:
    assert _bad_signature(BODY, {"Maschina-Signature": f"sha256={digest}"}) == WRONG_DETAIL


def test_signature_is_checked_before_the_body_is_read() -> None:
    assert _bad_signature(b"not json", None) == MISSING_DETAIL
    garbage = b"not json"
    signed = {"Maschina-Signature": "sha256=" + hmac.new(KEY, garbage, hashlib.sha256).hexdigest()}
    verdict = DOOR.open(garbage, signed)
    assert isinstance(verdict, DeadLetter)
    assert verdict.reason is DlqReason.NOT_JSON


@pytest.mark.parametrize(
    "headers", [None, {"Maschina-Signature": "sha256=" + "0" * 64}, {"Maschina-Signature": "junk"}]
)
def test_without_a_signing_key_the_header_is_ignored(headers: dict[str, str] | None) -> None:
    assert isinstance(Door().open(BODY, headers), Job)
